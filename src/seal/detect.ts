/**
 * `--seal-images`: which paths of a closure are self-contained images, by their bytes.
 *
 * Only paths with a reference to another path are sniffed: sealing a path without references
 * erases nothing, and most store paths of a large closure are leaves or small libraries whose
 * first file settles the question after one short read.
 */
import path from 'node:path';
import type { PathMask } from '../graph/closure.js';
import type { PathId, RefGraph } from '../graph/ref-graph.js';
import { asPathId } from '../graph/ref-graph.js';
import { sniffStorePath, type PathSniff } from './sniff.js';
import { itemAt, u32At } from '../checked-index.js';

export interface DetectedImage {
  id: PathId;
  sniff: PathSniff;
}

/** Does `id` refer to some path other than itself? */
export function hasForeignReferences(g: RefGraph, id: PathId): boolean {
  for (let k = u32At(g.refStart, id); k < u32At(g.refStart, id + 1); k++) if (g.refs[k] !== id) return true;
  return false;
}

/** The images among `candidates` that refer to other paths, in path order. */
export function detectImages(g: RefGraph, candidates: PathMask, realStoreDir: string): DetectedImage[] {
  const out: DetectedImage[] = [];
  for (let i = 0; i < g.paths.length; i++) {
    const id = asPathId(i);
    if (!candidates[id] || !hasForeignReferences(g, id)) continue;
    const sniff = sniffStorePath(path.join(realStoreDir, path.posix.basename(itemAt(g.paths, id))));
    if (sniff.image) out.push({ id, sniff });
  }
  return out;
}
