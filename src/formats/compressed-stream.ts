/**
 * A whole file compressed with gzip, xz, zstd, bzip2 or lz4 (an initrd.zst, a disk.img.xz, a
 * tar.gz) as an ImageView with one file entry, the decompressed contents, so that the image or
 * archive inside nests. Compressed streams cannot be read at random, so open() decompresses once,
 * streaming (xz: a stream at a time in memory, at most 1 GiB, as its library has no streaming
 * interface), into a temporary file that is unlinked as soon as it is open (the space is freed on
 * any exit) and reads it through an FdSource. A size budget (16 GiB by default) and the free space
 * of the temporary directory bound what a small hostile file can make us write. Every check the
 * formats carry is verified: gzip CRC-32 and size, xz checks, bzip2 CRCs, zstd and lz4 xxHashes.
 * The view's kind is the compressor ('gzip', 'xz', 'zstd', 'bzip2', 'lz4').
 */
import { createRequire } from 'node:module';
import { closeSync, openSync, statfsSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as zlib from 'node:zlib';
import { Gunzip } from 'fflate';
import { Decompress as ZstdDecompress } from 'fzstd';
import { itemAt, u32At } from '../checked-index.js';
import { NixSealError } from '../errors.js';
import { FdSource, type ByteSource } from './byte-source.js';
import { decompress, DecompressError, unzstdFrameStreaming } from './decompress.js';
import type { ImageReader, ImageView, InnerEntry } from './image.js';
import { readRange } from './archive-view.js';
import * as bytes from './bytes.js';
import { crc32 } from './crc32.js';
import { headOf, type Verdict } from './detection.js';

export type StreamKind = 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'lz4';

export interface StreamLimits {
  /** Most decompressed bytes written (a bomb stops here). */
  maxOutput: number;
  /** Where the temporary file goes. */
  tmpDir: string;
  /** Bytes that must stay free in tmpDir. */
  reserve: number;
  /** xz is decompressed in memory (its library has no streaming interface): at most this much. */
  maxInMemory: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = { maxOutput: 16 * 2 ** 30, tmpDir: tmpdir(), reserve: 256 * 2 ** 20, maxInMemory: 2 ** 30 };

// ---------------------------------------------------------------------------------------------
// Detection: each compressor's magic and the structure right after it (a magic alone turns up in
// random data sooner or later). The magic with a broken structure is a near miss: the reader
// claims it and reports the corruption, the sniffer does not take it for an image.

const XZ_MAGIC = bytes.magicBytes('\xfd7zXZ\0');
const BZIP2_MAGIC = bytes.magicBytes('BZh');
/** bzip2 block magic (π) and end-of-stream magic (√π), 48 bits each. */
const BZIP2_BLOCK = Uint8Array.of(0x31, 0x41, 0x59, 0x26, 0x53, 0x59);
const BZIP2_END = Uint8Array.of(0x17, 0x72, 0x45, 0x38, 0x50, 0x90);
const ZSTD_MAGIC = 0xfd2fb528;
const LZ4_MAGIC = 0x184d2204;
/** Legacy frames (lz4 -l, the kernel's initrd format). */
const LZ4_LEGACY_MAGIC = 0x184c2102;
/** LZ4_compressBound(8 MiB): the largest legacy block. */
const LZ4_LEGACY_MAX_BLOCK = 8 * 1024 * 1024 + 32 * 1024 + 16;

/** gzip: 1f 8b, deflate, reserved flag bits clear, a known XFL and OS byte (RFC 1952). */
export function detectGzip(head: Uint8Array): Verdict {
  if (head.length < 3 || head[0] !== 0x1f || head[1] !== 0x8b || head[2] !== 8) return undefined;
  if (head.length < 18) return { format: 'gzip', offset: 0, nearMiss: 'shorter than a gzip member' };
  const flags = bytes.u8(head, 3);
  const xfl = bytes.u8(head, 8);
  const os = bytes.u8(head, 9);
  if (flags & 0xe0 || (xfl !== 0 && xfl !== 2 && xfl !== 4) || (os > 13 && os !== 255)) return { format: 'gzip', offset: 0, nearMiss: 'reserved flags or unknown XFL/OS bytes' };
  return { format: 'gzip', offset: 0, why: 'gzip member header (deflate, reserved flags clear)' };
}

/** xz: the stream header magic, and its stream flags' CRC32. */
export function detectXz(head: Uint8Array): Verdict {
  if (!bytes.startsWith(head, 0, XZ_MAGIC)) return undefined;
  if (head.length < 32) return { format: 'xz', offset: 0, nearMiss: 'shorter than an xz stream' };
  if (head[6] !== 0 || bytes.u8(head, 7) > 0x0f || crc32(head.subarray(6, 8)) !== bytes.le32(head, 8)) return { format: 'xz', offset: 0, nearMiss: 'bad stream flags' };
  return { format: 'xz', offset: 0, why: 'xz stream header, flags CRC32 valid' };
}

/** zstd: a frame (magic 0xFD2FB528) with a valid frame header and a first block of a real type (RFC 8878). */
export function detectZstd(head: Uint8Array): Verdict {
  if (head.length < 4 || bytes.le32(head, 0) !== ZSTD_MAGIC) return undefined;
  const nearMiss = (why: string): Verdict => ({ format: 'zstd', offset: 0, nearMiss: why });
  if (head.length < 9) return nearMiss('shorter than a zstd frame');
  const fhd = bytes.u8(head, 4);
  if (fhd & 0x08) return nearMiss('a reserved frame header bit set');
  const singleSegment = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  const dictBytes = itemAt([0, 1, 2, 4], fhd & 3);
  const fcsBytes = itemAt([singleSegment ? 1 : 0, 2, 4, 8], fcsFlag);
  if (!singleSegment && bytes.u8(head, 5) >> 3 > 31 - 10) return nearMiss('a window log beyond 31');
  const block = 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
  if (block + 3 > head.length || ((bytes.u8(head, block) >> 1) & 3) === 3) return nearMiss('no valid first block'); // block type 3 is reserved
  return { format: 'zstd', offset: 0, why: 'zstd frame header, first block valid' };
}

/** bzip2: "BZh", a block size 1…9, then a block's or the end-of-stream's 48-bit magic. */
export function detectBzip2(head: Uint8Array): Verdict {
  if (head.length < 10 || !bytes.startsWith(head, 0, BZIP2_MAGIC) || bytes.u8(head, 3) < 0x31 || bytes.u8(head, 3) > 0x39) return undefined;
  const block = bytes.startsWith(head, 4, BZIP2_BLOCK);
  const end = bytes.startsWith(head, 4, BZIP2_END);
  if (!block && !end) return undefined;
  return { format: 'bzip2', offset: 0, why: `bzip2 stream, ${String.fromCharCode(bytes.u8(head, 3))}00k blocks, ${block ? 'block' : 'end-of-stream'} magic` };
}

/** lz4: a frame (magic 0x184D2204) whose descriptor checksum (xxHash32) matches, or the legacy format. */
export function detectLz4(head: Uint8Array): Verdict {
  if (head.length < 4) return undefined;
  const magic = bytes.le32(head, 0);
  if (magic !== LZ4_MAGIC && magic !== LZ4_LEGACY_MAGIC) return undefined;
  const nearMiss = (why: string): Verdict => ({ format: 'lz4', offset: 0, nearMiss: why });
  if (head.length < 7) return nearMiss('shorter than an lz4 frame');
  if (magic === LZ4_MAGIC) {
    const flg = bytes.u8(head, 4);
    const bd = bytes.u8(head, 5);
    if (flg >> 6 !== 1 || flg & 0x02 || bd & 0x8f || ((bd >> 4) & 7) < 4) return nearMiss('a bad frame descriptor');
    const descriptorEnd = 6 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0);
    if (descriptorEnd >= head.length || ((new Xxh32().update(head.subarray(4, descriptorEnd)).digest() >>> 8) & 0xff) !== head[descriptorEnd]) return nearMiss('a bad descriptor checksum');
    return { format: 'lz4', offset: 0, why: 'lz4 frame header, descriptor checksum valid' };
  }
  // A legacy frame: the first block's 4-byte size must be there (a 7-byte file once read a missing eighth byte as 0).
  if (head.length < 8) return nearMiss('shorter than an lz4 legacy frame');
  const first = bytes.le32(head, 4);
  if (first === 0 || first > LZ4_LEGACY_MAX_BLOCK) return nearMiss('a bad first legacy block size');
  return { format: 'lz4', offset: 0, why: 'lz4 legacy frame, first block size valid' };
  return undefined;
}

const STREAM_DETECTIONS = [detectGzip, detectXz, detectZstd, detectBzip2, detectLz4];

/** A gzip, xz, zstd, bzip2 or lz4 stream (or a near miss) from the file's first bytes (`head`), or undefined. */
export function detectCompressedStream(head: Uint8Array): Verdict {
  for (const detect of STREAM_DETECTIONS) {
    const d = detect(head);
    if (d !== undefined) return d;
  }
  return undefined;
}

/** The compressor of `src` (detectCompressedStream on its head, near misses included: the decoder reports them). */
export function streamKind(src: ByteSource): StreamKind | undefined {
  return detectCompressedStream(headOf(src))?.format as StreamKind | undefined;
}

const CHUNK = 1 << 20;
const FREE_CHECK_EVERY = 64 << 20;

/** Where decompressed bytes go: a temporary file already unlinked, with the budgets checked. */
class Sink {
  readonly fd: number;
  size = 0;
  private nextFreeCheck = 0;
  constructor(
    private readonly limits: StreamLimits,
    private readonly fail: (why: string) => NixSealError,
  ) {
    const path = join(limits.tmpDir, `nix-seal-${process.pid}-${randomBytes(6).toString('hex')}.decompressed`);
    try {
      this.fd = openSync(path, 'wx+', 0o600);
    } catch (err) {
      throw new NixSealError('EIO', `Cannot create a temporary file in ${limits.tmpDir}: ${(err as Error).message}`, { path, cause: err });
    }
    unlinkSync(path); // the space is the open descriptor's now: freed when it closes, or at exit
  }
  write(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    if (this.size + chunk.length > this.limits.maxOutput) throw this.fail(`it decompresses to more than ${this.limits.maxOutput} bytes (the budget)`);
    if (this.size >= this.nextFreeCheck) {
      const fs = statfsSync(this.limits.tmpDir);
      const free = fs.bavail * fs.bsize;
      if (free < this.limits.reserve + chunk.length) {
        throw new NixSealError('EIO', `Cannot decompress into ${this.limits.tmpDir}: only ${free} bytes are free (${this.limits.reserve} are kept free)`, { path: this.limits.tmpDir });
      }
      this.nextFreeCheck = this.size + FREE_CHECK_EVERY;
    }
    let done = 0;
    while (done < chunk.length) {
      try {
        done += writeSync(this.fd, chunk, done, chunk.length - done, this.size + done);
      } catch (err) {
        throw new NixSealError('EIO', `Cannot write the decompressed data to ${this.limits.tmpDir}: ${(err as Error).message}`, { path: this.limits.tmpDir, cause: err });
      }
    }
    this.size += chunk.length;
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** Incremental CRC-32 (gzip members): zlib.crc32 where Node has it (≥ 20.15), else a table. */
const crc32Update: (data: Uint8Array, crc: number) => number =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function'
    ? (data, crc) => zlib.crc32(data, crc)
    : (() => {
        const t = new Uint32Array(256);
        for (let n = 0; n < 256; n++) {
          let c = n;
          for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
          t[n] = c >>> 0;
        }
        return (data: Uint8Array, crc: number): number => {
          let c = crc ^ 0xffffffff;
          for (let i = 0; i < data.length; i++) c = u32At(t, (c ^ bytes.u8(data, i)) & 0xff) ^ (c >>> 8);
          return (c ^ 0xffffffff) >>> 0;
        };
      })();

type Fail = (why: string, offset?: number) => NixSealError;

function gunzipInto(src: ByteSource, sink: Sink, fail: Fail): void {
  // fflate inflates and finds the members; the CRC-32 and size in each member's trailer are ours to check.
  let crc = 0;
  let isize = 0;
  const checkTrailer = (end: number): void => {
    if (end < 8) throw fail('a gzip member without its trailer', end);
    const t = src.read(end - 8, 8);
    if (bytes.le32(t, 0) !== crc) throw fail(`a gzip member's CRC-32 does not match its data`, end - 8);
    if (bytes.le32(t, 4) !== isize >>> 0) throw fail(`a gzip member's size does not match its data`, end - 4);
    crc = 0;
    isize = 0;
  };
  const g = new Gunzip((chunk) => {
    crc = crc32Update(chunk, crc);
    isize = (isize + chunk.length) % 2 ** 32;
    sink.write(chunk);
  });
  g.onmember = (offset) => checkTrailer(offset);
  for (const c of readRange(src, 0, src.size)) g.push(c, false);
  g.push(new Uint8Array(0), true);
  checkTrailer(src.size);
}

/**
 * zstd frames one at a time, delimited by walking their block headers; skippable frames are
 * skipped. libzstd (WebAssembly, once prepareDecoders() has loaded it) decodes and checks the
 * content checksum; before that fzstd decodes, and the checksum (the low 32 bits of the frame's
 * xxHash64), which fzstd does not check, is checked here.
 */
function unzstdInto(src: ByteSource, sink: Sink, fail: Fail): void {
  let pos = 0;
  while (pos < src.size) {
    if (src.size - pos < 8) throw fail('a truncated zstd frame header', pos);
    const head = src.read(pos, Math.min(18, src.size - pos));
    const magic = bytes.le32(head, 0);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      pos += 8 + bytes.le32(head, 4);
      if (pos > src.size) throw fail('a skippable zstd frame runs past the end', pos);
      continue;
    }
    if (magic !== 0xfd2fb528) throw fail(`not a zstd frame (magic 0x${magic.toString(16)})`, pos);
    const fhd = bytes.u8(head, 4);
    const single = (fhd >> 5) & 1;
    const fcsBytes = itemAt([single, 2, 4, 8], fhd >> 6);
    const checksum = (fhd & 4) !== 0;
    const frameStart = pos;
    let at = pos + 5 + (single ? 0 : 1) + itemAt([0, 1, 2, 4], fhd & 3) + fcsBytes;
    for (;;) {
      if (at + 3 > src.size) throw fail('the zstd data ends inside a block header', at);
      const b = src.read(at, 3);
      const word = bytes.u8(b, 0) | (bytes.u8(b, 1) << 8) | (bytes.u8(b, 2) << 16);
      const type = (word >> 1) & 3;
      if (type === 3) throw fail('a reserved zstd block type', at);
      at += 3 + (type === 1 ? 1 : word >>> 3);
      if (at > src.size) throw fail('a zstd block runs past the end', at);
      if (word & 1) break;
    }
    if (checksum && at + 4 > src.size) throw fail('the zstd data ends before its content checksum', at);
    const frameEnd = at + (checksum ? 4 : 0);
    try {
      if (unzstdFrameStreaming(readRange(src, frameStart, frameEnd - frameStart), (chunk) => sink.write(chunk))) {
        pos = frameEnd;
        continue;
      }
    } catch (err) {
      if (err instanceof DecompressError) throw fail(`a zstd frame libzstd cannot decode (${err.why})`, frameStart);
      throw err;
    }
    const hash = checksum ? new Xxh64() : undefined;
    const d = new ZstdDecompress((chunk) => {
      hash?.update(chunk);
      sink.write(chunk);
    });
    // fzstd reads the checksum field too (and skips it).
    for (const c of readRange(src, frameStart, at + (checksum ? 4 : 0) - frameStart)) d.push(c, false);
    d.push(new Uint8Array(0), true);
    if (hash !== undefined) {
      if (bytes.le32(src.read(at, 4), 0) !== hash.digestLow32()) throw fail('a zstd frame content checksum does not match', at);
      at += 4;
    }
    pos = at;
  }
}

/** 64-bit arithmetic on [high, low] u32 pairs, for xxHash64 without BigInt (which is far slower). */
type U64 = [number, number];
const P64: Record<1 | 2 | 3 | 4 | 5, U64> = {
  1: [0x9e3779b1, 0x85ebca87],
  2: [0xc2b2ae3d, 0x27d4eb4f],
  3: [0x165667b1, 0x9e3779f9],
  4: [0x85ebca77, 0xc2b2ae63],
  5: [0x27d4eb2f, 0x165667c5],
};
function add64(a: U64, b: U64): U64 {
  const l = a[1] + b[1];
  return [(a[0] + b[0] + (l > 0xffffffff ? 1 : 0)) >>> 0, l >>> 0];
}
function mul64(a: U64, b: U64): U64 {
  const [ah, al] = a;
  const [bh, bl] = b;
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const mid = a1 * b0 + a0 * b1; // < 2^33, exact
  const low = a0 * b0 + (mid % 65536) * 65536; // < 2^33
  const carry = Math.floor(low / 4294967296);
  const high = a1 * b1 + Math.floor(mid / 65536) + carry + Math.imul(ah, bl) + Math.imul(al, bh);
  return [high >>> 0, low >>> 0];
}
function rotl64(a: U64, r: number): U64 {
  const [h, l] = a;
  if (r === 32) return [l, h];
  if (r > 32) return rotl64([l, h], r - 32);
  return [((h << r) | (l >>> (32 - r))) >>> 0, ((l << r) | (h >>> (32 - r))) >>> 0];
}
const xor64 = (a: U64, b: U64): U64 => [(a[0] ^ b[0]) >>> 0, (a[1] ^ b[1]) >>> 0];
/** a >>> r for 0 < r < 64. */
const shr64 = (a: U64, r: number): U64 => (r >= 32 ? [0, a[0] >>> (r - 32)] : [a[0] >>> r, ((a[1] >>> r) | (a[0] << (32 - r))) >>> 0]);

function round64(acc: U64, lane: U64): U64 {
  return mul64(rotl64(add64(acc, mul64(lane, P64[2])), 31), P64[1]);
}

// The stripe loop without allocations (xxHash64's hot path): mulTo leaves its product in MH, ML.
let MH = 0;
let ML = 0;
function mulTo(ah: number, al: number, bh: number, bl: number): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const mid = a1 * b0 + a0 * b1;
  const midLo = mid & 0xffff;
  const low = a0 * b0 + midLo * 65536;
  const carry = low > 0xffffffff ? 1 : 0;
  MH = (a1 * b1 + (mid - midLo) / 65536 + carry + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
  ML = low >>> 0;
}

/** One xxHash64 round on lane `i` of `v` (high, low pairs) with the lane at `at` of `b`. */
function roundAt(v: number[], i: number, b: Uint8Array, at: number): void {
  mulTo(bytes.le32(b, at + 4), bytes.le32(b, at), 0xc2b2ae3d, 0x27d4eb4f);
  const l = itemAt(v, 2 * i + 1) + ML;
  const h = (itemAt(v, 2 * i) + MH + (l > 0xffffffff ? 1 : 0)) >>> 0;
  const lo = l >>> 0;
  mulTo(((h << 31) | (lo >>> 1)) >>> 0, ((lo << 31) | (h >>> 1)) >>> 0, 0x9e3779b1, 0x85ebca87);
  v[2 * i] = MH;
  v[2 * i + 1] = ML;
}

/** xxHash64 with seed 0, incremental (zstd's content checksum is its low 32 bits). */
export class Xxh64 {
  /** v1..v4 as high, low pairs. */
  private readonly v: number[] = [...add64(P64[1], P64[2]), ...P64[2], 0, 0, ...mul64(P64[1], [0xffffffff, 0xffffffff])];
  private readonly tail = new Uint8Array(32);
  private tailLen = 0;
  private total = 0;

  private static lane(b: Uint8Array, at: number): U64 {
    return [bytes.le32(b, at + 4), bytes.le32(b, at)];
  }

  private stripe(b: Uint8Array, at: number): void {
    const v = this.v;
    roundAt(v, 0, b, at);
    roundAt(v, 1, b, at + 8);
    roundAt(v, 2, b, at + 16);
    roundAt(v, 3, b, at + 24);
  }

  update(data: Uint8Array): this {
    this.total += data.length;
    let i = 0;
    if (this.tailLen > 0) {
      const n = Math.min(32 - this.tailLen, data.length);
      this.tail.set(data.subarray(0, n), this.tailLen);
      this.tailLen += n;
      i = n;
      if (this.tailLen < 32) return this;
      this.stripe(this.tail, 0);
      this.tailLen = 0;
    }
    for (; i + 32 <= data.length; i += 32) this.stripe(data, i);
    this.tail.set(data.subarray(i), 0);
    this.tailLen = data.length - i;
    return this;
  }

  digest(): U64 {
    let h: U64;
    if (this.total >= 32) {
      const w = this.v;
      const [v1, v2, v3, v4]: U64[] = [0, 1, 2, 3].map((i) => [itemAt(w, 2 * i), itemAt(w, 2 * i + 1)]);
      h = add64(add64(rotl64(v1!, 1), rotl64(v2!, 7)), add64(rotl64(v3!, 12), rotl64(v4!, 18)));
      for (const v of [v1!, v2!, v3!, v4!]) h = add64(mul64(xor64(h, round64([0, 0], v)), P64[1]), P64[4]);
    } else h = P64[5];
    h = add64(h, [Math.floor(this.total / 4294967296) >>> 0, this.total >>> 0]);
    let i = 0;
    for (; i + 8 <= this.tailLen; i += 8) h = add64(mul64(rotl64(xor64(h, round64([0, 0], Xxh64.lane(this.tail, i))), 27), P64[1]), P64[4]);
    if (i + 4 <= this.tailLen) {
      h = add64(mul64(rotl64(xor64(h, mul64([0, bytes.le32(this.tail, i)], P64[1])), 23), P64[2]), P64[3]);
      i += 4;
    }
    for (; i < this.tailLen; i++) h = mul64(rotl64(xor64(h, mul64([0, bytes.u8(this.tail, i)], P64[5])), 11), P64[1]);
    h = mul64(xor64(h, shr64(h, 33)), P64[2]);
    h = mul64(xor64(h, shr64(h, 29)), P64[3]);
    return xor64(h, shr64(h, 32));
  }

  digestLow32(): number {
    return this.digest()[1];
  }
}

function unbzip2Into(src: ByteSource, sink: Sink, fail: Fail): void {
  // seek-bzip decodes from and to byte streams (synchronously); it is pure JavaScript.
  let buf: Uint8Array = new Uint8Array(0);
  let bufAt = 0;
  let pos = 0;
  const input = {
    readByte(): number {
      if (pos - bufAt >= buf.length) {
        if (pos >= src.size) throw fail('the bzip2 stream ends early', pos);
        bufAt = pos;
        buf = src.read(pos, Math.min(CHUNK, src.size - pos));
      }
      return bytes.u8(buf, pos++ - bufAt);
    },
    read(out: Uint8Array, off: number, len: number): number {
      let n = 0;
      while (n < len && pos < src.size) out[off + n++] = input.readByte();
      return n === 0 ? -1 : n;
    },
    eof: (): boolean => pos >= src.size,
    seek(p: number): void {
      pos = p;
    },
  };
  const out = new Uint8Array(CHUNK);
  let n = 0;
  const output = {
    writeByte(b: number): void {
      out[n++] = b;
      if (n === out.length) {
        sink.write(out);
        n = 0;
      }
    },
  };
  Bunzip().decode(input, output, true);
  sink.write(out.subarray(0, n));
}

interface SeekBzip {
  decode(input: unknown, output: unknown, multistream: boolean): void;
}
let bunzip: SeekBzip | undefined;
function Bunzip(): SeekBzip {
  return (bunzip ??= requireCjs('seek-bzip') as SeekBzip);
}

const requireCjs = createRequire(import.meta.url);

/** lz4 frames (and legacy frames), block by block through the project's lz4 block decoder. */
function unlz4Into(src: ByteSource, sink: Sink, fail: Fail): void {
  let pos = 0;
  const need = (n: number, what: string): Uint8Array => {
    if (pos + n > src.size) throw fail(`the lz4 data ends inside ${what}`, pos);
    const b = src.read(pos, n);
    pos += n;
    return b;
  };
  while (pos < src.size) {
    const magic = bytes.le32(need(4, 'a frame magic'), 0);
    if (magic === 0x184c2102) {
      // Legacy: blocks of at most 8 MiB, each after its compressed size, until EOF or a magic.
      while (pos < src.size) {
        if (src.size - pos < 4) throw fail('the lz4 data ends inside a block size', pos);
        const size = bytes.le32(src.read(pos, 4), 0);
        if (size === 0x184c2102 || size === 0x184d2204 || (size & 0xfffffff0) === 0x184d2a50) break; // the next frame
        pos += 4;
        if (size > (8 << 20) + 65536) throw fail(`a legacy lz4 block of ${size} bytes`, pos - 4);
        const block = need(size, 'a block');
        sink.write(lz4Block(block, 8 << 20, fail, pos - size));
      }
      continue;
    }
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      const size = bytes.le32(need(4, 'a skippable frame size'), 0);
      need(size, 'a skippable frame');
      continue;
    }
    if (magic !== 0x184d2204) throw fail(`not an lz4 frame (magic 0x${magic.toString(16)})`, pos - 4);
    const flg = bytes.u8(need(1, 'the frame descriptor'), 0);
    const bd = bytes.u8(need(1, 'the frame descriptor'), 0);
    if (flg >> 6 !== 1) throw fail(`lz4 frame version ${flg >> 6}`, pos - 2);
    if ((flg & 0x20) === 0) throw fail('lz4 frames with linked blocks (lz4 -BD) are not read by nix-seal', pos - 2);
    if (flg & 0x01) throw fail('an lz4 frame with a dictionary', pos - 2);
    const maxBlock = itemAt([0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20], (bd >> 4) & 7);
    if (maxBlock === 0) throw fail(`an lz4 block size code ${(bd >> 4) & 7}`, pos - 1);
    if (flg & 0x08) need(8, 'the content size');
    need(1, 'the header checksum');
    const blockChecksum = (flg & 0x10) !== 0;
    const content = flg & 0x04 ? new Xxh32() : undefined;
    for (;;) {
      const word = bytes.le32(need(4, 'a block size'), 0);
      if (word === 0) break;
      const size = word & 0x7fffffff;
      if (size > maxBlock) throw fail(`an lz4 block of ${size} bytes in a frame of ${maxBlock}-byte blocks`, pos - 4);
      const at = pos;
      const data = need(size, 'a block');
      const out = word & 0x80000000 ? data : lz4Block(data, maxBlock, fail, at);
      if (blockChecksum && bytes.le32(need(4, 'a block checksum'), 0) !== new Xxh32().update(data).digest()) throw fail('an lz4 block checksum does not match', pos - 4);
      content?.update(out);
      sink.write(out);
    }
    if (content !== undefined && bytes.le32(need(4, 'the content checksum'), 0) !== content.digest()) throw fail('the lz4 content checksum does not match', pos - 4);
  }
}

/** xxHash32 with seed 0, incremental (the lz4 frame checksums). */
export class Xxh32 {
  private static readonly P1 = 0x9e3779b1;
  private static readonly P2 = 0x85ebca77;
  private static readonly P3 = 0xc2b2ae3d;
  private static readonly P4 = 0x27d4eb2f;
  private static readonly P5 = 0x165667b1;
  // Four lanes as fields, not an array: the per-16-byte stripe reads no array element but its input.
  private v1 = (Xxh32.P1 + Xxh32.P2) | 0;
  private v2 = Xxh32.P2;
  private v3 = 0;
  private v4 = -Xxh32.P1 | 0;
  private readonly tail = new Uint8Array(16);
  private tailLen = 0;
  private total = 0;

  private static round(acc: number, lane: number): number {
    acc = (acc + Math.imul(lane, Xxh32.P2)) | 0;
    acc = (acc << 13) | (acc >>> 19);
    return Math.imul(acc, Xxh32.P1);
  }

  // Unchecked reads: with u8At this stripe loop takes about twice as long (BENCHMARKS.md, "Figures
  // behind code choices"); update() passes only `at + 16 <= b.length`.
  private static le32(b: Uint8Array, at: number): number {
    return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
  }

  private stripe(b: Uint8Array, at: number): void {
    this.v1 = Xxh32.round(this.v1, Xxh32.le32(b, at));
    this.v2 = Xxh32.round(this.v2, Xxh32.le32(b, at + 4));
    this.v3 = Xxh32.round(this.v3, Xxh32.le32(b, at + 8));
    this.v4 = Xxh32.round(this.v4, Xxh32.le32(b, at + 12));
  }

  update(data: Uint8Array): this {
    this.total += data.length;
    let i = 0;
    if (this.tailLen > 0) {
      const n = Math.min(16 - this.tailLen, data.length);
      this.tail.set(data.subarray(0, n), this.tailLen);
      this.tailLen += n;
      i = n;
      if (this.tailLen < 16) return this;
      this.stripe(this.tail, 0);
      this.tailLen = 0;
    }
    for (; i + 16 <= data.length; i += 16) this.stripe(data, i);
    this.tail.set(data.subarray(i), 0);
    this.tailLen = data.length - i;
    return this;
  }

  digest(): number {
    const { v1, v2, v3, v4 } = this;
    let h =
      this.total >= 16
        ? (((v1 << 1) | (v1 >>> 31)) + ((v2 << 7) | (v2 >>> 25)) + ((v3 << 12) | (v3 >>> 20)) + ((v4 << 18) | (v4 >>> 14))) | 0
        : (v3 + Xxh32.P5) | 0;
    h = (h + this.total) | 0;
    let i = 0;
    for (; i + 4 <= this.tailLen; i += 4) {
      h = (h + Math.imul(bytes.le32(this.tail, i), Xxh32.P3)) | 0;
      h = Math.imul((h << 17) | (h >>> 15), Xxh32.P4);
    }
    for (; i < this.tailLen; i++) {
      h = (h + Math.imul(bytes.u8(this.tail, i), Xxh32.P5)) | 0;
      h = Math.imul((h << 11) | (h >>> 21), Xxh32.P1);
    }
    h ^= h >>> 15;
    h = Math.imul(h, Xxh32.P2);
    h ^= h >>> 13;
    h = Math.imul(h, Xxh32.P3);
    h ^= h >>> 16;
    return h >>> 0;
  }
}

function lz4Block(data: Uint8Array, max: number, fail: Fail, at: number): Uint8Array {
  try {
    return decompress('lz4', data, max);
  } catch (err) {
    if (err instanceof NixSealError) throw fail(`an lz4 block: ${(err as { why?: string }).why ?? err.message}`, at);
    throw err;
  }
}

/**
 * The streams of an xz file (`xz` writes one; `cat a.xz b.xz` is valid too, with optional zero
 * padding between), found from the end: each stream footer gives its index's size, and the index
 * the sizes of its blocks.
 */
function xzStreams(src: ByteSource, fail: Fail): Array<[number, number]> {
  const streams: Array<[number, number]> = [];
  let end = src.size;
  while (end > 0) {
    while (end >= 4 && bytes.le32(src.read(end - 4, 4), 0) === 0) end -= 4; // stream padding
    if (end === 0) break;
    if (end < 24) throw fail('an xz stream shorter than its header and footer', 0);
    const footer = src.read(end - 12, 12);
    if (footer[10] !== 0x59 || footer[11] !== 0x5a) throw fail('no xz stream footer ("YZ") at the end of a stream', end - 2);
    const indexSize = (bytes.le32(footer, 4) + 1) * 4;
    const indexAt = end - 12 - indexSize;
    if (indexAt < 12) throw fail(`an xz index of ${indexSize} bytes does not fit in the stream`, end - 8);
    const index = src.read(indexAt, indexSize);
    if (index[0] !== 0) throw fail('no xz index indicator', indexAt);
    let p = 1;
    const varint = (): number => {
      let v = 0;
      for (let i = 0; i < 9; i++) {
        if (p >= index.length) throw fail('a truncated xz index', indexAt + p);
        const b = bytes.u8(index, p++);
        v += (b & 0x7f) * 2 ** (7 * i);
        if ((b & 0x80) === 0) return v;
      }
      throw fail('an xz index number longer than 9 bytes', indexAt + p);
    };
    const records = varint();
    if (records > indexSize) throw fail(`an xz index of ${records} records in ${indexSize} bytes`, indexAt);
    let blocks = 0;
    for (let i = 0; i < records; i++) {
      blocks += Math.ceil(varint() / 4) * 4;
      varint();
    }
    const start = indexAt - blocks - 12;
    if (!(start >= 0) || bytes.le32(src.read(start, 4), 0) !== 0x587a37fd) throw fail('an xz stream whose index does not lead back to a stream header', indexAt);
    streams.push([start, end]);
    end = start;
  }
  if (streams.length === 0) throw fail('an xz file of padding only', 0);
  return streams.reverse();
}

function unxzInto(src: ByteSource, sink: Sink, limits: StreamLimits, fail: Fail): void {
  for (const [start, end] of xzStreams(src, fail)) {
    if (end - start > limits.maxInMemory) throw fail(`an xz stream over ${limits.maxInMemory} bytes (xz is decompressed in memory, a stream at a time)`, start);
    const max = Math.min(limits.maxOutput - sink.size, limits.maxInMemory);
    try {
      sink.write(decompress('xz', src.read(start, end - start), max));
    } catch (err) {
      if (err instanceof NixSealError && err.code === 'EFORMAT' && 'why' in err) {
        const why = String((err as { why: unknown }).why);
        throw /decompresses to more than/.test(why) ? fail(`it decompresses to more than ${limits.maxOutput} bytes (the budget)`) : fail(`corrupt xz data (${why})`, start);
      }
      throw err;
    }
  }
}

const NAMES: Record<StreamKind, string> = { gzip: 'gzip', xz: 'xz', zstd: 'zstd', bzip2: 'bzip2', lz4: 'lz4' };

/** Decompresses `src` to a temporary (unlinked) file; the source over it. */
export function decompressToFile(src: ByteSource, kind: StreamKind, name: string, limits: StreamLimits = DEFAULT_STREAM_LIMITS): FdSource {
  const fail: Fail = (why, offset) =>
    new NixSealError('EFORMAT', `Cannot read ${name}: ${why}${offset === undefined ? '' : ` at offset ${offset}`}`, offset === undefined ? { path: name } : { path: name, offset });
  const sink = new Sink(limits, (why) => fail(why));
  try {
    try {
      switch (kind) {
        case 'gzip':
          gunzipInto(src, sink, fail);
          break;
        case 'zstd':
          unzstdInto(src, sink, fail);
          break;
        case 'bzip2':
          unbzip2Into(src, sink, fail);
          break;
        case 'lz4':
          unlz4Into(src, sink, fail);
          break;
        case 'xz':
          unxzInto(src, sink, limits, fail);
          break;
      }
    } catch (err) {
      if (err instanceof NixSealError) throw err;
      // The decoders' own errors (fflate, fzstd, seek-bzip): corrupt data.
      throw fail(`corrupt ${NAMES[kind]} data (${err instanceof Error ? err.message : String(err)})`);
    }
  } catch (err) {
    sink.close();
    throw err;
  }
  const out = new FdSource(sink.fd, `${name} (decompressed)`, sink.size);
  closeWhenCollected.register(out, sink.fd);
  return out;
}

/** The descriptor is closed when its source is garbage-collected (the view has no close()). */
const closeWhenCollected = new FinalizationRegistry<number>((fd) => {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
});

function streamView(src: ByteSource, kind: StreamKind, name: string, limits: StreamLimits): ImageView {
  const inner = decompressToFile(src, kind, name, limits);
  const entry: InnerEntry = { path: `(${NAMES[kind]} contents)`, type: 'file', size: inner.size, executable: false };
  return {
    kind,
    description: `${NAMES[kind]}-compressed data (${inner.size} bytes decompressed)`,
    source: src,
    entries: () => [{ path: '', type: 'dir', size: 0 }, entry],
    *read(e) {
      if (e.path !== entry.path) throw new NixSealError('EUSAGE', `Cannot read ${e.path} in ${name}: no such file`, { path: e.path });
      yield* readRange(inner, 0, inner.size);
    },
    fileSource: (e) => (e.path === entry.path ? inner : undefined),
    // A compressed byte cannot be tied to a decompressed offset.
    locate: () => ({ path: entry.path, what: 'compressed data' }),
  };
}

/** A reader for compressed streams with the given limits (tests use small ones). */
export function makeCompressedStreamReader(limits: StreamLimits = DEFAULT_STREAM_LIMITS): ImageReader {
  return {
    kind: 'compressed-stream',
    detect: (src) => streamKind(src) !== undefined,
    open(src, name) {
      const kind = streamKind(src);
      if (kind === undefined) throw new NixSealError('EFORMAT', `Cannot read ${name}: not gzip, xz, zstd, bzip2 or lz4 data at offset 0`, { path: name, offset: 0 });
      return streamView(src, kind, name, limits);
    },
  };
}

export const compressedStreamReader: ImageReader = makeCompressedStreamReader();
