import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { Analysis } from '../analysis.js';
import { infoResult } from '../commands/info.js';
import { reach, sealedClosure, topoOrderIds } from '../graph/closure.js';
import { dominatedSums, dominators } from '../graph/dominators.js';
import { asPathId, buildRefGraph, type RefGraph } from '../graph/ref-graph.js';
import type { StorePath } from '../store/store-path.js';
import { closureSizes, KEPT, OUTSIDE, reportData, SEVERAL_SEALS } from './report-data.js';
import { layoutTreemap, squarify, type TreemapCell } from './treemap.js';
import { seeded } from '../../test/support/property.js';

const dagArb = fc
  .integer({ min: 1, max: 30 })
  .chain((n) =>
    fc.record({
      n: fc.constant(n),
      edges: fc.array(
        fc.tuple(fc.nat(n - 1), fc.nat(n - 1)).map(([a, b]) => (a >= b ? [a, b] : [b, a]) as [number, number]),
        { maxLength: n * 3 },
      ),
      roots: fc.uniqueArray(fc.nat(n - 1), { minLength: 1, maxLength: 2 }),
      seals: fc.uniqueArray(fc.nat(n - 1), { maxLength: 3 }),
      sizes: fc.array(fc.integer({ min: 0, max: 1e6 }), { minLength: n, maxLength: n }),
    }),
  );

function graphOf(n: number, edges: [number, number][], sizes: number[]): RefGraph {
  const paths = Array.from({ length: n }, (_, i) => `/s/${String((i * 7919) % 100003).padStart(32, '0')}-p${i}` as StorePath);
  return buildRefGraph({ storeDir: '/s', paths, narSize: sizes, edgeFrom: edges.map((e) => e[0]), edgeTo: edges.map((e) => e[1]), edgeCount: edges.length });
}

function analysisOf(g: RefGraph, rootIds: number[], sealIds: number[]): Analysis {
  const roots = rootIds.map(asPathId);
  const seals = new Uint8Array(g.paths.length);
  for (const s of sealIds) seals[s] = 1;
  const source = { description: 'test graph', storeDir: g.storeDir, realStoreDir: g.storeDir, loadClosure: () => g };
  return { source, graph: g, roots, seals, closure: sealedClosure(g, roots, seals), warnings: [], detected: [] };
}

test('report data: statuses, sizes and seals agree with the closure, info and dominators', () => {
  fc.assert(
    fc.property(dagArb, ({ n, edges, roots, seals, sizes }) => {
      const g = graphOf(n, edges, sizes);
      const a = analysisOf(g, roots, seals);
      const d = reportData(a);
      assert.deepEqual(d.info, infoResult(a));
      assert.equal(d.names.length, n);
      assert.deepEqual(d.roots, roots);
      const full = reach(g, roots.map(asPathId));
      const erasedBy = new Map<number, number[]>();
      a.closure.seals.forEach((s, si) => s.erased.forEach((e) => erasedBy.set(e, [...(erasedBy.get(e) ?? []), si])));
      for (let i = 0; i < n; i++) {
        const st = d.status[i]!;
        if (!full[i]) assert.equal(st, OUTSIDE);
        else if (a.closure.kept[i]) assert.equal(st, KEPT);
        else {
          const by = erasedBy.get(i)!;
          assert.equal(st, by.length === 1 ? by[0] : SEVERAL_SEALS);
        }
        assert.equal(`/s/${d.names[i]}`, g.paths[i]);
        assert.equal(d.narSize[i], sizes.length ? g.narSize[i] : null);
        if (full[i]) {
          // Closure size: the sum over what the path reaches.
          const r = reach(g, [asPathId(i)]);
          let sum = 0;
          for (let k = 0; k < n; k++) if (r[k]) sum += g.narSize[k]!;
          assert.equal(d.closureSize[i], sum);
        }
      }
      assert.deepEqual(d.added, Array.from(dominatedSums(dominators(g, roots.map(asPathId)), g.narSize)));
      assert.deepEqual(d.keptOrder, Array.from(topoOrderIds(g, a.closure.kept)));
      assert.deepEqual(d.seals.map((s) => s.id), a.closure.seals.map((s) => s.seal));
      // The added sizes of the top blocks total the full closure (each byte under one dominator).
      let top = 0;
      for (let i = 0; i < n; i++) if (d.idom[i] === -1) top += d.added[i]!;
      assert.equal(top, d.info.full.narSize);
      // It survives JSON (the page reads it back).
      assert.deepEqual(JSON.parse(JSON.stringify(d)), d);
    }),
    seeded({ seed: 1401, numRuns: 200, verbose: true }),
  );
});

test('closure sizes stop at the budget and say so; unknown sizes are null', () => {
  const g = graphOf(4, [[1, 0], [2, 1], [3, 2]], [1, 2, 4, 8]);
  const order = topoOrderIds(g, reach(g, [asPathId(3)]));
  assert.deepEqual(closureSizes(g, order, 1e9), { sizes: [1, 3, 7, 15], partial: false });
  const cut = closureSizes(g, order, 1);
  assert.equal(cut.partial, true);
  assert.ok(cut.sizes.includes(null));
  const unknown = buildRefGraph({ storeDir: '/s', paths: ['/s/a' as StorePath, '/s/b' as StorePath], narSize: [NaN, 3], edgeFrom: [0], edgeTo: [1], edgeCount: 1 });
  assert.deepEqual(closureSizes(unknown, [1, 0], 1e9).sizes, [null, 3]);
});

test('squarify: areas proportional to values, inside the rectangle, no overlap', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 1, maxLength: 40 }), fc.integer({ min: 10, max: 900 }), fc.integer({ min: 10, max: 900 }), (vals, w, h) => {
      const values = [...vals].sort((a, b) => b - a);
      const total = values.reduce((x, y) => x + y, 0);
      const rs = squarify(values, { x: 5, y: 7, w, h });
      assert.equal(rs.length, values.length);
      const eps = 1e-6 * w * h;
      rs.forEach((r, i) => {
        assert.ok(Math.abs(r.w * r.h - (values[i]! / total) * w * h) < eps + 1e-9, 'area');
        assert.ok(r.x >= 5 - 1e-6 && r.y >= 7 - 1e-6 && r.x + r.w <= 5 + w + 1e-6 && r.y + r.h <= 7 + h + 1e-6, 'inside');
      });
      for (let i = 0; i < rs.length; i++)
        for (let j = i + 1; j < rs.length; j++) {
          const a = rs[i]!;
          const b = rs[j]!;
          const ox = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
          const oy = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
          assert.ok(ox <= 1e-6 || oy <= 1e-6, 'no overlap');
        }
    }),
    seeded({ seed: 1402, numRuns: 200, verbose: true }),
  );
});

/** Every reached path is drawn, inside a block drawn whole, or counted in its dominator's rest block. */
export function assertAccounted(cells: TreemapCell[], idom: ArrayLike<number>, order: ArrayLike<number>): void {
  const drawn = new Set(cells.filter((c) => c.kind !== 'rest').map((c) => c.id));
  const whole = new Set(cells.filter((c) => c.kind === 'subtree').map((c) => c.id));
  const restCount = new Map<number, number>();
  for (const c of cells) if (c.kind === 'rest') restCount.set(c.id, (restCount.get(c.id) ?? 0) + c.count!);
  // The undrawn children of drawn blocks (or of the top), each standing for its whole subtree.
  const missing = new Map<number, Set<number>>();
  for (let k = 0; k < order.length; k++) {
    const v = order[k]!;
    if (drawn.has(v)) continue;
    let x = idom[v]!;
    while (x >= 0 && !whole.has(x)) x = idom[x]!;
    if (x >= 0) continue; // inside a block drawn whole
    let u = v;
    while (idom[u]! >= 0 && !drawn.has(idom[u]!)) u = idom[u]!;
    const set = missing.get(idom[u]!) ?? new Set<number>();
    missing.set(idom[u]!, set.add(u));
  }
  const missingCount = new Map([...missing].map(([p, set]) => [p, set.size] as [number, number]));
  assert.deepEqual(new Map([...missingCount].sort()), new Map([...restCount].sort()), 'rest blocks count exactly the blocks not drawn');
}

test('treemap: every reached path is drawn or inside a block drawn whole; areas follow the dominated sizes', () => {
  fc.assert(
    fc.property(dagArb, ({ n, edges, roots, sizes }) => {
      const g = graphOf(n, edges, sizes.map((s) => s + 1));
      const dom = dominators(g, roots.map(asPathId));
      const added = dominatedSums(dom, g.narSize);
      const W = 400;
      const H = 300;
      const cells = layoutTreemap({ idom: dom.idom, own: g.narSize, dominated: added }, { x: 0, y: 0, w: W, h: H }, { minArea: 0, maxCells: 1e6, pad: 0 });
      // With no minimum and no padding, own blocks tile the whole area in proportion to NAR sizes.
      let total = 0;
      for (const v of dom.order) total += g.narSize[v]!;
      const own = new Map(cells.filter((c) => c.kind === 'own').map((c) => [c.id, c]));
      for (const v of dom.order) {
        const c = own.get(v);
        assert.ok(c, `${v} drawn`);
        assert.ok(Math.abs(c.w * c.h - (g.narSize[v]! / total) * W * H) < 1e-6 * W * H);
      }
      // With minimum areas, what is not drawn lies in a block drawn whole or in its dominator's rest block.
      const coarse = layoutTreemap({ idom: dom.idom, own: g.narSize, dominated: added }, { x: 0, y: 0, w: W, h: H }, { minArea: 5000, maxCells: 1e6, pad: 1, minCellArea: 3000 });
      assertAccounted(coarse, dom.idom, dom.order);
    }),
    seeded({ seed: 1403, numRuns: 200, verbose: true }),
  );

});

test('treemap: thousands of small paths share rest blocks, counted exactly', () => {
  // root → 40 mid paths → 50 leaves each; sizes spread over five orders of magnitude.
  const edges: [number, number][] = [];
  const n = 1 + 40 + 40 * 50;
  for (let m = 0; m < 40; m++) {
    edges.push([0, 1 + m]);
    for (let l = 0; l < 50; l++) edges.push([1 + m, 41 + m * 50 + l]);
  }
  const g = graphOf(n, edges, Array.from({ length: n }, (_, i) => Math.round(10 ** (1 + ((i * 7919) % 97) / 20))));
  const dom = dominators(g, [asPathId(0)]);
  const cells = layoutTreemap({ idom: dom.idom, own: g.narSize, dominated: dominatedSums(dom, g.narSize) }, { x: 0, y: 0, w: 1200, h: 640 }, { minArea: 120, maxCells: 3000, pad: 2, minCellArea: 6 });
  const rest = cells.filter((c) => c.kind === 'rest');
  assert.ok(rest.length > 0 && cells.length < n, `${rest.length} rest blocks, ${cells.length} cells for ${n} paths`);
  assertAccounted(cells, dom.idom, dom.order);
});
