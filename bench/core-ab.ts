/**
 * The pure graph core of two builds, timed in one process on one graph:
 * `node --expose-gc dist/bench/core-ab.js BASE [ROUNDS]`, BASE being another checkout's `dist/src`
 * (e.g. a worktree of the commit before a change, built with `npx tsc -p tsconfig.json`). For a
 * change inside the core (how its loops index typed arrays, say), where a whole command's
 * start-up, SQLite and output would hide the difference.
 *
 * The graph is the closure benchmark's large root (189,871 paths) loaded once by this build; every
 * function runs on both builds alternately, in rounds, after a full GC, and medians and minimums
 * are compared (ratio = this build / BASE; on a busy machine the minimum is the steadier figure).
 * Prints a markdown table; not part of `npm run bench` (it needs a second build).
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { analyzeStore } from '../src/index.js';
import { ensureDb } from './gen-db.js';
import { REPO_ROOT } from './lib.js';
import type { GraphRecords, PathId } from '../src/graph/ref-graph.js';

type Core = {
  reach: typeof import('../src/graph/closure.js').reach;
  sealedClosure: typeof import('../src/graph/closure.js').sealedClosure;
  topoOrder: typeof import('../src/graph/closure.js').topoOrder;
  maskNarSize: typeof import('../src/graph/closure.js').maskNarSize;
  dominators: typeof import('../src/graph/dominators.js').dominators;
  dominatedSums: typeof import('../src/graph/dominators.js').dominatedSums;
  shortestChain: typeof import('../src/graph/why.js').shortestChain;
  buildRefGraph: typeof import('../src/graph/ref-graph.js').buildRefGraph;
};

async function loadCore(srcDir: string): Promise<Core> {
  const m = async <T>(f: string): Promise<T> => (await import(pathToFileURL(join(srcDir, f)).href)) as T;
  const closure = await m<typeof import('../src/graph/closure.js')>('graph/closure.js');
  const dom = await m<typeof import('../src/graph/dominators.js')>('graph/dominators.js');
  const why = await m<typeof import('../src/graph/why.js')>('graph/why.js');
  const rg = await m<typeof import('../src/graph/ref-graph.js')>('graph/ref-graph.js');
  return { ...closure, ...dom, ...why, ...rg };
}

/** With --expose-gc (the usage line passes it): a full collection before each timing. */
const gc = (globalThis as { gc?: () => void }).gc;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1] ?? NaN;
}

async function main(): Promise<void> {
  const base = process.argv[2];
  const rounds = Number(process.argv[3] ?? 15);
  if (base === undefined) {
    console.error('usage: node --expose-gc dist/bench/core-ab.js OTHER_CHECKOUT/dist/src [ROUNDS]');
    process.exit(2);
  }
  const here = join(REPO_ROOT, 'dist', 'src');
  const builds = { base: await loadCore(resolve(base)), this: await loadCore(here) };
  const db = await ensureDb();
  const a = await analyzeStore({ store: `local?store=${db.storeDir}&state=${db.stateDir}`, roots: [db.roots.large.path] });
  const g = a.graph;
  const n = g.paths.length;
  // Every 40th path a seal: enough to make the sealed walk and the attribution do real work.
  const seals = new Uint8Array(n);
  for (let i = 0; i < n; i += 40) seals[i] = 1;
  // buildRefGraph's input: the graph's own records, in reverse order so that it has to sort.
  const edgeFrom: number[] = [];
  const edgeTo: number[] = [];
  for (let v = 0; v < n; v++) for (let k = g.refStart[v]!; k < g.refStart[v + 1]!; k++) (edgeFrom.push(n - 1 - v), edgeTo.push(n - 1 - g.refs[k]!));
  const records: GraphRecords = {
    storeDir: g.storeDir,
    paths: [...g.paths].reverse(),
    narSize: Float64Array.from(g.narSize).reverse(),
    narHash: [...g.narHash].reverse(),
    deriver: [...g.deriver].reverse(),
    edgeFrom: Uint32Array.from(edgeFrom),
    edgeTo: Uint32Array.from(edgeTo),
    edgeCount: edgeFrom.length,
  };
  const far = a.roots[0]!;
  const cases: [string, (c: Core) => unknown][] = [
    ['reach (full closure)', (c) => c.reach(g, a.roots)],
    ['sealedClosure (every 40th path a seal)', (c) => c.sealedClosure(g, a.roots, seals)],
    ['topoOrder (190k paths)', (c) => c.topoOrder(g, a.closure.full)],
    ['maskNarSize', (c) => c.maskNarSize(g, a.closure.full)],
    ['dominators', (c) => c.dominators(g, a.roots)],
    ['dominatedSums', (c) => c.dominatedSums(c.dominators(g, a.roots), g.narSize)],
    ['shortestChain (root to its last path)', (c) => c.shortestChain(g, far, asLast(g, a.closure.full))],
    ['buildRefGraph (190k paths, 960k edges)', (c) => c.buildRefGraph(records)],
  ];
  const times = new Map<string, { base: number[]; this: number[] }>(cases.map(([name]) => [name, { base: [], this: [] }]));
  for (let r = 0; r < rounds + 2; r++) {
    const order = r % 2 === 0 ? (['base', 'this'] as const) : (['this', 'base'] as const);
    for (const [name, f] of cases) {
      for (const which of order) {
        gc?.(); // each timing starts with a clean heap: one case's garbage is not the next one's GC
        const t0 = performance.now();
        f(builds[which]);
        const ms = performance.now() - t0;
        if (r >= 2) times.get(name)![which].push(ms); // two warm-up rounds
      }
    }
  }
  console.log(`| function | base: median, min (ms, ${rounds} runs) | this build | ratio of medians | of minimums |\n|---|---|---|---|---|`);
  for (const [name, t] of times) {
    const [bm, hm] = [median(t.base), median(t.this)];
    const [b0, h0] = [Math.min(...t.base), Math.min(...t.this)];
    console.log(`| ${name} | ${bm.toFixed(2)}, ${b0.toFixed(2)} | ${hm.toFixed(2)}, ${h0.toFixed(2)} | ${(hm / bm).toFixed(3)} | ${(h0 / b0).toFixed(3)} |`);
  }
  console.log(`\nNode ${process.versions.node}; base ${resolve(base)}`);
}

/** The highest-numbered path of the mask (a far target for a breadth-first search). */
function asLast(g: { paths: readonly string[] }, mask: Uint8Array): PathId {
  for (let i = g.paths.length - 1; i >= 0; i--) if (mask[i]) return i as PathId;
  throw new Error('empty closure');
}

await main();
