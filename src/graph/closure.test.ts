import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { StorePath } from '../store/store-path.js';
import { reach, Scratch, sealedClosure, topoOrder } from './closure.js';
import { asPathId, buildRefGraph, idOf, referencesOf, type PathId, type RefGraph } from './ref-graph.js';
import { allChains, shortestChain } from './why.js';
import { seeded } from '../../test/support/property.js';

/** A random DAG: node i may only refer to nodes with a smaller index (and to itself). */
const dagArb = fc
  .integer({ min: 1, max: 40 })
  .chain((n) =>
    fc.record({
      n: fc.constant(n),
      edges: fc.array(
        fc.tuple(fc.nat(n - 1), fc.nat(n - 1)).map(([a, b]) => (a >= b ? [a, b] : [b, a]) as [number, number]),
        { maxLength: n * 4 },
      ),
      roots: fc.uniqueArray(fc.nat(n - 1), { minLength: 1, maxLength: 3 }),
      seals: fc.uniqueArray(fc.nat(n - 1), { maxLength: 4 }),
    }),
  );

function makeGraph(n: number, edges: [number, number][]): { g: RefGraph; id: (i: number) => PathId } {
  // Names in shuffled order so ids (path order) differ from creation order.
  const paths = Array.from({ length: n }, (_, i) => `/s/${String((i * 7919) % 100003).padStart(32, '0')}-p${i}` as StorePath);
  const g = buildRefGraph({
    storeDir: '/s',
    paths,
    narSize: Array.from({ length: n }, (_, i) => i + 1),
    edgeFrom: edges.map((e) => e[0]),
    edgeTo: edges.map((e) => e[1]),
    edgeCount: edges.length,
  });
  return { g, id: (i) => idOf(g, paths[i]!)! };
}

/** Plain reachability with Sets, the definition the mask code must agree with. */
function naiveReach(g: RefGraph, roots: PathId[], seals: Set<number> = new Set()): Set<number> {
  const seen = new Set<number>(roots);
  const todo = [...roots];
  while (todo.length) {
    const v = todo.pop()!;
    if (seals.has(v)) continue;
    for (const w of referencesOf(g, v)) if (!seen.has(w)) (seen.add(w), todo.push(asPathId(w)));
  }
  return seen;
}

const members = (mask: Uint8Array): number[] => [...mask.keys()].filter((i) => mask[i]);
const maskOf = (g: RefGraph, ids: number[]): Uint8Array => {
  const m = new Uint8Array(g.paths.length);
  for (const i of ids) m[i] = 1;
  return m;
};

test('without seals the closure is plain reachability', () => {
  fc.assert(
    fc.property(dagArb, ({ n, edges, roots }) => {
      const { g, id } = makeGraph(n, edges);
      const r = roots.map(id);
      assert.deepEqual(members(reach(g, r)), [...naiveReach(g, r)].sort((a, b) => a - b));
    }),
    seeded(),
  );
});

test('the sealed closure follows the definition, and attribution covers exactly the erased paths', () => {
  fc.assert(
    fc.property(dagArb, ({ n, edges, roots, seals }) => {
      const { g, id } = makeGraph(n, edges);
      const r = roots.map(id);
      const s = seals.map(id);
      const sc = sealedClosure(g, r, maskOf(g, s));
      const expected = naiveReach(g, r, new Set(s));
      assert.deepEqual(members(sc.kept), [...expected].sort((a, b) => a - b));
      // Every erased path is attributed to at least one reached seal, and nothing kept is.
      const erased = members(sc.full).filter((v) => !sc.kept[v]);
      const attributed = new Set(sc.seals.flatMap((x) => x.erased));
      assert.deepEqual([...attributed].sort((a, b) => a - b), erased);
      for (const x of sc.seals) {
        assert.ok(sc.kept[x.seal], 'a reported seal is reached');
        // What a seal erased is exactly what lies behind it and is not kept.
        const behind = naiveReach(g, [...referencesOf(g, x.seal)].filter((w) => !sc.kept[w]).map(asPathId), new Set(members(sc.kept)));
        assert.deepEqual(x.erased, [...behind].filter((v) => !sc.kept[v]).sort((a, b) => a - b));
        const others = new Set(sc.seals.filter((y) => y !== x).flatMap((y) => y.erased));
        assert.deepEqual(x.exclusive, x.erased.filter((v) => !others.has(v)));
      }
    }),
    seeded(),
  );
});

test('adding a seal never grows the closure', () => {
  fc.assert(
    fc.property(dagArb, fc.nat(), ({ n, edges, roots, seals }, extra) => {
      const { g, id } = makeGraph(n, edges);
      const r = roots.map(id);
      const s = seals.map(id);
      const before = reach(g, r, maskOf(g, s));
      const after = reach(g, r, maskOf(g, [...s, id(extra % n)]));
      for (let i = 0; i < n; i++) if (after[i]) assert.equal(before[i], 1);
    }),
    seeded(),
  );
});

test('seals outside the closure change nothing', () => {
  fc.assert(
    fc.property(dagArb, ({ n, edges, roots, seals }) => {
      const { g, id } = makeGraph(n, edges);
      const r = roots.map(id);
      const full = reach(g, r);
      const unrelated = seals.map(id).filter((v) => !full[v]);
      assert.deepEqual(reach(g, r, maskOf(g, unrelated)), full);
    }),
    seeded(),
  );
});

/** Nix's topoSortPaths, transcribed: recursive DFS over a sorted set, then nix-store -qR prints it reversed. */
function nixTopo(g: RefGraph, items: Set<number>): number[] {
  const sorted: number[] = [];
  const visited = new Set<number>();
  const visit = (v: number): void => {
    if (visited.has(v)) return;
    visited.add(v);
    for (const w of referencesOf(g, asPathId(v))) if (w !== v && items.has(w)) visit(w);
    sorted.push(v);
  };
  for (const v of [...items].sort((a, b) => (g.paths[a]! < g.paths[b]! ? -1 : 1))) visit(v);
  return sorted;
}

test('closure order is nix-store -qR order: dependencies first, ties by path', () => {
  fc.assert(
    fc.property(dagArb, ({ n, edges, roots, seals }) => {
      const { g, id } = makeGraph(n, edges);
      const kept = reach(g, roots.map(id), maskOf(g, seals.map(id)));
      const order = topoOrder(g, kept);
      assert.deepEqual(order, nixTopo(g, new Set(members(kept))));
    }),
    seeded(),
  );
});

test('a reference cycle is reported, not looped on', () => {
  const paths = ['/s/00000000000000000000000000000000-a', '/s/11111111111111111111111111111111-b'] as StorePath[];
  const g = buildRefGraph({ storeDir: '/s', paths, narSize: [1, 1], edgeFrom: [0, 1], edgeTo: [1, 0], edgeCount: 2 });
  assert.throws(() => topoOrder(g, reach(g, [asPathId(0)])), /cycle between/);
});

test('why-chains are shortest, follow references, and respect seals', () => {
  fc.assert(
    fc.property(dagArb, ({ n, edges, roots, seals }) => {
      const { g, id } = makeGraph(n, edges);
      const root = id(roots[0]!);
      const blocked = maskOf(g, seals.map(id));
      const kept = reach(g, [root], blocked);
      for (let i = 0; i < n; i++) {
        const t = asPathId(i);
        const chain = shortestChain(g, root, t, blocked);
        assert.equal(chain !== undefined, kept[t] === 1);
        if (!chain) continue;
        assert.equal(chain[0], root);
        assert.equal(chain.at(-1), t);
        for (let k = 1; k < chain.length; k++) {
          assert.ok(referencesOf(g, chain[k - 1]!).includes(chain[k]!));
          assert.ok(!blocked[chain[k - 1]!] || k - 1 === chain.length - 1);
        }
        const all = allChains(g, root, t, 1000, blocked);
        assert.ok(all.length >= 1);
        assert.equal(all[0]!.length, chain.length, 'the first of all chains is a shortest one');
        assert.equal(new Set(all.map((c) => c.join())).size, all.length, 'chains are distinct');
      }
    }),
    seeded(),
  );
});

test('one Scratch shared by walks of different graphs, and a given full closure, change no result', () => {
  const scratch = new Scratch();
  fc.assert(
    fc.property(fc.array(dagArb, { minLength: 2, maxLength: 4 }), (dags) => {
      for (const { n, edges, roots, seals } of dags) {
        const { g, id } = makeGraph(n, edges);
        const r = roots.map(id);
        const s = maskOf(g, seals.map(id));
        const fresh = sealedClosure(g, r, s);
        const shared = sealedClosure(g, r, s, reach(g, r, undefined, scratch), scratch);
        assert.deepEqual(shared, fresh);
        assert.deepEqual(topoOrder(g, fresh.kept, scratch), topoOrder(g, fresh.kept));
        assert.deepEqual(reach(g, r, s, scratch), reach(g, r, s));
      }
    }),
    seeded({ seed: 16, numRuns: 200 }),
  );
});
