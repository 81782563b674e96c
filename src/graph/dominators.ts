/**
 * Dominator tree of a closure: path d dominates v when every reference chain from the roots to v
 * passes through d. The report attributes each path's bytes to its immediate dominator, so a
 * shared dependency is counted once, under the path that really keeps it (not under whichever
 * referrer a walk met first). Cooper, Harvey and Kennedy's iterative algorithm ("A Simple, Fast
 * Dominance Algorithm", 2001) over a virtual root whose children are the roots: on an acyclic
 * graph taken in reverse postorder it settles in one pass (plus one to confirm).
 */
import { f64At, i32At, u32At } from '../checked-index.js';
import type { PathMask } from './closure.js';
import type { PathId, RefGraph } from './ref-graph.js';

/** idom value of a path dominated by nothing but the virtual root (a root, or reached from several). */
export const DOMINATED_BY_ROOTS = -1;
/** idom value of a path outside the mask (not reachable from the roots). */
export const UNREACHED = -2;

export interface Dominators {
  /** Immediate dominator of each path: a PathId, DOMINATED_BY_ROOTS or UNREACHED. */
  readonly idom: Int32Array;
  /** The reached paths in reverse postorder: every path comes after its immediate dominator. */
  readonly order: Uint32Array;
}

/**
 * The dominator tree of the paths reachable from `roots` (self references ignored). The walk, the
 * predecessor lists and the intersection run per edge and index unchecked (`!`), as in closure.ts
 * and for the same measured reason; the per-path loops around them are checked.
 */
export function dominators(g: RefGraph, roots: readonly PathId[]): Dominators {
  const n = g.paths.length;
  const { refStart, refs } = g;
  const VR = n; // the virtual root
  // Postorder numbers by an iterative depth-first walk from the virtual root (roots in order).
  const po = new Int32Array(n + 1).fill(-1);
  const seen = new Uint8Array(n);
  const post = new Uint32Array(n);
  let count = 0;
  const stackNode = new Uint32Array(n);
  const stackPos = new Uint32Array(n);
  for (const r of roots) {
    if (seen[r]) continue;
    seen[r] = 1;
    let sp = 0;
    stackNode[sp] = r;
    stackPos[sp++] = refStart[r]!;
    while (sp > 0) {
      const v = stackNode[sp - 1]!;
      const k = stackPos[sp - 1]!;
      if (k < refStart[v + 1]!) {
        stackPos[sp - 1] = k + 1;
        const w = refs[k]!;
        if (!seen[w]) {
          seen[w] = 1;
          stackNode[sp] = w;
          stackPos[sp++] = refStart[w]!;
        }
      } else {
        po[v] = count;
        post[count++] = v;
        sp--;
      }
    }
  }
  po[VR] = count;

  // Predecessors (reverse references) among reached paths, self references dropped.
  const predStart = new Uint32Array(n + 1);
  for (let v = 0; v < n; v++) {
    if (!seen[v]) continue;
    for (let k = refStart[v]!; k < refStart[v + 1]!; k++) if (refs[k] !== v) predStart[refs[k]! + 1]!++;
  }
  for (let i = 0; i < n; i++) predStart[i + 1]! += predStart[i]!;
  const fill = predStart.slice(0, n);
  const preds = new Uint32Array(predStart[n]!);
  for (let v = 0; v < n; v++) {
    if (!seen[v]) continue;
    for (let k = refStart[v]!; k < refStart[v + 1]!; k++) if (refs[k] !== v) preds[fill[refs[k]!]!++] = v;
  }
  const isRoot = new Uint8Array(n);
  for (const r of roots) isRoot[r] = 1;

  const idom = new Int32Array(n + 1).fill(-1); // -1: not yet known; VR's own entry is VR
  idom[VR] = VR;
  const intersect = (a: number, b: number): number => {
    while (a !== b) {
      while (po[a]! < po[b]!) a = idom[a]!;
      while (po[b]! < po[a]!) b = idom[b]!;
    }
    return a;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let i = count - 1; i >= 0; i--) {
      const v = post[i]!;
      let d = isRoot[v] ? VR : -1;
      for (let k = predStart[v]!; k < predStart[v + 1]!; k++) {
        const p = preds[k]!;
        if (idom[p] === -1) continue; // not processed yet
        d = d === -1 ? p : intersect(p, d);
      }
      if (idom[v] !== d) {
        idom[v] = d;
        changed = true;
      }
    }
  }
  const out = new Int32Array(n);
  for (let v = 0; v < n; v++) out[v] = !seen[v] ? UNREACHED : idom[v] === VR ? DOMINATED_BY_ROOTS : i32At(idom, v);
  const order = post.slice(0, count).reverse();
  return { idom: out, order };
}

/**
 * For each reached path, the sum of `weight` over its dominator subtree (itself and everything it
 * dominates): what would leave the closure with it. Unknown weights (NaN) count as 0 here.
 */
export function dominatedSums(d: Dominators, weight: Float64Array): Float64Array {
  const sum = new Float64Array(d.idom.length);
  for (let i = d.order.length - 1; i >= 0; i--) {
    const v = u32At(d.order, i);
    const w = f64At(weight, v);
    const own = f64At(sum, v) + (Number.isNaN(w) ? 0 : w);
    sum[v] = own;
    const p = i32At(d.idom, v);
    if (p >= 0) sum[p] = f64At(sum, p) + own;
  }
  return sum;
}

/** Mask of the paths a Dominators result reached. */
export function reachedMask(d: Dominators): PathMask {
  const m = new Uint8Array(d.idom.length);
  for (const v of d.order) m[v] = 1;
  return m;
}
