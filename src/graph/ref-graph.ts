import { f64At, itemAt, u32At } from '../checked-index.js';
import { NixSealError } from '../errors.js';
import type { StorePath } from '../store/store-path.js';

declare const pathIdBrand: unique symbol;

/**
 * Index of a path in a RefGraph. Ids follow byte-wise path order, so id order is Nix's set order.
 * Branded, so that another number (a database row id, a member number of a walk, a count) cannot
 * be passed where a path's id is meant; plain numbers become ids only through asPathId.
 */
export type PathId = number & { readonly [pathIdBrand]: true };

/** The id `i` of a graph's id space: a loop over 0..paths.length, a read of `refs`. */
export const asPathId = (i: number): PathId => i as PathId;

/**
 * A reference graph in compact form: ids instead of strings, references in CSR layout
 * (`refs[refStart[i] .. refStart[i+1]]`, sorted, duplicates removed, self references kept as Nix
 * records them). A 200,000-path graph costs a few MB, not an object per edge.
 */
export interface RefGraph {
  readonly storeDir: string;
  readonly paths: readonly StorePath[];
  /** NAR size in bytes; NaN where the source does not know it. */
  readonly narSize: Float64Array;
  /** The narHash text as the source gave it (any encoding); undefined where unknown. */
  readonly narHash: readonly (string | undefined)[];
  /** Deriver store path, or undefined. */
  readonly deriver: readonly (string | undefined)[];
  readonly refStart: Uint32Array;
  readonly refs: Uint32Array;
}

/** What a source hands over: records in any order, edges as pairs of record indices. */
export interface GraphRecords {
  storeDir: string;
  paths: StorePath[];
  narSize: ArrayLike<number>;
  narHash?: (string | undefined)[];
  deriver?: (string | undefined)[];
  edgeFrom: ArrayLike<number>;
  edgeTo: ArrayLike<number>;
  edgeCount: number;
}

/**
 * Indices of `paths` in byte-wise order (Nix's std::set order; store paths are ASCII, so that is
 * JS string order). When every path is `prefix` then [0-9a-z]… (a store dir and a base-32 hash),
 * the first characters after the prefix and the index are packed into one double per path and the
 * doubles sorted natively, far cheaper than a string comparator. Paths whose packed characters
 * tie are then ordered by their whole text; anything else compares strings.
 */
export function byteOrder(paths: readonly string[], prefix: string): Uint32Array {
  const n = paths.length;
  const order = new Uint32Array(n);
  const indexBits = 32 - Math.clz32(n);
  const scale = 2 ** indexBits;
  const chars = Math.floor((53 - indexBits) / 6); // base 36 takes under 6 bits a character
  const plen = prefix.length;
  const keys = new Float64Array(n);
  let packed = chars > 0;
  for (let i = 0; i < n && packed; i++) {
    const p = itemAt(paths, i);
    packed = p.length >= plen + chars && p.startsWith(prefix);
    let k = -0; // a double from the start: 36^6 overflows a small integer (and would deoptimize)
    for (let j = plen; packed && j < plen + chars; j++) {
      const c = p.charCodeAt(j);
      const d = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 122 ? c - 87 : -1;
      packed = d >= 0;
      k = k * 36 + d;
    }
    keys[i] = k * scale + i;
  }
  if (!packed) {
    for (let i = 0; i < n; i++) order[i] = i;
    return order.sort((a, b) => {
      const pa = itemAt(paths, a);
      const pb = itemAt(paths, b);
      return pa < pb ? -1 : pa > pb ? 1 : 0;
    });
  }
  keys.sort();
  for (let i = 0; i < n; i++) order[i] = f64At(keys, i) % scale;
  // Runs of equal packed characters: insertion sort by the whole path.
  const packedAt = (j: number): number => Math.floor(f64At(keys, j) / scale);
  const pathAt = (j: number): string => itemAt(paths, u32At(order, j));
  for (let i = 1; i < n; i++) {
    if (packedAt(i) !== packedAt(i - 1)) continue;
    for (let j = i; j > 0 && packedAt(j) === packedAt(j - 1) && pathAt(j - 1) > pathAt(j); j--) {
      const t = u32At(order, j);
      order[j] = u32At(order, j - 1);
      order[j - 1] = t;
    }
  }
  return order;
}

/**
 * Sorts the records by path, remaps edges and builds the CSR arrays. Every edge is checked to join
 * two records, so the graph's walks (closure.ts) can index by what refStart and refs hold unchecked.
 */
export function buildRefGraph(rec: GraphRecords): RefGraph {
  const n = rec.paths.length;
  const paths = rec.paths;
  // Sources that hand records over in path order already skip the sort: checking is cheaper.
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) sorted = itemAt(paths, i - 1) < itemAt(paths, i);
  let order: Uint32Array;
  if (sorted) {
    order = new Uint32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
  } else order = byteOrder(paths, `${rec.storeDir}/`);
  const newId = new Uint32Array(n);
  for (let i = 0; i < n; i++) newId[u32At(order, i)] = i;

  const sortedPaths = new Array<StorePath>(n);
  const narSize = new Float64Array(n);
  const narHash = new Array<string | undefined>(n);
  const deriver = new Array<string | undefined>(n);
  for (let i = 0; i < n; i++) {
    const old = u32At(order, i);
    const p = itemAt(paths, old);
    sortedPaths[i] = p;
    if (i > 0 && p === sortedPaths[i - 1]) {
      throw new NixSealError('EPARSE', `Cannot build graph: ${p} is listed twice`, { path: p });
    }
    narSize[i] = rec.narSize[old] ?? NaN; // a size the source does not have is unknown
    narHash[i] = rec.narHash?.[old];
    deriver[i] = rec.deriver?.[old];
  }

  // Counting sort of edges by source id, then sort each row and drop duplicates. The counting pass
  // checks that every edge joins two records (a source's or a library caller's bug would otherwise
  // vanish into NaN indices); after it, the per-edge indexing is unchecked (`!`), as in closure.ts.
  const m = rec.edgeCount;
  const { edgeFrom, edgeTo } = rec;
  if (!Number.isSafeInteger(m) || m < 0 || m > edgeFrom.length || m > edgeTo.length) {
    throw new NixSealError('EPARSE', `Cannot build graph: ${m} edges claimed, ${edgeFrom.length} and ${edgeTo.length} given`);
  }
  const count = new Uint32Array(n + 1);
  for (let e = 0; e < m; e++) {
    const f = edgeFrom[e];
    const t = edgeTo[e];
    if (!isIndex(f, n) || !isIndex(t, n)) throw new NixSealError('EPARSE', `Cannot build graph: edge ${e} joins records ${f} and ${t}, but there are ${n}`);
    count[newId[f]! + 1]!++;
  }
  for (let i = 0; i < n; i++) count[i + 1]! += count[i]!;
  const fill = count.slice(0, n);
  const raw = new Uint32Array(m);
  for (let e = 0; e < m; e++) raw[fill[newId[edgeFrom[e]!]!]!++] = newId[edgeTo[e]!]!;
  const refStart = new Uint32Array(n + 1);
  let w = 0;
  for (let i = 0; i < n; i++) {
    refStart[i] = w;
    const row = raw.subarray(u32At(count, i), u32At(count, i + 1));
    row.sort();
    for (let k = 0; k < row.length; k++) if (k === 0 || row[k] !== row[k - 1]) raw[w++] = row[k]!;
  }
  refStart[n] = w;
  return { storeDir: rec.storeDir, paths: sortedPaths, narSize, narHash, deriver, refStart, refs: raw.slice(0, w) };
}

/** An integer in [0, n): undefined, NaN and fractions are not. */
const isIndex = (x: number | undefined, n: number): x is number => x !== undefined && x === (x | 0) && x >= 0 && x < n;

/** The id of `p`, by binary search over the sorted paths. */
export function idOf(g: RefGraph, p: string): PathId | undefined {
  let lo = 0;
  let hi = g.paths.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = itemAt(g.paths, mid);
    if (v === p) return asPathId(mid);
    if (v < p) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

export function referencesOf(g: RefGraph, id: PathId): Uint32Array {
  return g.refs.subarray(u32At(g.refStart, id), u32At(g.refStart, id + 1));
}
