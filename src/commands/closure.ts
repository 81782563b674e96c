import type { Warning } from '../errors.js';
import type { Analysis } from '../analysis.js';
import { maskCount, maskNarSize, narSizeOf, topoOrder, topoOrderIds } from '../graph/closure.js';
import { referencesOf } from '../graph/ref-graph.js';

/** `nix-seal closure --json`: the contract in the README. Sizes are null where the source lacks them. */
export interface ClosureResult {
  roots: string[];
  paths: { path: string; narSize: number | null; references: string[] }[];
  seals: { path: string; erased: string[]; erasedNarSize: number | null }[];
  totals: { fullCount: number; fullNarSize: number | null; sealedCount: number; sealedNarSize: number | null };
  warnings: Warning[];
}

export const sizeOrNull = (n: number): number | null => (Number.isNaN(n) ? null : n);

export function closureResult(a: Analysis): ClosureResult {
  const g = a.graph;
  const { kept, full } = a.closure;
  return {
    roots: a.roots.map((r) => g.paths[r]!),
    paths: topoOrder(g, kept).map((id) => ({
      path: g.paths[id]!,
      narSize: sizeOrNull(g.narSize[id]!),
      references: Array.from(referencesOf(g, id))
        .filter((r) => kept[r])
        .map((r) => g.paths[r]!),
    })),
    seals: a.closure.seals.map((s) => ({
      path: g.paths[s.seal]!,
      erased: s.erased.map((e) => g.paths[e]!),
      erasedNarSize: sizeOrNull(narSizeOf(g, s.erased)),
    })),
    totals: {
      fullCount: maskCount(full),
      fullNarSize: sizeOrNull(maskNarSize(g, full)),
      sealedCount: maskCount(kept),
      sealedNarSize: sizeOrNull(maskNarSize(g, kept)),
    },
    warnings: a.warnings,
  };
}

/**
 * The plain output: one path a line, dependencies first. One join of an exact-size array: `+=`
 * builds a rope of 2n cons strings that V8 then copies through the young generation and
 * flattens, three times the memory for 190k paths.
 */
export function closureLines(a: Analysis): string {
  const g = a.graph;
  const order = topoOrderIds(g, a.closure.kept);
  const lines = new Array<string>(order.length + 1);
  for (let i = 0; i < order.length; i++) lines[i] = g.paths[order[i]!]!;
  lines[order.length] = ''; // the last newline
  return lines.join('\n');
}

