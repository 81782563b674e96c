/**
 * A path on disk walked in NAR order, the one order both the NAR serialiser (formats/nar.ts) and
 * the reference scanner (scan/scan-path.ts) need: a node, and for a directory its entries sorted
 * byte-wise (Nix's std::map order), each entry's name before its node. Paths are Buffers, so names
 * that are not UTF-8 survive unchanged. The walk is lazy and holds one directory listing per level.
 *
 * Metadata calls (lstat, readdir, readlink) are synchronous: they are served from the kernel's
 * caches in microseconds, and a thread-pool round trip per call would make a store path of 100k
 * small files several times slower. File contents are the consumer's to read.
 */
import { lstatSync, read, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { itemAt } from '../checked-index.js';
import type { NixSealError } from '../errors.js';

export const SLASH = Buffer.from('/');

/** Size of one read of a large file's contents: 4 MiB (fewer promise round trips per byte than 1 MiB). */
export const READ_CHUNK = 4 << 20;

export type WalkEvent =
  /** A directory node: its entries follow, then `end`. */
  | { type: 'directory'; path: Buffer; rel: Buffer }
  /** The end of the innermost open directory. */
  | { type: 'end' }
  /** An entry's name; its node follows, then `entry-end`. */
  | { type: 'entry'; name: Buffer; rel: Buffer }
  | { type: 'entry-end' }
  | { type: 'symlink'; path: Buffer; rel: Buffer; target: Buffer }
  | { type: 'regular'; path: Buffer; rel: Buffer; st: Stats };

export interface WalkErrors {
  /** A failed system call on `path`. */
  io(path: Buffer, err: unknown): NixSealError;
  /** A socket, fifo or device: what a NAR cannot hold. */
  type(path: Buffer, st: Stats): NixSealError;
}

/** The nodes of `root` (not followed if it is a symlink) in NAR order; `rel` is relative to root ('' for it). */
export function* walkNarOrder(root: Buffer, errors: WalkErrors): Generator<WalkEvent, void, undefined> {
  interface Frame {
    path: Buffer;
    rel: Buffer;
    names: Buffer[];
    next: number;
  }
  const stack: Frame[] = [];
  let path: Buffer | undefined = root;
  let rel: Buffer = Buffer.alloc(0);
  while (path !== undefined) {
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch (err) {
      throw errors.io(path, err);
    }
    const isDir = st.isDirectory();
    if (isDir) {
      let names: Buffer[];
      try {
        names = readdirSync(path, { encoding: 'buffer' });
      } catch (err) {
        throw errors.io(path, err);
      }
      yield { type: 'directory', path, rel };
      stack.push({ path, rel, names: names.sort(Buffer.compare), next: 0 });
    } else if (st.isSymbolicLink()) {
      let target: Buffer;
      try {
        target = readlinkSync(path, { encoding: 'buffer' });
      } catch (err) {
        throw errors.io(path, err);
      }
      yield { type: 'symlink', path, rel, target };
    } else if (st.isFile()) {
      yield { type: 'regular', path, rel, st };
    } else {
      throw errors.type(path, st);
    }
    // Close finished nodes, then move on to the next entry of the innermost open directory.
    let closeEntry = !isDir && stack.length > 0;
    path = undefined;
    while (stack.length > 0) {
      if (closeEntry) yield { type: 'entry-end' };
      const top = itemAt(stack, stack.length - 1);
      if (top.next < top.names.length) {
        const name = itemAt(top.names, top.next++);
        path = Buffer.concat([top.path, SLASH, name]);
        rel = top.rel.length === 0 ? name : Buffer.concat([top.rel, SLASH, name]);
        yield { type: 'entry', name, rel };
        break;
      }
      stack.pop();
      yield { type: 'end' };
      closeEntry = stack.length > 0;
    }
  }
}

/** fs.read as a promise. */
export function readAsync(fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buf, offset, length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}
