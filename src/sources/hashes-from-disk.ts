/**
 * Sources that do not record narHash or narSize (the legacy exportReferencesGraph file has
 * neither; old database rows may lack narSize) get them from the store on disk: the NAR of
 * `<realStoreDir>/<basename>`, hashed exactly as Nix registers it. The graph is not changed: the
 * functions return a new one with the missing values filled in.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeSystemError, errnoCode, NixSealError } from '../errors.js';
import type { PathMask } from '../graph/closure.js';
import type { RefGraph } from '../graph/ref-graph.js';
import { narHashAndSize, narSizeOf } from '../formats/nar.js';
import { hashesEqual, parseHash } from '../store/hash.js';
import { f64At, itemAt } from '../checked-index.js';

/** Where a graph's paths are on disk, and how to name the source in messages. */
export interface StoreOnDisk {
  readonly realStoreDir: string;
  readonly description: string;
}

/** Where the files of store path `p` really are (differs from `p` for `local?root=` stores). */
export function onDiskPath(store: StoreOnDisk, p: string): string {
  return path.join(store.realStoreDir, path.posix.basename(p));
}

function checkOnDisk(store: StoreOnDisk, p: string, what: string): string {
  const fsPath = onDiskPath(store, p);
  try {
    fs.lstatSync(fsPath);
  } catch (err) {
    const code = errnoCode(err);
    const why =
      code === 'ENOENT' || code === 'ENOTDIR'
        ? `${fsPath === p ? 'it' : fsPath} is not on disk, and ${store.description} records no ${what} for it`
        : `${fsPath}: ${describeSystemError(err)}`;
    throw new NixSealError('EIO', `Cannot compute the ${what} of ${p}: ${why}`, { path: p, cause: err });
  }
  return fsPath;
}

/**
 * `g` with narHash and narSize computed from disk for every path in `only` whose source lacks
 * either. Where the source gave a size but no hash, the size on disk must agree (and the hash,
 * where only the size is missing). Throws EIO naming the path when one is not on disk or
 * unreadable. `hashed`: how many paths were hashed (0: `graph` is `g` itself).
 */
export async function withHashesFromDisk(
  g: RefGraph,
  store: StoreOnDisk,
  only: PathMask,
  log: (msg: string) => void = () => {},
): Promise<{ graph: RefGraph; hashed: number }> {
  const todo: number[] = [];
  for (let i = 0; i < g.paths.length; i++) {
    if (only[i] && (g.narHash[i] === undefined || Number.isNaN(f64At(g.narSize, i)))) todo.push(i);
  }
  if (todo.length === 0) return { graph: g, hashed: 0 };
  log(`computing narHash and narSize of ${todo.length} path${todo.length === 1 ? '' : 's'} from ${store.realStoreDir} (${store.description} lacks them)`);
  const narHash = g.narHash.slice();
  const narSize = g.narSize.slice();
  // One path after another: hashing runs on this thread anyway, and the first failure names its path.
  for (const i of todo) {
    const p = itemAt(g.paths, i);
    const fsPath = checkOnDisk(store, p, 'narHash');
    const { narHash: h, narSize: size } = await narHashAndSize(fsPath);
    const known = f64At(g.narSize, i);
    if (!Number.isNaN(known) && known !== size) {
      throw new NixSealError('EIO', `Cannot compute the narHash of ${p}: its NAR on disk is ${size} bytes, but ${store.description} says ${known}`, { path: p });
    }
    const knownHash = g.narHash[i];
    if (knownHash !== undefined && !hashesEqual(parseHash(knownHash, 'sha256'), parseHash(h))) {
      throw new NixSealError('EIO', `Cannot compute the narSize of ${p}: its NAR on disk hashes to ${h}, but ${store.description} says ${knownHash}`, { path: p });
    }
    narHash[i] = knownHash ?? h;
    narSize[i] = size;
  }
  return { graph: { ...g, narHash, narSize }, hashed: todo.length };
}

/**
 * Best effort, for reporting only: `g` with unknown narSizes in `mask` filled from disk without
 * reading file contents (lstat and readlink only). Paths that are not on disk keep NaN.
 */
export async function withSizesFromDisk(g: RefGraph, store: StoreOnDisk, mask: PathMask): Promise<RefGraph> {
  let narSize: Float64Array | undefined;
  for (let i = 0; i < g.paths.length; i++) {
    if (!mask[i] || !Number.isNaN(f64At(g.narSize, i))) continue;
    try {
      const size = await narSizeOf(onDiskPath(store, itemAt(g.paths, i)));
      (narSize ??= g.narSize.slice())[i] = size;
    } catch {
      // Not on disk (or unreadable): the size stays unknown, reported as null.
    }
  }
  return narSize === undefined ? g : { ...g, narSize };
}
