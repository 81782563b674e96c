import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { StorePath } from '../store/store-path.js';
import { DOMINATED_BY_ROOTS, dominatedSums, dominators, UNREACHED } from './dominators.js';
import { asPathId, buildRefGraph, type RefGraph } from './ref-graph.js';
import { seeded } from '../../test/support/property.js';

/** Random graphs, cycles and self references included (the algorithm must not assume a DAG). */
const graphArb = fc
  .integer({ min: 1, max: 24 })
  .chain((n) =>
    fc.record({
      n: fc.constant(n),
      edges: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: n * 3 }),
      roots: fc.uniqueArray(fc.nat(n - 1), { minLength: 1, maxLength: 3 }),
      dag: fc.boolean(),
    }),
  );

function makeGraph(n: number, edges: [number, number][]): RefGraph {
  const paths = Array.from({ length: n }, (_, i) => `/s/${String(i).padStart(32, '0')}-p${i}` as StorePath);
  return buildRefGraph({
    storeDir: '/s',
    paths,
    narSize: Array.from({ length: n }, (_, i) => i + 1),
    edgeFrom: edges.map((e) => e[0]),
    edgeTo: edges.map((e) => e[1]),
    edgeCount: edges.length,
  });
}

/** Reachable from the roots without passing through `removed` (Sets, by the definition). */
function reachWithout(g: RefGraph, roots: number[], removed: number): Set<number> {
  const seen = new Set<number>();
  const todo = roots.filter((r) => r !== removed);
  for (const r of todo) seen.add(r);
  while (todo.length > 0) {
    const v = todo.pop()!;
    for (let k = g.refStart[v]!; k < g.refStart[v + 1]!; k++) {
      const w = g.refs[k]!;
      if (w !== removed && !seen.has(w)) (seen.add(w), todo.push(w));
    }
  }
  return seen;
}

/** Brute force: d strictly dominates v iff v is reached, and is not once d is removed. */
function bruteIdom(g: RefGraph, roots: number[]): number[] {
  const n = g.paths.length;
  const all = reachWithout(g, roots, -1);
  const without = Array.from({ length: n }, (_, d) => reachWithout(g, roots, d));
  const strict = (v: number): number[] => [...Array(n).keys()].filter((d) => d !== v && !without[d]!.has(v));
  return Array.from({ length: n }, (_, v) => {
    if (!all.has(v)) return UNREACHED;
    const ds = strict(v);
    // The immediate dominator is the strict dominator every other strict dominator dominates.
    const imm = ds.filter((d) => ds.every((o) => o === d || !without[o]!.has(d)));
    assert.ok(ds.length === 0 || imm.length === 1, 'dominators form a chain');
    return ds.length === 0 ? DOMINATED_BY_ROOTS : imm[0]!;
  });
}

test('dominators equal the brute-force definition on random graphs', () => {
  fc.assert(
    fc.property(graphArb, ({ n, edges, roots, dag }) => {
      const es = dag ? edges.map(([a, b]) => (a >= b ? [a, b] : [b, a]) as [number, number]) : edges;
      const g = makeGraph(n, es);
      const d = dominators(g, roots.map(asPathId));
      assert.deepEqual(Array.from(d.idom), bruteIdom(g, roots));
      // The order lists each reached path once, after its immediate dominator.
      const pos = new Map(Array.from(d.order).map((v, i) => [v, i]));
      assert.equal(pos.size, d.order.length);
      for (const v of d.order) if (d.idom[v]! >= 0) assert.ok(pos.get(d.idom[v]!)! < pos.get(v)!);
    }),
    seeded({ seed: 1414, numRuns: 300, verbose: true }),
  );
});

test('dominated sums add each subtree once and total the reached closure', () => {
  fc.assert(
    fc.property(graphArb, ({ n, edges, roots }) => {
      const g = makeGraph(n, edges);
      const d = dominators(g, roots.map(asPathId));
      const sums = dominatedSums(d, g.narSize);
      let top = 0;
      for (const v of d.order) if (d.idom[v] === DOMINATED_BY_ROOTS) top += sums[v]!;
      let total = 0;
      for (const v of d.order) total += g.narSize[v]!;
      assert.equal(top, total);
      for (const v of d.order) {
        let sub = 0;
        for (const w of d.order) {
          let x = w;
          while (x >= 0 && x !== v) x = d.idom[x]!;
          if (x === v) sub += g.narSize[w]!;
        }
        assert.equal(sums[v], sub);
      }
    }),
    seeded({ seed: 1415, numRuns: 200, verbose: true }),
  );
});

test('the seed shape: glibc, shared by qemu and the ISO, is dominated by the root', () => {
  // 0 launcher → 1 qemu, 2 iso; 1 → 3 libfoo, 4 glibc; 3 → 4; 2 → 5 system, 6 bash, 7 linux, 4
  const g = makeGraph(8, [[0, 1], [0, 2], [1, 3], [1, 4], [3, 4], [2, 5], [2, 6], [2, 7], [2, 4], [5, 6], [5, 7], [6, 4]]);
  const d = dominators(g, [asPathId(0)]);
  assert.deepEqual(Array.from(d.idom), [DOMINATED_BY_ROOTS, 0, 0, 1, 0, 2, 2, 2]);
});
