/**
 * Random access to the bytes of an image: in memory, on an open file descriptor, or a window of
 * another source (a squashfs inside an ISO). The ISO 9660 and squashfs readers, the image views
 * and the sniffer all read through these, never whole files.
 */
import { fstatSync, readSync } from 'node:fs';
import { NixSealError } from '../errors.js';

/** Random access to an image. read() returns exactly `length` bytes or throws. */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Uint8Array;
}

/** An image held in memory (tests, small images). read() returns views, not copies. */
export class BufferSource implements ByteSource {
  readonly size: number;
  constructor(private readonly bytes: Uint8Array) {
    this.size = bytes.length;
  }
  read(offset: number, length: number): Uint8Array {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new NixSealError('EIO', `Cannot read ${length} bytes at offset ${offset} of a ${this.size}-byte buffer`, { offset });
    }
    return this.bytes.subarray(offset, offset + length);
  }
}

/** An image on an open file descriptor, read with pread (fs.readSync with a position). */
export class FdSource implements ByteSource {
  readonly size: number;
  /** `name` is only for error messages. */
  constructor(
    private readonly fd: number,
    private readonly name = 'image',
    size?: number,
  ) {
    this.size = size ?? fstatSync(fd).size;
  }
  read(offset: number, length: number): Uint8Array {
    this.checkRange(offset, length);
    const out = Buffer.allocUnsafe(length);
    this.readInto(out, offset);
    return out;
  }

  /** Throws unless `length` bytes at `offset` are inside the file. */
  protected checkRange(offset: number, length: number): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new NixSealError('EIO', `Cannot read ${this.name}: ${length} bytes at offset ${offset} are outside the file`, { path: this.name, offset });
    }
  }

  /** Fills `out` from `offset` of the file (pread until full); the caller has checked the range. */
  protected readInto(out: Uint8Array, offset: number): void {
    const length = out.length;
    let got = 0;
    while (got < length) {
      let n: number;
      try {
        n = readSync(this.fd, out, got, length - got, offset + got);
      } catch (err) {
        throw new NixSealError('EIO', `Cannot read ${this.name}: ${(err as Error).message} at offset ${offset + got}`, {
          path: this.name,
          offset: offset + got,
          cause: err,
        });
      }
      if (n === 0) {
        throw new NixSealError('EIO', `Cannot read ${this.name}: the file ended early (shrunk while read?) at offset ${offset + got}`, {
          path: this.name,
          offset: offset + got,
        });
      }
      got += n;
    }
  }
}

/** An image in memory (tests, small images). */
export function bytesSource(bytes: Uint8Array): ByteSource {
  return new BufferSource(bytes);
}

/** An open file (e.g. an ISO). `fd` stays owned by the caller. */
export function fdSource(fd: number, name?: string): ByteSource {
  return new FdSource(fd, name);
}

/** `length` bytes of `src` from `offset` on, as a source of its own (a squashfs inside an ISO). */
export function windowSource(src: ByteSource, offset: number, length: number): ByteSource {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > src.size) {
    throw new RangeError(`window ${offset}+${length} is outside a ${src.size}-byte source`);
  }
  return {
    size: length,
    read(o, n) {
      if (o < 0 || n < 0 || o + n > length) throw new RangeError(`read ${n} bytes at ${o} of a ${length}-byte window`);
      return src.read(offset + o, n);
    },
  };
}
