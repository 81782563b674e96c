import { u32At } from '../checked-index.js';
import type { PathMask } from './closure.js';

/** A map key for the edge from → to (store paths hold no newline). */
export const edgeKey = (from: string, to: string): string => `${from}\n${to}`;
import type { PathId, RefGraph } from './ref-graph.js';
import { asPathId } from './ref-graph.js';

/**
 * The shortest reference chain from `from` to `to` (inclusive), breadth-first with references in
 * path order so the answer is deterministic. `blocked` marks paths whose references may not be
 * followed (seals, when asking about the sealed closure). Undefined when `to` is unreachable.
 * Self-contained (no calls to other functions, so its reads are unchecked `!`): the report page
 * inlines its source.
 */
export function shortestChain(g: RefGraph, from: PathId, to: PathId, blocked?: PathMask): PathId[] | undefined {
  const n = g.paths.length;
  const parent = new Int32Array(n).fill(-1);
  const queue = new Uint32Array(n);
  let head = 0;
  let tail = 0;
  queue[tail++] = from;
  parent[from] = from;
  const { refStart, refs } = g;
  while (head < tail) {
    const v = queue[head++]!;
    if (v === to) break;
    if (blocked && blocked[v]) continue;
    for (let k = refStart[v]!, end = refStart[v + 1]!; k < end; k++) {
      const w = refs[k]!;
      if (parent[w] === -1) {
        parent[w] = v;
        queue[tail++] = w;
      }
    }
  }
  if (parent[to] === -1) return undefined;
  const chain: PathId[] = [to];
  for (let v: number = to; v !== from; ) {
    v = parent[v]!;
    // A cast, not asPathId(): the report page inlines this function's source (shortestChain.toString()).
    chain.push(v as PathId);
  }
  return chain.reverse();
}

/**
 * Paths from which `to` can be reached (including `to`), walking references backwards. Per edge of
 * the closure, so unchecked (`!`) like the walks in closure.ts.
 */
function canReach(g: RefGraph, to: PathId, blocked?: PathMask): PathMask {
  const n = g.paths.length;
  // Reverse CSR built on demand: `why --all` is rare and the graph is only the closure.
  const count = new Uint32Array(n + 1);
  for (let v = 0; v < n; v++) {
    if (blocked && blocked[v]) continue;
    for (let k = g.refStart[v]!; k < g.refStart[v + 1]!; k++) count[g.refs[k]! + 1]!++;
  }
  for (let i = 0; i < n; i++) count[i + 1]! += count[i]!;
  const fill = count.slice(0, n);
  const rev = new Uint32Array(count[n]!);
  for (let v = 0; v < n; v++) {
    if (blocked && blocked[v]) continue;
    for (let k = g.refStart[v]!; k < g.refStart[v + 1]!; k++) rev[fill[g.refs[k]!]!++] = v;
  }
  const mark = new Uint8Array(n);
  const stack: number[] = [to];
  mark[to] = 1;
  while (stack.length > 0) {
    const v = stack.pop()!;
    for (let k = count[v]!; k < count[v + 1]!; k++) {
      const w = rev[k]!;
      if (!mark[w]) {
        mark[w] = 1;
        stack.push(w);
      }
    }
  }
  return mark;
}

/**
 * Every chain from `from` to `to`, shortest first, at most `limit` of them. Only paths that can
 * still reach `to` are explored, so the work is bounded by the chains printed, not the graph.
 */
export function allChains(g: RefGraph, from: PathId, to: PathId, limit: number, blocked?: PathMask): PathId[][] {
  const useful = canReach(g, to, blocked);
  if (!useful[from]) return [];
  const chains: PathId[][] = [];
  const chain: PathId[] = [from];
  const onChain = new Uint8Array(g.paths.length);
  onChain[from] = 1;
  // Depth-first enumeration; more are collected than printed so that sorting by length is meaningful.
  const budget = Math.max(limit * 20, 1000);
  const visit = (v: PathId): void => {
    if (chains.length >= budget) return;
    if (v === to) {
      chains.push(chain.slice());
      return;
    }
    if (blocked && blocked[v]) return;
    for (let k = u32At(g.refStart, v), end = u32At(g.refStart, v + 1); k < end; k++) {
      const w = asPathId(u32At(g.refs, k));
      if (!useful[w] || onChain[w]) continue;
      onChain[w] = 1;
      chain.push(w);
      visit(w);
      chain.pop();
      onChain[w] = 0;
    }
  };
  visit(from);
  chains.sort((a, b) => a.length - b.length);
  return chains.slice(0, limit);
}
