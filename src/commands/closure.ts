import type { Warning } from '../errors.js';
import type { Analysis } from '../analysis.js';
import { maskCount, maskNarSize, narSizeOf, topoOrder, topoOrderIds } from '../graph/closure.js';
import { referencesOf } from '../graph/ref-graph.js';
import { f64At, itemAt, u32At } from '../checked-index.js';

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
    roots: a.roots.map((r) => itemAt(g.paths, r)),
    paths: topoOrder(g, kept).map((id) => ({
      path: itemAt(g.paths, id),
      narSize: sizeOrNull(f64At(g.narSize, id)),
      references: Array.from(referencesOf(g, id))
        .filter((r) => kept[r])
        .map((r) => itemAt(g.paths, r)),
    })),
    seals: a.closure.seals.map((s) => ({
      path: itemAt(g.paths, s.seal),
      erased: s.erased.map((e) => itemAt(g.paths, e)),
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
  let i = 0;
  for (const id of order) lines[i++] = itemAt(g.paths, id);
  lines[order.length] = ''; // the last newline
  return lines.join('\n');
}


/** Paths per write of writeClosureLines (~90 kB of text: young-generation strings, reused memory). */
const LINES_PER_WRITE = 1024;

/**
 * closureLines, handed to `write` in pieces of LINES_PER_WRITE lines (what the CLI prints): one
 * string of 45k–190k paths is 4–17 MB of fresh memory, then as much again when stdout encodes it;
 * pieces are small strings whose memory the next piece reuses (measured faster: BENCHMARKS.md,
 * "Figures behind code choices").
 */
export function writeClosureLines(a: Analysis, write: (text: string) => void): void {
  const g = a.graph;
  const order = topoOrderIds(g, a.closure.kept);
  const lines = new Array<string>(LINES_PER_WRITE + 1);
  for (let i = 0; i < order.length; i += LINES_PER_WRITE) {
    const n = Math.min(LINES_PER_WRITE, order.length - i);
    if (n < LINES_PER_WRITE) lines.length = n + 1;
    for (let j = 0; j < n; j++) lines[j] = itemAt(g.paths, u32At(order, i + j));
    lines[n] = ''; // each piece ends with its last newline
    write(lines.join('\n'));
  }
}
