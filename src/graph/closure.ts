import { f64At, itemAt, u32At } from '../checked-index.js';
import { NixSealError } from '../errors.js';
import type { PathId, RefGraph } from './ref-graph.js';
import { asPathId } from './ref-graph.js';

/** A set of path ids as a byte mask over the graph (1 = member). */
export type PathMask = Uint8Array;

/*
 * Fresh memory is what these walks mostly cost on a large graph (first-touched pages): a caller
 * doing several walks passes one Scratch through them, so their stacks are one array touched once;
 * nothing is allocated for seals that are not there.
 */

/*
 * The walks and the mask sums index their typed arrays unchecked (`!`): they run per edge or per
 * path of graphs of 200,000 paths and a million edges, where the checked accessors of
 * checked-index.ts measurably cost (BENCHMARKS.md, "Figures behind code choices"). The ids they read
 * come from the graph itself (refStart, refs), whose edges buildRefGraph checked. The rest is checked.
 */

/** Stack space for the walks, reusable across calls (passed explicitly: no shared module state). */
export class Scratch {
  private buf = new Uint32Array(0);
  /** A Uint32Array of at least `n` elements; its contents are garbage. */
  stack(n: number): Uint32Array {
    if (this.buf.length < n) this.buf = new Uint32Array(n);
    return this.buf;
  }
}

/**
 * Every path reachable from `roots` along references. When `seals` is given, a reached seal is
 * kept but its own references are not followed: they stay in only if something unsealed also
 * reaches them. Without seals this is exactly `nix-store -qR`'s set.
 */
export function reach(g: RefGraph, roots: Iterable<PathId>, seals?: PathMask, scratch = new Scratch()): PathMask {
  const n = g.paths.length;
  const mark = new Uint8Array(n);
  const stack = scratch.stack(n);
  let sp = 0;
  for (const r of roots) {
    if (!mark[r]) {
      mark[r] = 1;
      stack[sp++] = r;
    }
  }
  const { refStart, refs } = g;
  while (sp > 0) {
    const v = stack[--sp]!;
    if (seals && seals[v]) continue;
    for (let k = refStart[v]!, end = refStart[v + 1]!; k < end; k++) {
      const w = refs[k]!;
      if (!mark[w]) {
        mark[w] = 1;
        stack[sp++] = w;
      }
    }
  }
  return mark;
}

export function maskCount(mask: PathMask): number {
  let c = 0;
  for (let i = 0; i < mask.length; i++) c += mask[i]!;
  return c;
}

/** Sum of narSize over the mask; NaN when any member's size is unknown. */
export function maskNarSize(g: RefGraph, mask: PathMask): number {
  let s = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i]) s += g.narSize[i]!;
  return s;
}

/**
 * The members of `mask` with dependencies before dependents, in exactly the order `nix-store -qR`
 * prints: Nix's topoSortPaths is a depth-first walk over paths in byte-wise order, visiting
 * references in byte-wise order and skipping those outside the set, emitting each path after its
 * references. Ids are already in byte-wise order, so an iterative DFS over ids reproduces it.
 */
export function topoOrder(g: RefGraph, mask: PathMask, scratch?: Scratch): PathId[] {
  const ids = topoOrderIds(g, mask, scratch);
  // One exact-size array (Array.from would grow one through an iterator).
  const out = new Array<PathId>(ids.length);
  for (let i = 0; i < ids.length; i++) out[i] = asPathId(u32At(ids, i));
  return out;
}

/** topoOrder as a typed array. */
export function topoOrderIds(g: RefGraph, mask: PathMask, scratch = new Scratch()): Uint32Array {
  const n = g.paths.length;
  const state = new Uint8Array(n); // 0 new, 1 on stack, 2 done
  const out = new Uint32Array(maskCount(mask));
  let count = 0;
  const stack = scratch.stack(2 * n);
  const stackNode = stack.subarray(0, n);
  const stackPos = stack.subarray(n, 2 * n);
  const { refStart, refs } = g;
  for (let root = 0; root < n; root++) {
    if (!mask[root] || state[root]) continue;
    let sp = 0;
    stackNode[0] = root;
    stackPos[0] = refStart[root]!;
    state[root] = 1;
    sp = 1;
    while (sp > 0) {
      const v = stackNode[sp - 1]!;
      const end = refStart[v + 1]!;
      let k = stackPos[sp - 1]!;
      let descended = false;
      while (k < end) {
        const w = refs[k++]!;
        if (w === v || !mask[w]) continue;
        if (state[w] === 1) {
          throw new NixSealError('EPARSE', `Cannot sort paths: cycle between ${g.paths[v]} and ${g.paths[w]}`, {
            path: itemAt(g.paths, v),
          });
        }
        if (state[w] === 0) {
          stackPos[sp - 1] = k;
          state[w] = 1;
          stackNode[sp] = w;
          stackPos[sp] = refStart[w]!;
          sp++;
          descended = true;
          break;
        }
      }
      if (!descended) {
        state[v] = 2;
        out[count++] = v;
        sp--;
      }
    }
  }
  return out;
}

/** What one seal erased: paths reachable through it and not kept. */
export interface SealErasure {
  readonly seal: PathId;
  /** Every erased path reached through this seal. */
  readonly erased: PathId[];
  /** Of those, the ones no other seal also reaches. */
  readonly exclusive: PathId[];
}

export interface SealedClosure {
  readonly roots: PathId[];
  /** The full closure (no seals), like `nix-store -qR`. */
  readonly full: PathMask;
  /** The sealed closure. */
  readonly kept: PathMask;
  /** Seals that were reached (kept), in path order, with what each erased. */
  readonly seals: SealErasure[];
}

/**
 * Computes the full and the sealed closure and attributes every erased path (in the full closure,
 * not in the sealed one) to the reached seal(s) through which it is reachable. A walk from a
 * seal only crosses erased paths: a kept path's references are kept unless it is itself a seal,
 * and then what lies behind it is that seal's to account for. `full`: the roots' full closure when
 * the caller has it already (`reach(g, roots)`), so that it is not walked twice.
 */
export function sealedClosure(g: RefGraph, roots: PathId[], seals: PathMask, full?: PathMask, scratch = new Scratch()): SealedClosure {
  full ??= reach(g, roots, undefined, scratch);
  const n = g.paths.length;
  let anySeal = false;
  for (let i = 0; i < n && !anySeal; i++) anySeal = !!seals[i] && !!full[i];
  // Without a reached seal the sealed closure is the full one: no second walk, nothing to attribute.
  if (!anySeal) return { roots, full, kept: full.slice(), seals: [] };
  const kept = reach(g, roots, seals, scratch);
  const reachedSeals: PathId[] = [];
  for (let i = 0; i < n; i++) if (seals[i] && kept[i]) reachedSeals.push(asPathId(i));

  const erasedBy: PathId[][] = [];
  const hits = new Uint16Array(n); // how many seals reach each erased path (saturating)
  const seen = new Uint32Array(n); // walk stamp: seal index + 1
  const stack = scratch.stack(n);
  const { refStart, refs } = g;
  reachedSeals.forEach((s, si) => {
    const stamp = si + 1;
    const erased: PathId[] = [];
    let sp = 0;
    for (let k = refStart[s]!, end = refStart[s + 1]!; k < end; k++) {
      const w = refs[k]!;
      if (!kept[w] && seen[w] !== stamp) {
        seen[w] = stamp;
        stack[sp++] = w;
      }
    }
    while (sp > 0) {
      const v = stack[--sp]!;
      erased.push(asPathId(v));
      if (hits[v]! < 0xffff) hits[v]!++;
      for (let k = refStart[v]!, end = refStart[v + 1]!; k < end; k++) {
        const w = refs[k]!;
        if (!kept[w] && seen[w] !== stamp) {
          seen[w] = stamp;
          stack[sp++] = w;
        }
      }
    }
    erasedBy.push(erased.sort((a, b) => a - b));
  });
  return {
    roots,
    full,
    kept,
    seals: reachedSeals.map((seal, si) => {
      const erased = itemAt(erasedBy, si);
      return { seal, erased, exclusive: erased.filter((v) => hits[v] === 1) };
    }),
  };
}

/** Sum of narSize over a list of ids. */
export function narSizeOf(g: RefGraph, ids: readonly PathId[]): number {
  let s = 0;
  for (const i of ids) s += f64At(g.narSize, i);
  return s;
}
