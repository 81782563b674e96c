/**
 * cpio "newc" (SVR4, magic 070701), the format of Linux initramfs archives: a writer whose output
 * is byte-identical to nixpkgs' makeInitrd pipeline (GNU cpio; see CpioNewcWriter), and a reader
 * for checks and tests.
 */
import { Readable } from 'node:stream';
import { NixSealError } from '../errors.js';
import { S_IFDIR, S_IFLNK, S_IFREG } from './image.js';

export const NEWC_MAGIC = '070701';
/** The same layout with a checksum of the data in `check` (the reader accepts it too). */
export const NEWC_CRC_MAGIC = '070702';
export const NEWC_HEADER_SIZE = 110;
export const NEWC_TRAILER_NAME = 'TRAILER!!!';
/** GNU cpio pads the whole archive to a multiple of its block size, 512 bytes by default. */
export const CPIO_BLOCK_SIZE = 512;
/** A newc header field holds 8 hex digits. */
export const NEWC_MAX_VALUE = 0xffff_ffff;


/** The 13 numeric fields in header order, each 8 hex digits after the 6-byte magic. */
export const NEWC_FIELDS = [
  'ino',
  'mode',
  'uid',
  'gid',
  'nlink',
  'mtime',
  'filesize',
  'devmajor',
  'devminor',
  'rdevmajor',
  'rdevminor',
  'namesize',
  'check',
] as const;
export type NewcField = (typeof NEWC_FIELDS)[number];

/** Byte offset of each field within the 110-byte header. */
export const NEWC_FIELD_OFFSET: Readonly<Record<NewcField, number>> = Object.fromEntries(
  NEWC_FIELDS.map((f, i) => [f, 6 + 8 * i]),
) as Record<NewcField, number>;

const pad4 = (n: number): number => (4 - (n % 4)) % 4;
const ZEROS = Buffer.alloc(CPIO_BLOCK_SIZE);

/** One newc header: the numeric fields (the name follows the header in the archive). */
export class NewcHeader implements Record<NewcField, number> {
  magic: string = NEWC_MAGIC;
  ino = 0;
  mode = 0;
  uid = 0;
  gid = 0;
  nlink = 1;
  mtime = 0;
  filesize = 0;
  devmajor = 0;
  devminor = 0;
  rdevmajor = 0;
  rdevminor = 0;
  namesize = 0;
  check = 0;

  constructor(fields: Partial<Record<NewcField, number>> & { magic?: string } = {}) {
    Object.assign(this, fields);
  }

  /** The 110 header bytes. Throws EFORMAT for a value that does not fit in 8 hex digits. */
  encode(): Buffer {
    const out = Buffer.alloc(NEWC_HEADER_SIZE);
    out.write(this.magic, 0, 'latin1');
    for (const f of NEWC_FIELDS) {
      const v = this[f];
      if (!Number.isInteger(v) || v < 0 || v > NEWC_MAX_VALUE) {
        throw new NixSealError('EFORMAT', `Cannot write cpio header: ${f} ${v} does not fit in a newc header`);
      }
      // Upper case, as GNU cpio writes it ("%08lX"); the kernel accepts either case.
      out.write(v.toString(16).toUpperCase().padStart(8, '0'), NEWC_FIELD_OFFSET[f], 'latin1');
    }
    return out;
  }

  /** Parses the header at `offset`. `where` names the archive in error messages. */
  static decode(bytes: Uint8Array, offset = 0, where = 'cpio archive', archiveOffset = offset): NewcHeader {
    const fail = (why: string): NixSealError =>
      new NixSealError('EFORMAT', `Cannot read ${where}: ${why} at offset ${archiveOffset}`, {
        offset: archiveOffset,
        ...(where === 'cpio archive' ? {} : { path: where }),
      });
    if (bytes.length - offset < NEWC_HEADER_SIZE) throw fail('truncated header');
    const text = Buffer.from(bytes.buffer, bytes.byteOffset + offset, NEWC_HEADER_SIZE).toString('latin1');
    const magic = text.slice(0, 6);
    if (magic !== NEWC_MAGIC && magic !== NEWC_CRC_MAGIC) throw fail(`not a newc header (magic ${JSON.stringify(magic)})`);
    const h = new NewcHeader({ magic });
    for (const f of NEWC_FIELDS) {
      const hex = text.slice(NEWC_FIELD_OFFSET[f], NEWC_FIELD_OFFSET[f] + 8);
      if (!/^[0-9a-fA-F]{8}$/.test(hex)) throw fail(`bad ${f} field ${JSON.stringify(hex)}`);
      h[f] = parseInt(hex, 16);
    }
    return h;
  }
}

export interface CpioEntryOptions {
  /** Defaults to the writer's mtime (1, as nixpkgs sets every file's mtime before archiving). */
  mtime?: number;
  /** Only meaningful for directories (see the module comment); files are always written with 1. */
  nlink?: number;
  uid?: number;
  gid?: number;
}

export interface CpioWriterOptions {
  /** mtime of every entry unless an entry says otherwise. Default 1, like nixpkgs' initrds. */
  mtime?: number;
  /** High-water mark of the output stream in bytes (default 1 MiB). */
  highWaterMark?: number;
}

type Name = string | Uint8Array;

function nameBytes(name: Name): Buffer {
  let b = typeof name === 'string' ? Buffer.from(name) : Buffer.from(name.buffer, name.byteOffset, name.length);
  // GNU cpio strips a leading "./" ("find ." output); the root "." itself stays.
  if (b.length > 2 && b[0] === 0x2e && b[1] === 0x2f) b = b.subarray(2);
  if (b.length === 0 || b.includes(0)) {
    throw new NixSealError('EFORMAT', `Cannot add ${JSON.stringify(b.toString())} to a cpio archive: a name must be non-empty and without NUL`);
  }
  return b;
}

/**
 * Writes a newc archive as a stream. Entries go in with the add* methods, one at a time (await each
 * before the next); the bytes come out of `readable` (or by iterating the writer itself), which
 * must be consumed concurrently: the add* promises wait while the consumer is behind, so a large
 * file streams through without being buffered whole.
 *
 *     const w = new CpioNewcWriter();
 *     const done = pipeline(w.readable, createWriteStream('initrd.cpio'));
 *     await w.addDirectory('.', 0o755);
 *     await w.addFile('init', 0o755, size, createReadStream(src));
 *     await w.finish();
 *     await done;
 *
 * The writer reproduces what nixpkgs' makeInitrd produces:
 *
 *     find . -exec touch -h -d @1 {} +
 *     find . -print0 | sort -z | cpio -o -H newc -R +0:+0 --reproducible --null
 *
 * For the same entries in the same order, CpioNewcWriter's output is byte-identical to GNU cpio
 * 2.13's, which means matching these details of GNU cpio (all checked against it):
 * - Header fields are 8 UPPER-case hex digits (GNU formats them with "%08lX").
 * - A leading "./" is stripped from names ("./bin/sh" is written as "bin/sh"); the root stays ".".
 * - --reproducible (= --renumber-inodes --ignore-devno): inode numbers count 0, 1, 2, … in archive
 *   order, and dev/rdev major and minor are 0.
 * - nlink is the file's st_nlink. For a directory that is 2 + its number of subdirectories on ext4,
 *   tmpfs and xfs (1 on btrfs), so callers pass it (CpioEntryOptions.nlink); the default is 2.
 * - A symlink has mode 0120777 and its target as data, without a NUL.
 * - The trailer "TRAILER!!!" has nlink 1 and every other field 0 (mtime too), and the archive is
 *   padded with zeros to a multiple of 512 bytes (GNU's default block size).
 * - The order is sort -z of whole paths in the C locale (as in a Nix build, where no locale is set):
 *   byte order of "./a-b" before "./a/x", not a depth-first walk. The writer keeps the caller's order.
 *
 * What is deliberately not reproduced:
 * - Hard links. GNU cpio gives all names of a multiply linked file one inode number, writes the
 *   headers of all but the last name with filesize 0 and only the last one with the data, and
 *   delays the earlier headers until the last name is reached (or the end of the archive). An
 *   initrd made that way depends on whether the staging copy happened to preserve links (e.g. from
 *   `nix-store --optimise`). This writer writes every file as its own inode with nlink 1: the same
 *   tree extracts to the same contents, without that dependence.
 * - Files of 4 GiB or more: GNU cpio warns, leaves the file out and carries on; we refuse (EFORMAT)
 *   because an initrd silently missing a file is worse than no initrd.
 * - Device nodes, fifos and sockets: nixpkgs' initrd pipeline never contains them.
 */
export class CpioNewcWriter implements AsyncIterable<Uint8Array> {
  readonly readable: Readable;
  /** Bytes handed to the stream so far. */
  bytesWritten = 0;
  private nextIno = 0;
  private readonly mtime: number;
  private busy = false;
  private finished = false;
  /** Set while an add* waits for the consumer to catch up. */
  private waiting: { resume: () => void; abort: (err: Error) => void } | undefined;

  constructor(options: CpioWriterOptions = {}) {
    this.mtime = options.mtime ?? 1;
    this.readable = new Readable({
      highWaterMark: options.highWaterMark ?? 1 << 20,
      read: () => {
        const w = this.waiting;
        this.waiting = undefined;
        w?.resume();
      },
      destroy: (err, callback) => {
        const w = this.waiting;
        this.waiting = undefined;
        // Whatever closed the output (a compressor's EPIPE, another stage's failure) is reported by
        // that stage; the file being added only learns that the output is gone, so that a broken
        // pipe is never blamed on reading the file.
        w?.abort(new NixSealError('EIO', 'Cannot write cpio archive: the output was closed', { reason: 'closed', ...(err ? { cause: err } : {}) }));
        callback(err);
      },
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return this.readable[Symbol.asyncIterator]();
  }

  addDirectory(name: Name, mode: number, options: CpioEntryOptions = {}): Promise<void> {
    return this.entry(async () => {
      await this.header(nameBytes(name), S_IFDIR | (mode & 0o7777), 0, options.nlink ?? 2, options);
    });
  }

  addSymlink(name: Name, target: Name, options: CpioEntryOptions = {}): Promise<void> {
    return this.entry(async () => {
      const t = typeof target === 'string' ? Buffer.from(target) : Buffer.from(target);
      // Linux symlinks are always mode 0777, and GNU cpio writes the lstat mode.
      await this.header(nameBytes(name), S_IFLNK | 0o777, t.length, 1, options);
      await this.push(t);
      await this.pad(t.length);
    });
  }

  /**
   * A regular file of `size` bytes. `data` may be an async iterable of chunks (e.g. a
   * fs.ReadStream); each chunk is queued as it is, so the source must not reuse a chunk's memory
   * after yielding it. Fails (EIO) if the data is not exactly `size` bytes long.
   */
  addFile(name: Name, mode: number, size: number, data: AsyncIterable<Uint8Array> | Uint8Array, options: CpioEntryOptions = {}): Promise<void> {
    return this.entry(async () => {
      const n = nameBytes(name);
      if (!Number.isSafeInteger(size) || size < 0 || size > NEWC_MAX_VALUE) {
        throw new NixSealError(
          'EFORMAT',
          `Cannot add ${n.toString()} to a cpio archive: its size ${size} is more than a newc header can record (4 GiB - 1)`,
          { path: n.toString() },
        );
      }
      await this.header(n, S_IFREG | (mode & 0o7777), size, 1, options);
      let got = 0;
      const mismatch = (): NixSealError =>
        new NixSealError('EIO', `Cannot add ${n.toString()} to a cpio archive: expected ${size} bytes of data, got ${got}${got > size ? ' or more' : ''}`, {
          path: n.toString(),
        });
      if (data instanceof Uint8Array) {
        got = data.length;
        if (got !== size) throw mismatch();
        await this.push(data);
      } else {
        for await (const chunk of data) {
          got += chunk.length;
          if (got > size) throw mismatch();
          if (chunk.length > 0) await this.push(chunk);
        }
        if (got !== size) throw mismatch();
      }
      await this.pad(size);
    });
  }

  /** Writes the trailer and the padding to a 512-byte boundary, and ends the stream. */
  finish(): Promise<void> {
    return this.entry(async () => {
      const name = Buffer.from(NEWC_TRAILER_NAME);
      // GNU's trailer: nlink 1, everything else (ino, mode, mtime) 0.
      await this.writeHeader(new NewcHeader({ nlink: 1 }), name);
      const tail = (CPIO_BLOCK_SIZE - (this.bytesWritten % CPIO_BLOCK_SIZE)) % CPIO_BLOCK_SIZE;
      if (tail > 0) await this.push(ZEROS.subarray(0, tail));
      this.finished = true;
      this.readable.push(null);
    });
  }

  /** Runs one add*, enforcing one at a time; a failure poisons the stream so the consumer sees it. */
  private async entry(body: () => Promise<void>): Promise<void> {
    if (this.busy) throw new Error('CpioNewcWriter: await each add*/finish call before the next');
    if (this.finished) throw new Error('CpioNewcWriter: finish() was already called');
    if (this.readable.destroyed) throw new NixSealError('EIO', 'Cannot write cpio archive: the output was closed', { reason: 'closed' });
    this.busy = true;
    const before = this.bytesWritten;
    try {
      await body();
    } catch (err) {
      // Once part of the entry is out (a header promising data that never came), the archive is
      // corrupt: end the stream with the error. A refusal before any byte leaves it usable.
      if (this.bytesWritten !== before && !this.readable.destroyed) this.readable.destroy(err as Error);
      throw err;
    } finally {
      this.busy = false;
    }
  }

  private async header(name: Buffer, mode: number, filesize: number, nlink: number, o: CpioEntryOptions): Promise<void> {
    const h = new NewcHeader({
      // --renumber-inodes: sequential from 0 in archive order.
      ino: this.nextIno++,
      mode,
      uid: o.uid ?? 0,
      gid: o.gid ?? 0,
      nlink,
      mtime: o.mtime ?? this.mtime,
      filesize,
    });
    await this.writeHeader(h, name);
  }

  /** Header, name, NUL, and padding of header + name to 4 bytes, as one chunk. */
  private async writeHeader(h: NewcHeader, name: Buffer): Promise<void> {
    h.namesize = name.length + 1;
    const len = NEWC_HEADER_SIZE + h.namesize;
    const buf = Buffer.alloc(len + pad4(len));
    h.encode().copy(buf, 0);
    name.copy(buf, NEWC_HEADER_SIZE);
    await this.push(buf);
  }

  private pad(dataLength: number): Promise<void> {
    const p = pad4(dataLength);
    return p === 0 ? Promise.resolve() : this.push(ZEROS.subarray(0, p));
  }

  /** Queues bytes; when the stream's buffer is full, waits until the consumer asks for more. */
  private async push(chunk: Uint8Array): Promise<void> {
    if (this.readable.destroyed) throw new NixSealError('EIO', 'Cannot write cpio archive: the output was closed', { reason: 'closed' });
    this.bytesWritten += chunk.length;
    if (this.readable.push(chunk)) return;
    await new Promise<void>((resume, abort) => {
      this.waiting = { resume, abort };
    });
  }
}

/** One entry read back from an archive. The data is held in memory: the reader is for tests and checks. */
export interface NewcEntry {
  header: NewcHeader;
  /** The name's raw bytes, without the NUL. */
  nameBytes: Buffer;
  /** The name decoded as UTF-8. */
  name: string;
  /** Contents of a regular file, target of a symlink. */
  data: Buffer;
  /** Offset of the header in the input. */
  offset: number;
}

/**
 * An incremental newc reader: push chunks of any size (even single bytes), get complete entries.
 * After a trailer, zero padding is skipped and a further archive may follow (initrds are often
 * concatenations, e.g. microcode first), as the kernel's unpacker allows. Trailers are not returned.
 */
export class NewcReader {
  private buf = Buffer.alloc(0);
  private start = 0; // first unconsumed byte in buf
  private limit = 0; // end of valid bytes in buf
  private consumed = 0; // bytes consumed before buf[start]
  private header: NewcHeader | undefined;
  private afterTrailer = false;
  private trailers = 0;

  constructor(private readonly where = 'cpio archive') {}

  /** Number of archives that ended with a trailer so far. */
  get archives(): number {
    return this.trailers;
  }

  push(chunk: Uint8Array): NewcEntry[] {
    this.append(chunk);
    const out: NewcEntry[] = [];
    for (;;) {
      if (this.header === undefined) {
        if (this.afterTrailer) {
          while (this.start < this.limit && this.buf[this.start] === 0) this.advance(1);
          if (this.start === this.limit) break;
          if (this.consumed % 4 !== 0) throw this.fail('data after the trailer is not 4-byte aligned', this.consumed);
        }
        if (this.limit - this.start < NEWC_HEADER_SIZE) break;
        this.header = NewcHeader.decode(this.buf, this.start, this.where, this.consumed);
        if (this.header.namesize === 0) throw this.fail('empty name', this.consumed);
      }
      const h = this.header;
      const nameEnd = NEWC_HEADER_SIZE + h.namesize;
      const dataStart = nameEnd + pad4(nameEnd);
      const total = dataStart + h.filesize + pad4(h.filesize);
      if (this.limit - this.start < total) break;
      const at = this.start;
      const offset = this.consumed;
      if (this.buf[at + nameEnd - 1] !== 0) throw this.fail('name is not NUL-terminated', offset);
      const nameBytes = Buffer.from(this.buf.subarray(at + NEWC_HEADER_SIZE, at + nameEnd - 1));
      const data = Buffer.from(this.buf.subarray(at + dataStart, at + dataStart + h.filesize));
      if (h.magic === NEWC_CRC_MAGIC) {
        let sum = 0;
        for (const b of data) sum = (sum + b) >>> 0;
        if (sum !== h.check) throw this.fail(`checksum mismatch for ${nameBytes.toString()}`, offset);
      }
      this.header = undefined;
      this.advance(total);
      if (nameBytes.toString('latin1') === NEWC_TRAILER_NAME) {
        this.afterTrailer = true;
        this.trailers++;
        continue;
      }
      this.afterTrailer = false;
      out.push({ header: h, nameBytes, name: nameBytes.toString(), data, offset });
    }
    return out;
  }

  /** Checks that the input ended cleanly: after a trailer, not inside an entry. */
  end(): void {
    if (this.header !== undefined || this.start < this.limit) throw this.fail('truncated entry', this.consumed);
    if (!this.afterTrailer) throw this.fail(`no ${NEWC_TRAILER_NAME} entry before the end`, this.consumed);
  }

  private append(chunk: Uint8Array): void {
    if (this.limit + chunk.length > this.buf.length) {
      // Drop consumed bytes, and grow geometrically so byte-at-a-time input stays linear.
      const live = this.limit - this.start;
      const next = Buffer.allocUnsafe(Math.max(live + chunk.length, this.buf.length * 2, 4096));
      this.buf.copy(next, 0, this.start, this.limit);
      this.buf = next;
      this.start = 0;
      this.limit = live;
    }
    this.buf.set(chunk, this.limit);
    this.limit += chunk.length;
  }

  private advance(n: number): void {
    this.start += n;
    this.consumed += n;
  }

  private fail(why: string, offset: number): NixSealError {
    return new NixSealError('EFORMAT', `Cannot read ${this.where}: ${why} at offset ${offset}`, {
      offset,
      ...(this.where === 'cpio archive' ? {} : { path: this.where }),
    });
  }
}

/** All entries of a complete archive (or concatenation of archives) in memory. */
export function readNewc(bytes: Uint8Array, where?: string): NewcEntry[] {
  const r = new NewcReader(where);
  const entries = r.push(bytes);
  r.end();
  return entries;
}
