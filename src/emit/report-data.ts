/**
 * What `nix-seal report` shows, as one compact JSON-able object: paths by index (each name once),
 * sizes, the reference graph in CSR form (the page computes why-chains from it with the same
 * code as `nix-seal why`), the dominator tree, what each seal erased, and the `info` and `audit`
 * results unchanged (so the page's numbers are exactly theirs). Pure: no I/O.
 */
import type { Analysis } from '../analysis.js';
import { infoResult, type InfoResult } from '../commands/info.js';
import { topoOrderIds } from '../graph/closure.js';
import { dominatedSums, dominators } from '../graph/dominators.js';
import type { RefGraph } from '../graph/ref-graph.js';
import type { AuditResult } from '../seal/audit.js';
import { u16At } from '../checked-index.js';

/** status[i]: KEPT, the index of the one seal that erased it, SEVERAL_SEALS, or OUTSIDE (not in the full closure). */
export const KEPT = -1;
export const SEVERAL_SEALS = -2;
export const OUTSIDE = -3;

export interface ReportData {
  version: 1;
  storeDir: string;
  /** Where the graph came from (the source's description). */
  source: string;
  roots: number[];
  /** Store paths without `storeDir/`. */
  names: string[];
  narSize: (number | null)[];
  /** NAR size of each path's full closure (`nix path-info -S`); null where not computed (budget) or unknown. */
  closureSize: (number | null)[];
  /** Dominated size: the path and everything only it keeps in the full closure (what leaves with it). */
  added: number[];
  /** Immediate dominator in the full closure (-1: only the roots dominate it; -2: outside). */
  idom: number[];
  status: number[];
  refStart: number[];
  refs: number[];
  /** Every path marked as a seal: why-chains in the sealed closure do not pass through them. */
  sealMarks: number[];
  /** Reached seals, in `info`'s order, with what each erased (indices). */
  seals: { id: number; erased: number[]; exclusive: number[] }[];
  /** Kept paths in `nix-seal closure` order (dependencies first). */
  keptOrder: number[];
  info: InfoResult;
  audit: AuditResult | null;
  /** The audit's verdict names, for the legend (from the audit module, not repeated here). */
  verdicts: string[];
  /** True when some closure sizes were left out (the page computes those on demand). */
  closureSizesPartial: boolean;
}

export interface ReportOptions {
  audit?: AuditResult;
  verdicts?: readonly string[];
  /** Work budget (edge visits) for the per-path closure sizes; default 6e7 (about a second: enough for 10,000 paths, not for 190,000). */
  closureBudget?: number;
}

const num = (x: number): number | null => (Number.isNaN(x) ? null : x);

/**
 * NAR size of every path's full closure, one marked walk per path, dependencies first, until
 * `budget` edge visits are spent: exact sums cannot be shared between paths (closures overlap),
 * and a 190,000-path closure would cost billions of visits. The rest stay null.
 * The walk keeps `!` reads: checked ones were measurably slower on the 200k-path bench closure
 * (BENCHMARKS.md, "Figures behind code choices").
 */
export function closureSizes(g: RefGraph, order: Iterable<number>, budget: number): { sizes: (number | null)[]; partial: boolean } {
  const n = g.paths.length;
  const sizes = new Array<number | null>(n).fill(null);
  const stamp = new Uint32Array(n);
  const stack = new Uint32Array(n);
  let spent = 0;
  let mark = 0;
  for (const s of order) {
    if (spent > budget) return { sizes, partial: true };
    mark++;
    let sum = 0;
    let sp = 0;
    stack[sp++] = s;
    stamp[s] = mark;
    while (sp > 0) {
      const v = stack[--sp]!;
      sum += g.narSize[v]!;
      for (let k = g.refStart[v]!, end = g.refStart[v + 1]!; k < end; k++) {
        const w = g.refs[k]!;
        spent++;
        if (stamp[w] !== mark) {
          stamp[w] = mark;
          stack[sp++] = w;
        }
      }
    }
    sizes[s] = num(sum);
  }
  return { sizes, partial: false };
}

export function reportData(a: Analysis, opts: ReportOptions = {}): ReportData {
  const g = a.graph;
  const n = g.paths.length;
  const { full, kept } = a.closure;
  const dom = dominators(g, a.roots);
  const added = dominatedSums(dom, g.narSize);
  const status = new Array<number>(n);
  for (let i = 0; i < n; i++) status[i] = !full[i] ? OUTSIDE : kept[i] ? KEPT : SEVERAL_SEALS;
  const hits = new Uint16Array(n);
  a.closure.seals.forEach((s, si) => {
    for (const e of s.erased) {
      const h = u16At(hits, e) + 1;
      hits[e] = h;
      status[e] = h === 1 ? si : SEVERAL_SEALS;
    }
  });
  const fullOrder = topoOrderIds(g, full);
  const cs = closureSizes(g, fullOrder, opts.closureBudget ?? 6e7);
  const sealMarks: number[] = [];
  for (let i = 0; i < n; i++) if (a.seals[i]) sealMarks.push(i);
  const prefix = g.storeDir + '/';
  return {
    version: 1,
    storeDir: g.storeDir,
    source: a.source.description,
    roots: [...a.roots],
    names: g.paths.map((p) => (p.startsWith(prefix) ? p.slice(prefix.length) : p)),
    narSize: Array.from(g.narSize, num),
    closureSize: cs.sizes,
    added: Array.from(added),
    idom: Array.from(dom.idom),
    status,
    refStart: Array.from(g.refStart),
    refs: Array.from(g.refs),
    sealMarks,
    seals: a.closure.seals.map((s) => ({ id: s.seal, erased: [...s.erased], exclusive: [...s.exclusive] })),
    keptOrder: Array.from(topoOrderIds(g, kept)),
    info: infoResult(a),
    audit: opts.audit ?? null,
    verdicts: [...(opts.verdicts ?? [])],
    closureSizesPartial: cs.partial,
  };
}
