import type { Warning } from '../errors.js';
import type { Analysis } from '../analysis.js';
import { maskCount, maskNarSize, narSizeOf } from '../graph/closure.js';
import type { PathId } from '../graph/ref-graph.js';
import { sizeOrNull } from './closure.js';
import { f64At, itemAt } from '../checked-index.js';

export interface Amount {
  count: number;
  narSize: number | null;
}

export interface InfoResult {
  roots: string[];
  full: Amount;
  sealed: Amount;
  erased: Amount;
  seals: {
    path: string;
    narSize: number | null;
    erased: Amount;
    exclusive: Amount;
    /** Every path this seal erased, the largest first (then by path); `exclusive`: only this seal erased it. */
    erasedPaths: { path: string; narSize: number | null; exclusive: boolean }[];
  }[];
  warnings: Warning[];
}

export function infoResult(a: Analysis): InfoResult {
  const g = a.graph;
  const full = { count: maskCount(a.closure.full), narSize: sizeOrNull(maskNarSize(g, a.closure.full)) };
  const sealed = { count: maskCount(a.closure.kept), narSize: sizeOrNull(maskNarSize(g, a.closure.kept)) };
  const amount = (ids: readonly PathId[]): Amount => ({ count: ids.length, narSize: sizeOrNull(narSizeOf(g, ids)) });
  return {
    roots: a.roots.map((r) => itemAt(g.paths, r)),
    full,
    sealed,
    erased: {
      count: full.count - sealed.count,
      narSize: full.narSize === null || sealed.narSize === null ? null : full.narSize - sealed.narSize,
    },
    seals: a.closure.seals.map((s) => ({
      path: itemAt(g.paths, s.seal),
      narSize: sizeOrNull(f64At(g.narSize, s.seal)),
      erased: amount(s.erased),
      exclusive: amount(s.exclusive),
      erasedPaths: erasedList(a, s.erased, new Set(s.exclusive)),
    })),
    warnings: a.warnings,
  };
}

function erasedList(a: Analysis, ids: readonly number[], exclusive: ReadonlySet<number>): InfoResult['seals'][number]['erasedPaths'] {
  const g = a.graph;
  return ids
    .map((id) => ({ path: itemAt(g.paths, id), narSize: sizeOrNull(f64At(g.narSize, id)), exclusive: exclusive.has(id) }))
    .sort((x, y) => (y.narSize ?? -1) - (x.narSize ?? -1) || (x.path < y.path ? -1 : x.path > y.path ? 1 : 0));
}
