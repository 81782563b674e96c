/**
 * Sources that do not record narHash or narSize (the legacy exportReferencesGraph file has
 * neither; old database rows may lack narSize) get them from the store on disk: the NAR of
 * `<realStoreDir>/<basename>`, hashed exactly as Nix registers it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Analysis } from '../analysis.js';
import { describeSystemError, NixSealError } from '../errors.js';
import type { PathMask } from '../graph/closure.js';
import { narHashAndSize, narSizeOf } from '../formats/nar.js';
import { hashesEqual, parseHash } from '../store/hash.js';

/** Where the files of store path `p` really are (differs from `p` for `local?root=` stores). */
export function onDiskPath(a: Analysis, p: string): string {
  return path.join(a.source.realStoreDir, path.posix.basename(p));
}

function checkOnDisk(a: Analysis, p: string, what: string): string {
  const fsPath = onDiskPath(a, p);
  try {
    fs.lstatSync(fsPath);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code;
    const why =
      code === 'ENOENT' || code === 'ENOTDIR'
        ? `${fsPath === p ? 'it' : fsPath} is not on disk, and ${a.source.description} records no ${what} for it`
        : `${fsPath}: ${describeSystemError(err)}`;
    throw new NixSealError('EIO', `Cannot compute the ${what} of ${p}: ${why}`, { path: p, cause: err });
  }
  return fsPath;
}

/**
 * Computes narHash and narSize from disk for every path in `onlyKept` whose source lacks either,
 * and stores them in the graph (mutating its arrays). Where the source gave a size but no hash,
 * the size on disk must agree (and the hash, where only the size is missing). Throws EIO naming the path when one is not on disk or unreadable.
 * Returns how many paths were hashed.
 */
export async function fillMissingHashes(a: Analysis, onlyKept: Uint8Array, log: (msg: string) => void = () => {}): Promise<number> {
  const g = a.graph;
  const narHash = g.narHash as (string | undefined)[];
  const todo: number[] = [];
  for (let i = 0; i < g.paths.length; i++) {
    if (onlyKept[i] && (narHash[i] === undefined || Number.isNaN(g.narSize[i]!))) todo.push(i);
  }
  if (todo.length === 0) return 0;
  log(`computing narHash and narSize of ${todo.length} path${todo.length === 1 ? '' : 's'} from ${a.source.realStoreDir} (${a.source.description} lacks them)`);
  // One path after another: hashing runs on this thread anyway, and the first failure names its path.
  for (const i of todo) {
    const p = g.paths[i]!;
    const fsPath = checkOnDisk(a, p, 'narHash');
    const { narHash: h, narSize } = await narHashAndSize(fsPath);
    const known = g.narSize[i]!;
    if (!Number.isNaN(known) && known !== narSize) {
      throw new NixSealError(
        'EIO',
        `Cannot compute the narHash of ${p}: its NAR on disk is ${narSize} bytes, but ${a.source.description} says ${known}`,
        { path: p },
      );
    }
    const knownHash = narHash[i];
    if (knownHash !== undefined && !hashesEqual(parseHash(knownHash, 'sha256'), parseHash(h))) {
      throw new NixSealError(
        'EIO',
        `Cannot compute the narSize of ${p}: its NAR on disk hashes to ${h}, but ${a.source.description} says ${knownHash}`,
        { path: p },
      );
    }
    narHash[i] = knownHash ?? h;
    g.narSize[i] = narSize;
  }
  return todo.length;
}

/**
 * Best effort, for reporting only: fills unknown narSizes in `mask` from disk without reading file
 * contents (lstat and readlink only). Paths that are not on disk keep NaN. Returns how many were filled.
 */
export async function fillMissingSizes(a: Analysis, mask: PathMask): Promise<number> {
  const g = a.graph;
  let filled = 0;
  for (let i = 0; i < g.paths.length; i++) {
    if (!mask[i] || !Number.isNaN(g.narSize[i]!)) continue;
    try {
      g.narSize[i] = await narSizeOf(onDiskPath(a, g.paths[i]!));
      filled++;
    } catch {
      // Not on disk (or unreadable): the size stays unknown, reported as null.
    }
  }
  return filled;
}
