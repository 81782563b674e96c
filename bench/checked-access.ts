/**
 * What a checked element read costs, the figures behind src/checked-index.ts and behind the loops
 * that keep `!`: `node --expose-gc dist/bench/checked-access.js [ROUNDS]`. On the closure
 * benchmark's large graph (189,871 paths, 961,649 edges), in one process, alternating:
 *
 * - the closure walk (closure.ts's reach) with unchecked reads, with the accessors of
 *   checked-index.ts (one per element type), and with one generic accessor that has seen several
 *   array types (polymorphic, the design checked-index.ts avoids);
 * - a per-path loop that copies ids out (topoOrder's last step) and a per-path sum (maskCount),
 *   indexed unchecked, indexed through an accessor, and with for…of.
 *
 * Not part of `npm run bench`: it compares ways of writing a loop, not nix-seal with another tool.
 */
import { u32At, u8At } from '../src/checked-index.js';
import { analyzeStore } from '../src/index.js';
import { ensureDb } from './gen-db.js';

const gc = (globalThis as { gc?: () => void }).gc;

/** One accessor for every array type: after warm-up its load has seen five kinds of array. */
function genericAt(a: ArrayLike<number>, i: number): number {
  const v = a[i];
  if (v === undefined) throw new RangeError(`index ${i} is outside an array of ${a.length}`);
  return v;
}

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 21);
  const db = await ensureDb();
  const a = await analyzeStore({ store: `local?store=${db.storeDir}&state=${db.stateDir}`, roots: [db.roots.large.path] });
  const { refStart, refs } = a.graph;
  const n = a.graph.paths.length;
  const roots = a.roots;
  const stack = new Uint32Array(n);
  for (let i = 0; i < 100_000; i++) {
    genericAt(new Float64Array(2), 1), genericAt(new Uint8Array(2), 1), genericAt(new Int32Array(2), 1), genericAt([1, 2], 1), genericAt(new Uint16Array(2), 1);
  }

  const reachUnchecked = (): Uint8Array => {
    const mark = new Uint8Array(n);
    let sp = 0;
    for (const r of roots) (mark[r] = 1), (stack[sp++] = r);
    while (sp > 0) {
      const v = stack[--sp]!;
      for (let k = refStart[v]!, end = refStart[v + 1]!; k < end; k++) {
        const w = refs[k]!;
        if (!mark[w]) (mark[w] = 1), (stack[sp++] = w);
      }
    }
    return mark;
  };
  const reachChecked = (): Uint8Array => {
    const mark = new Uint8Array(n);
    let sp = 0;
    for (const r of roots) (mark[r] = 1), (stack[sp++] = r);
    while (sp > 0) {
      const v = u32At(stack, --sp);
      for (let k = u32At(refStart, v), end = u32At(refStart, v + 1); k < end; k++) {
        const w = u32At(refs, k);
        if (!u8At(mark, w)) (mark[w] = 1), (stack[sp++] = w);
      }
    }
    return mark;
  };
  const reachGeneric = (): Uint8Array => {
    const mark = new Uint8Array(n);
    let sp = 0;
    for (const r of roots) (mark[r] = 1), (stack[sp++] = r);
    while (sp > 0) {
      const v = genericAt(stack, --sp);
      for (let k = genericAt(refStart, v), end = genericAt(refStart, v + 1); k < end; k++) {
        const w = genericAt(refs, k);
        if (!genericAt(mark, w)) (mark[w] = 1), (stack[sp++] = w);
      }
    }
    return mark;
  };
  const full = reachUnchecked();
  const ids = Uint32Array.from(full.keys()).filter((i) => full[i] === 1);
  const copyUnchecked = (): number[] => {
    const out = new Array<number>(ids.length);
    for (let i = 0; i < ids.length; i++) out[i] = ids[i]!;
    return out;
  };
  const copyChecked = (): number[] => {
    const out = new Array<number>(ids.length);
    for (let i = 0; i < ids.length; i++) out[i] = u32At(ids, i);
    return out;
  };
  const copyForOf = (): number[] => {
    const out = new Array<number>(ids.length);
    let i = 0;
    for (const id of ids) out[i++] = id;
    return out;
  };
  const sumUnchecked = (): number => {
    let c = 0;
    for (let i = 0; i < full.length; i++) c += full[i]!;
    return c;
  };
  const sumChecked = (): number => {
    let c = 0;
    for (let i = 0; i < full.length; i++) c += u8At(full, i);
    return c;
  };
  const sumForOf = (): number => {
    let c = 0;
    for (const m of full) c += m;
    return c;
  };

  const groups: [string, [string, () => unknown][]][] = [
    ['closure walk (per edge)', [['unchecked `!`', reachUnchecked], ['u32At/u8At', reachChecked], ['one generic accessor', reachGeneric]]],
    ['copy 190k ids out (per path)', [['unchecked `!`', copyUnchecked], ['u32At', copyChecked], ['for…of', copyForOf]]],
    ['sum a 190k mask (per path)', [['unchecked `!`', sumUnchecked], ['u8At', sumChecked], ['for…of', sumForOf]]],
  ];
  console.log(`| loop | way | median (ms, ${rounds} rounds) | min | median / unchecked | min / unchecked |\n|---|---|---|---|---|---|`);
  for (const [group, ways] of groups) {
    const times = ways.map(() => [] as number[]);
    for (let r = 0; r < rounds + 3; r++) {
      for (let w = 0; w < ways.length; w++) {
        const j = (w + r) % ways.length; // rotate the order each round
        gc?.();
        const t0 = performance.now();
        for (let rep = 0; rep < 5; rep++) ways[j]![1]();
        if (r >= 3) times[j]!.push((performance.now() - t0) / 5);
      }
    }
    const med = times.map((t) => [...t].sort((x, y) => x - y)[t.length >> 1]!);
    const min = times.map((t) => Math.min(...t));
    ways.forEach(([way], j) => {
      console.log(`| ${group} | ${way} | ${med[j]!.toFixed(3)} | ${min[j]!.toFixed(3)} | ${(med[j]! / med[0]!).toFixed(2)} | ${(min[j]! / min[0]!).toFixed(2)} |`);
    });
  }
  console.log(`\nNode ${process.versions.node}`);
  a.source.close?.();
}

await main();
