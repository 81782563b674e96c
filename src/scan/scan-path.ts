/**
 * Reference scanning of a path on disk the way Nix does it after a build (over the path's NAR, so
 * entry names and symlink targets count as well as file contents), reporting for every occurrence
 * the file inside the path that holds it and where.
 */
import { closeSync, readSync, type Stats } from 'node:fs';
import { READ_CHUNK, readAsync, walkNarOrder } from '../formats/fs-walk.js';
import { NixSealError } from '../errors.js';
import { itemAt } from '../checked-index.js';
import { openTreeFile, treeIoError, treeTypeError } from '../formats/nar.js';
import { HashPartSet, ReferenceScanner, type ScanHit, type ScannerOptions } from './reference-scanner.js';

/** Where in a file system object a hit sits. */
export type HitLocation = 'contents' | 'name' | 'symlink target';

/** One occurrence of a candidate hash part inside a scanned path. */
export interface PathHit {
  /** The hash part found (32 nix32 characters). */
  hash: string;
  /**
   * The file, directory or symlink holding it, relative to the scanned path ('' for the path
   * itself), '/'-separated; names that are not UTF-8 are decoded lossily (U+FFFD).
   */
  file: string;
  /** In the file's contents, in its own entry name (the last component of `file`), or in its link target. */
  where: HitLocation;
  /** Byte offset of the hash's first character within the contents, the name or the target. */
  offset: number;
  /** Up to `context` bytes of that contents / name / target before the hash; non-printables as '.'. */
  before: string;
  /** Up to `context` bytes after the hash. */
  after: string;
}

export type ScanPathOptions = ScannerOptions;

/**
 * Files up to this size are read synchronously in one go (served from the page cache in
 * microseconds); larger ones asynchronously, READ_CHUNK at a time into two buffers in turn, so
 * that the copy from the page cache overlaps the scan.
 */
const SMALL_FILE = 1 << 20;

/**
 * Read buffers of READ_CHUNK bytes left by finished scans. Scanning a closure means many calls, and
 * fresh buffers cost page faults on every call (BENCHMARKS.md, "Figures behind code choices");
 * concurrent scans each take their own.
 */
const freeBuffers: Buffer[] = [];
const MAX_FREE_BUFFERS = 4;

const WALK_ERRORS = {
  io: (path: Buffer, err: unknown): NixSealError => treeIoError('scan', path, err),
  type: (path: Buffer, st: Stats): NixSealError => treeTypeError('scan', path, st),
};
const ioError = WALK_ERRORS.io;

/*
 * No NAR is built: the tree is walked in NAR order (entries sorted byte-wise) and each entry name,
 * symlink target and file's contents is scanned as a stream of its own. That finds exactly the
 * occurrences a scan of the NAR finds, because in a NAR every name, target and contents is
 * framed by bytes outside the nix32 alphabet: it is preceded by its u64 little-endian length,
 * whose last byte is 0 (lengths < 2^56), and followed by zero padding or, when its length is a
 * multiple of 8, by the next token's length (4 for "node" after a name, 1 for ")" after a target
 * or contents), and the framing tokens themselves ("(", "type", "regular", "entry", …) are at
 * most 13 characters between zero bytes. So no 32-character nix32 run crosses the framing or lies
 * inside it, and each occurrence in the NAR is an occurrence in exactly one name, target or contents.
 * (The root's own name is not in the NAR, and is not scanned.)
 */

/**
 * Every occurrence of the candidate hash parts in `fsPath` (not followed if it is a symlink), as
 * Nix's scan of its NAR would meet them: entries in NAR order (byte-wise sorted names, a name
 * before the entry's own node), within a name / target / contents in increasing offset. Yields hits
 * as they are found; file contents are read in chunks of at most 4 MiB, so memory stays small.
 *
 * Fails with NixSealError 'EBADHASH' (a candidate that is not 32 nix32 characters), 'EIO'
 * (unreadable or vanished file) or 'EFORMAT' (a socket, device or fifo, which a NAR cannot hold).
 */
export async function* scanPathHits(
  fsPath: string,
  hashParts: Iterable<string> | HashPartSet,
  options: ScanPathOptions = {},
): AsyncGenerator<PathHit, void, undefined> {
  for await (const batch of walk(Buffer.from(fsPath), new ReferenceScanner(hashParts, options))) {
    for (const h of batch) yield h;
  }
}

/** All hits of scanPathHits, collected. */
export async function scanPath(fsPath: string, hashParts: Iterable<string> | HashPartSet, options?: ScanPathOptions): Promise<PathHit[]> {
  const hits: PathHit[] = [];
  // Batches rather than scanPathHits: a promise round trip per batch, not per hit.
  for await (const batch of walk(Buffer.from(fsPath), new ReferenceScanner(hashParts, options))) {
    for (const h of batch) hits.push(h);
  }
  return hits;
}

/**
 * The candidate hash parts that occur in `fsPath`: what Nix registers as its references (given
 * the same candidates: the build's input closure and its own outputs).
 */
export async function scanPathReferences(fsPath: string, hashParts: Iterable<string> | HashPartSet): Promise<Set<string>> {
  const found = new Set<string>();
  for await (const batch of walk(Buffer.from(fsPath), new ReferenceScanner(hashParts, { context: 0 }))) {
    for (const h of batch) found.add(h.hash);
  }
  return found;
}

/**
 * Walks the tree in NAR order and yields the hits of each name, symlink target and chunk of file
 * contents as a batch (never empty). With no candidates nothing is read, but the tree is still
 * walked: a path Nix could not serialise fails here too.
 */
async function* walk(root: Buffer, scanner: ReferenceScanner): AsyncGenerator<PathHit[], void, undefined> {
  const scanning = scanner.candidates.size > 0;
  /** Read buffers taken from freeBuffers (or allocated) as needed: [0] for small files, both for large ones. */
  const bufs: Buffer[] = [];
  const buffer = (k: number): Buffer => {
    while (bufs.length <= k) bufs.push(freeBuffers.pop() ?? Buffer.allocUnsafe(READ_CHUNK));
    return itemAt(bufs, k);
  };

  /** The hits in an entry name or a symlink target, as a batch. */
  const bytesHits = (bytes: Uint8Array, file: Buffer, where: HitLocation): PathHit[] => {
    if (!scanning || bytes.length < 32) return [];
    scanner.reset();
    const hits = scanner.feed(bytes);
    for (const h of scanner.end()) hits.push(h);
    return toPathHits(hits, file.toString(), where);
  };

  try {
    for (const ev of walkNarOrder(root, WALK_ERRORS)) {
      if (ev.type === 'entry') {
        const hits = bytesHits(ev.name, ev.rel, 'name');
        if (hits.length > 0) yield hits;
      } else if (ev.type === 'symlink') {
        const hits = bytesHits(ev.target, ev.rel, 'symlink target');
        if (hits.length > 0) yield hits;
      } else if (ev.type === 'regular') {
        yield* fileHits(ev.path, ev.rel);
      }
    }
  } finally {
    // Reads have ended (fileHits waits for its read in flight): the buffers can serve another scan.
    for (const b of bufs.splice(0)) if (freeBuffers.length < MAX_FREE_BUFFERS) freeBuffers.push(b);
  }

  async function* fileHits(p: Buffer, relPath: Buffer): AsyncGenerator<PathHit[], void, undefined> {
    let inFlight: Promise<Buffer> | undefined;
    const { fd, size } = openTreeFile('scan', p);
    try {
      if (!scanning || size < 32) return; // too short to hold a hash (Nix reads it, to no avail)
      const shrank = (): NixSealError => {
        const s = p.toString();
        return new NixSealError('EIO', `Cannot scan ${s}: the file shrank while it was being read`, { path: s });
      };
      const name = relPath.toString();
      scanner.reset();
      /** Fills `buf` with `want` bytes of the file from `offset`. */
      const readFull = async (buf: Buffer, offset: number, want: number, sync: boolean): Promise<Buffer> => {
        const chunk = buf.subarray(0, want);
        let got = 0;
        while (got < want) {
          let n: number;
          try {
            n = sync ? readSync(fd, chunk, got, want - got, offset + got) : await readAsync(fd, chunk, got, want - got, offset + got);
          } catch (err) {
            throw ioError(p, err);
          }
          if (n === 0) throw shrank();
          got += n;
        }
        return chunk;
      };
      if (size <= SMALL_FILE) {
        const hits = scanner.feed(await readFull(buffer(0), 0, size, true));
        if (hits.length > 0) yield toPathHits(hits, name, 'contents');
      } else {
        // Two buffers: the thread pool reads the next chunk while this thread scans the current one.
        // Exactly `size` bytes, like Nix's NAR serialiser (growth after the fstat is ignored).
        buffer(1);
        // A read that fails while this generator waits at a yield is not an unhandled rejection:
        // it is awaited (and thrown) when its turn comes.
        const start = (k: number, offset: number): Promise<Buffer> => {
          const r = readFull(buffer(k), offset, Math.min(READ_CHUNK, size - offset), false);
          r.catch(() => undefined);
          return r;
        };
        let k = 0;
        let next: Promise<Buffer> | undefined = (inFlight = start(0, 0));
        for (let offset = 0; next !== undefined; ) {
          const chunk: Buffer = await next;
          offset += chunk.length;
          k ^= 1;
          next = inFlight = offset < size ? start(k, offset) : undefined;
          // The scanner keeps no reference to the chunk: its buffer can be refilled once feed returns.
          const hits = scanner.feed(chunk);
          if (hits.length > 0) yield toPathHits(hits, name, 'contents');
        }
      }
      const rest = scanner.end();
      if (rest.length > 0) yield toPathHits(rest, name, 'contents');
    } finally {
      // A read still under way (the consumer stopped early, or scanning failed) must end before
      // its file descriptor is closed and its buffer reused.
      if (inFlight) await inFlight.catch(() => undefined);
      inFlight = undefined;
      try {
        closeSync(fd);
      } catch {
        // Nothing useful to do: the data was read (or an error is already on its way).
      }
    }
  }
}

function toPathHits(hits: ScanHit[], file: string, where: HitLocation): PathHit[] {
  return hits.map((h) => ({ hash: h.hash, file, where, offset: h.offset, before: h.before, after: h.after }));
}
