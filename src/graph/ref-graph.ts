import { NixSealError } from '../errors.js';
import type { StorePath } from '../store/store-path.js';

/** Index of a path in a RefGraph. Ids follow byte-wise path order, so id order is Nix's set order. */
export type PathId = number;

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

/** Sorts the records by path, remaps edges and builds the CSR arrays. */
export function buildRefGraph(rec: GraphRecords): RefGraph {
  const n = rec.paths.length;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  const paths = rec.paths;
  // Store paths are ASCII, so JS string order is byte-wise order (what Nix's std::set uses).
  // The database hands rows over already in path order; checking is cheaper than sorting.
  let sorted = true;
  for (let i = 1; i < n && sorted; i++) sorted = paths[i - 1]! < paths[i]!;
  if (!sorted) order.sort((a, b) => (paths[a]! < paths[b]! ? -1 : paths[a]! > paths[b]! ? 1 : 0));
  const newId = new Uint32Array(n);
  for (let i = 0; i < n; i++) newId[order[i]!] = i;

  const sortedPaths = new Array<StorePath>(n);
  const narSize = new Float64Array(n);
  const narHash = new Array<string | undefined>(n);
  const deriver = new Array<string | undefined>(n);
  for (let i = 0; i < n; i++) {
    const old = order[i]!;
    sortedPaths[i] = paths[old]!;
    if (i > 0 && sortedPaths[i] === sortedPaths[i - 1]) {
      throw new NixSealError('EPARSE', `Cannot build graph: ${sortedPaths[i]} is listed twice`, { path: sortedPaths[i] });
    }
    narSize[i] = rec.narSize[old]!;
    narHash[i] = rec.narHash?.[old];
    deriver[i] = rec.deriver?.[old];
  }

  // Counting sort of edges by new source id, then sort each row and drop duplicates.
  const m = rec.edgeCount;
  const count = new Uint32Array(n + 1);
  for (let e = 0; e < m; e++) count[newId[rec.edgeFrom[e]!]! + 1]!++;
  for (let i = 0; i < n; i++) count[i + 1]! += count[i]!;
  const fill = count.slice(0, n);
  const raw = new Uint32Array(m);
  for (let e = 0; e < m; e++) raw[fill[newId[rec.edgeFrom[e]!]!]!++] = newId[rec.edgeTo[e]!]!;
  const refStart = new Uint32Array(n + 1);
  let w = 0;
  for (let i = 0; i < n; i++) {
    refStart[i] = w;
    const row = raw.subarray(count[i]!, count[i + 1]!);
    row.sort();
    for (let k = 0; k < row.length; k++) if (k === 0 || row[k] !== row[k - 1]) raw[w++] = row[k]!;
  }
  refStart[n] = w;
  return { storeDir: rec.storeDir, paths: sortedPaths, narSize, narHash, deriver, refStart, refs: raw.slice(0, w) };
}

/** The id of `p`, by binary search over the sorted paths. */
export function idOf(g: RefGraph, p: string): PathId | undefined {
  let lo = 0;
  let hi = g.paths.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = g.paths[mid]!;
    if (v === p) return mid;
    if (v < p) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

export function referencesOf(g: RefGraph, id: PathId): Uint32Array {
  return g.refs.subarray(g.refStart[id]!, g.refStart[id + 1]!);
}
