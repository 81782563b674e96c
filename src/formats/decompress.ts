/**
 * Block decompressors for the compressors squashfs (version 4) and erofs images use, with the
 * output capped: a reader of a hostile image must never let a small block grow into gigabytes, so
 * every call says how much output it accepts (`maxOutput`: the block size, 8 KiB for metadata) and
 * anything more is an EFORMAT error. Where a library cannot stop by itself at a limit, the
 * container is walked first (without decoding) to prove the output is bounded before it runs; the
 * notes above each compressor's section say how. Errors are DecompressError (EFORMAT): `why` is the
 * reason alone, for a caller that adds where the block was.
 */
import { createRequire } from 'node:module';
import * as zlib from 'node:zlib';
import { decompress as zstdDecompress } from 'fzstd';
import type { ZSTDDecoder } from 'zstddec/stream';
import { errnoCode, NixSealError } from '../errors.js';
import { itemAt, u8At } from '../checked-index.js';
import * as bytes from './bytes.js';
import { crc32 } from './crc32.js';
import { Lzo1xError, lzo1xDecompress } from './lzo1x.js';

export { crc32 };

export type CompressionKind = 'gzip' | 'lzma' | 'lzo' | 'xz' | 'lz4' | 'zstd';

/** Squashfs superblock compression ids. */
export const SQUASHFS_COMPRESSION: Readonly<Record<number, CompressionKind>> = {
  1: 'gzip',
  2: 'lzma',
  3: 'lzo',
  4: 'xz',
  5: 'lz4',
  6: 'zstd',
};

/** A decompression failure: EFORMAT, with `why` alone (no place) for callers that add one. */
export class DecompressError extends NixSealError {
  constructor(
    readonly kind: CompressionKind,
    readonly why: string,
    readonly unsupported = false,
    cause?: unknown,
  ) {
    super('EFORMAT', `Cannot decompress ${kind} data: ${why}`, cause === undefined ? {} : { cause });
  }
}

interface NapiLzma {
  xz: { decompressSync(input: Uint8Array): Uint8Array };
  lzma: { decompressSync(input: Uint8Array): Uint8Array };
  lzma2: { decompressSync(input: Uint8Array): Uint8Array };
}

interface NapiLz4 {
  uncompressSync(input: Uint8Array): Uint8Array;
}

/** The native addons, each loaded (or found missing) once. */
const addons = new Map<string, unknown>();

/**
 * A native addon (prebuilt per platform: @napi-rs/lzma, lz4-napi), loaded on first use and only
 * then; on a platform without it, `kind` is an unsupported compressor.
 */
function nativeAddon<T>(module: string, kind: CompressionKind): T {
  if (!addons.has(module)) {
    try {
      addons.set(module, createRequire(import.meta.url)(module));
    } catch (err) {
      addons.set(module, err instanceof Error ? err : new Error(String(err)));
    }
  }
  const addon = addons.get(module);
  if (addon instanceof Error) {
    throw new DecompressError(kind, `unsupported compressor (${module} cannot be loaded on this platform: ${addon.message})`, true, addon);
  }
  return addon as T;
}

const lzmaLibrary = (kind: CompressionKind): NapiLzma => nativeAddon<NapiLzma>('@napi-rs/lzma', kind);
const lz4Library = (): NapiLz4 => nativeAddon<NapiLz4>('lz4-napi', 'lz4');

/** Whether `kind` can be decompressed here (xz, lzma and lz4 need their native addons). */
export function isSupported(kind: CompressionKind): boolean {
  try {
    if (kind === 'xz' || kind === 'lzma') lzmaLibrary(kind);
    if (kind === 'lz4') lz4Library();
  } catch {
    return false;
  }
  return true;
}

/**
 * Decompresses one complete compressed block. The result is at most `maxOutput` bytes; input that
 * is corrupt, would decompress to more, or uses an unsupported compressor throws DecompressError.
 */
export function decompress(kind: CompressionKind, input: Uint8Array, maxOutput: number): Uint8Array {
  if (!Number.isSafeInteger(maxOutput) || maxOutput < 0) throw new RangeError(`decompress: bad maxOutput ${maxOutput}`);
  let out: Uint8Array;
  switch (kind) {
    case 'gzip':
      out = gunzip(input, maxOutput);
      break;
    case 'zstd':
      out = unzstd(input, maxOutput);
      break;
    case 'xz':
      out = unxz(input, maxOutput);
      break;
    case 'lzma':
      out = unlzma(input, maxOutput);
      break;
    case 'lz4':
      out = unlz4(input, maxOutput);
      break;
    case 'lzo':
      out = unlzo(input, maxOutput);
      break;
    default:
      throw new DecompressError(kind, 'unsupported compressor', true);
  }
  if (out.length > maxOutput) throw bomb(kind, maxOutput);
  return out;
}

const bomb = (kind: CompressionKind, maxOutput: number): DecompressError =>
  new DecompressError(kind, `decompresses to more than ${maxOutput} bytes`);

const failed = (kind: CompressionKind, err: unknown): DecompressError =>
  err instanceof DecompressError ? err : new DecompressError(kind, `corrupt data (${err instanceof Error ? err.message : String(err)})`, false, err);

// gzip: zlib streams (RFC 1950), node:zlib with `maxOutputLength`.
function gunzip(input: Uint8Array, maxOutput: number): Uint8Array {
  try {
    // maxOutputLength 0 is refused by zlib; an empty result is never valid for squashfs anyway.
    return zlib.inflateSync(input, { maxOutputLength: Math.max(1, maxOutput) });
  } catch (err) {
    if (errnoCode(err) === 'ERR_BUFFER_TOO_LARGE') throw bomb('gzip', maxOutput);
    throw failed('gzip', err);
  }
}

// ---- zstd --------------------------------------------------------------------------------------
// zstd: one zstd frame, decoded by libzstd: node:zlib's zstd with `maxOutputLength` on Node ≥
// 22.15, else libzstd compiled to WebAssembly (zstddec) into a buffer of the declared size. The
// WebAssembly module is instantiated asynchronously, so `prepareDecoders()` loads it; until it
// has run (a library caller that never awaits it) fzstd (pure JavaScript, several times slower)
// decodes. The frame must declare its content size (mksquashfs' frames always do), that size
// must be within the limit, and the frame's blocks are walked to check there is exactly one
// frame and nothing after it. Every decoder gets the same checks and the same size, so an image
// is accepted or refused alike on every Node.

const ZSTD_MAGIC = 0xfd2fb528;
/** The most a single zstd block can decompress to. */
const ZSTD_BLOCK_MAX = 128 * 1024;

/**
 * Checks that `input` is exactly one zstd frame with a declared content size of at most maxOutput,
 * and returns that size. Walks the block headers only.
 */
function zstdFrameSize(input: Uint8Array, maxOutput: number): number {
  const fail = (why: string): DecompressError => new DecompressError('zstd', why);
  if (input.length < 6) throw fail('truncated frame header');
  const dv = new DataView(input.buffer, input.byteOffset, input.length);
  if (dv.getUint32(0, true) !== ZSTD_MAGIC) throw fail('not a zstd frame (bad magic)');
  const fhd = u8At(input, 4);
  const fcsFlag = fhd >> 6;
  const singleSegment = (fhd >> 5) & 1;
  if (fhd & 0x08) throw fail('reserved bit set in the frame header');
  const checksum = (fhd >> 2) & 1;
  const dictIdFlag = fhd & 3;
  let pos = 5 + (singleSegment ? 0 : 1) + itemAt([0, 1, 2, 4], dictIdFlag);
  const fcsBytes = fcsFlag === 0 ? singleSegment : 1 << fcsFlag;
  if (fcsBytes === 0) throw fail('the frame does not declare its content size');
  if (pos + fcsBytes > input.length) throw fail('truncated frame header');
  let size: number;
  switch (fcsBytes) {
    case 1:
      size = u8At(input, pos);
      break;
    case 2:
      size = dv.getUint16(pos, true) + 256;
      break;
    case 4:
      size = dv.getUint32(pos, true);
      break;
    default: {
      const big = dv.getBigUint64(pos, true);
      size = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
    }
  }
  pos += fcsBytes;
  if (size > maxOutput) throw bomb('zstd', maxOutput);
  if (size === 0) throw fail('empty frame');
  // Walk the blocks: each has a 3-byte header (last, type, size). fzstd writes into a buffer of
  // the declared size, so the output is bounded by it; the walk proves there is one frame only.
  let known = 0; // output of raw and RLE blocks, which is exact
  for (;;) {
    if (pos + 3 > input.length) throw fail('truncated block header');
    const h = u8At(input, pos) | (u8At(input, pos + 1) << 8) | (u8At(input, pos + 2) << 16);
    pos += 3;
    const last = h & 1;
    const type = (h >> 1) & 3;
    const blockSize = h >>> 3;
    if (type === 3) throw fail('reserved block type');
    if (blockSize > ZSTD_BLOCK_MAX) throw fail('block larger than 128 KiB');
    if (type === 1) {
      pos += 1; // RLE: one byte repeated blockSize times
      known += blockSize;
    } else {
      pos += blockSize; // raw: blockSize bytes; compressed: blockSize bytes of input
      if (type === 0) known += blockSize;
    }
    if (pos > input.length) throw fail('truncated block');
    if (known > size) throw fail(`blocks hold more than the ${size} bytes the frame declares`);
    if (last) break;
  }
  pos += checksum * 4;
  if (pos !== input.length) throw fail(pos > input.length ? 'truncated checksum' : 'data after the frame');
  return size;
}

/** node:zlib's zstd decoder (Node ≥ 22.15); @types/node 20 does not know it. */
const nodeZstd = (zlib as unknown as { zstdDecompressSync?: (input: Uint8Array, opts: { maxOutputLength: number }) => Buffer }).zstdDecompressSync;

/**
 * libzstd as WebAssembly, once `prepareDecoders()` has loaded it: squashfs blocks where node:zlib
 * lacks zstd, and streamed files (.zst) on every Node, since node:zlib's zstd stream is async only.
 */
let wasmZstd: ZSTDDecoder | undefined;
let wasmLoading: Promise<void> | undefined;

/**
 * Loads the decoders that need an asynchronous start: libzstd as WebAssembly (instantiating it
 * takes tens of milliseconds, which commands that read no image should not pay). Called by every asynchronous entry point that opens images (the audit,
 * `why --precise`, the image: source); idempotent. If WebAssembly is unavailable (node
 * --jitless), fzstd stays: same results, slower.
 */
export function prepareDecoders(): Promise<void> {
  if (wasmZstd !== undefined) return Promise.resolve();
  wasmLoading ??= import('zstddec/stream')
    .then(async ({ ZSTDDecoder }) => {
      const decoder = new ZSTDDecoder();
      await decoder.init();
      wasmZstd = decoder;
    })
    .catch(() => undefined);
  return wasmLoading;
}

/** Which zstd decoder this Node uses now (for tests and --debug). */
export function zstdDecoder(): 'node:zlib' | 'zstddec' | 'fzstd' {
  return nodeZstd !== undefined ? 'node:zlib' : wasmZstd !== undefined ? 'zstddec' : 'fzstd';
}

/**
 * Decodes one complete zstd frame, given in chunks, with libzstd (WebAssembly), passing the output
 * to `write` as it comes; libzstd checks the content checksum. False when the decoder is not
 * loaded (then the caller decodes otherwise). zstddec reports a libzstd error only by making no
 * more progress (its loop then yields empty chunks forever): more than a few empty chunks without
 * a new input chunk is that error.
 */
export function unzstdFrameStreaming(chunks: Iterable<Uint8Array>, write: (chunk: Uint8Array) => void): boolean {
  if (wasmZstd === undefined) return false;
  let emptySincePull = 0;
  function* feed(): Generator<Uint8Array> {
    for (const c of chunks) {
      emptySincePull = 0;
      yield c;
    }
  }
  try {
    for (const out of wasmZstd.decodeStreaming(feed())) {
      if (out.length > 0) write(out);
      else if (++emptySincePull > 8) throw new DecompressError('zstd', 'corrupt frame (libzstd refused it)');
    }
  } catch (err) {
    if (err instanceof NixSealError) throw err; // the sink's own budget errors pass through
    throw failed('zstd', err);
  }
  return true;
}

function unzstd(input: Uint8Array, maxOutput: number): Uint8Array {
  const size = zstdFrameSize(input, maxOutput);
  let out: Uint8Array;
  try {
    if (nodeZstd !== undefined) {
      // libzstd stops at the declared size.
      out = nodeZstd(input, { maxOutputLength: size });
    } else if (wasmZstd !== undefined) {
      // libzstd writes at most `size` bytes; zstddec reports any libzstd error (corrupt data, a
      // bad checksum, more output than room) as an empty result, and size is never 0 here.
      out = wasmZstd.decode(input, size);
      if (out.length === 0) throw new DecompressError('zstd', `corrupt frame, or one that decompresses to more than the ${size} bytes it declares (libzstd refused it)`);
    } else {
      // Without a buffer fzstd allocates exactly the declared size.
      out = zstdDecompress(input);
    }
  } catch (err) {
    // libzstd: more output than maxOutputLength, or (single-segment frames, sized from the header)
    // a frame whose blocks hold more than it declares.
    const code = errnoCode(err);
    if (code === 'ERR_BUFFER_TOO_LARGE' || code === 'ZSTD_error_dstSize_tooSmall') {
      throw new DecompressError('zstd', `frame decompresses to more than the ${size} bytes it declares`);
    }
    throw failed('zstd', err);
  }
  if (out.length !== size) throw new DecompressError('zstd', `frame decompressed to ${out.length} bytes, not the ${size} it declares`);
  return out;
}

// ---- xz and lzma -------------------------------------------------------------------------------
// xz: one .xz stream (as liblzma's lzma_stream_buffer_encode writes it), @napi-rs/lzma (lzma-rs,
// Rust). The LZMA2 chunk headers carry their unpacked sizes; their sum is checked first. Blocks
// may have BCJ filters before LZMA2 (mksquashfs -Xbcj x86|arm|armthumb|powerpc|sparc; NixOS ISOs
// use "-Xbcj x86" or "arm"), which lzma-rs does not know: then the LZMA2 data is decoded alone and
// the filter undone here (a few lines each, after xz's public-domain reference decoders), with
// the CRC32 check verified here too. ia64 and delta filters are refused as unsupported.
// lzma: the "LZMA alone" format (13-byte header with the unpacked size), @napi-rs/lzma. The header
// must give a size within the limit; lzma-rs stops there.

const XZ_MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const XZ_FILTER_LZMA2 = 0x21;
const XZ_CHECK_CRC32 = 1;
/** Branch/call/jump filters (BCJ) this module can undo, by xz filter id. */
const BCJ_FILTERS: Readonly<Record<number, string>> = { 0x04: 'x86', 0x05: 'powerpc', 0x07: 'arm', 0x08: 'armthumb', 0x09: 'sparc' };

interface XzFilter {
  id: number;
  props: Uint8Array;
}

interface XzBlock {
  filters: XzFilter[];
  /** The LZMA2 data, end marker included. */
  dataStart: number;
  dataEnd: number;
  /** Sum of the LZMA2 chunks' unpacked sizes. */
  unpacked: number;
  /** From the block header, if it gives it. */
  uncompressedSize: bigint | undefined;
  check: Uint8Array;
}

/** Reads an xz variable-length integer (at most 9 bytes). */
function xzVarint(input: Uint8Array, pos: number, end: number): [bigint, number] {
  let v = 0n;
  for (let i = 0; i < 9; i++) {
    if (pos >= end) throw new DecompressError('xz', 'truncated block header');
    const b = u8At(input, pos++);
    v |= BigInt(b & 0x7f) << BigInt(7 * i);
    if ((b & 0x80) === 0) return [v, pos];
  }
  throw new DecompressError('xz', 'bad integer in block header');
}

const le32 = bytes.le32;

/**
 * Walks an .xz stream's blocks and their LZMA2 chunk headers without decoding: the filter chains,
 * where each block's LZMA2 data is, and the sum of the chunks' unpacked sizes (which bounds what
 * an LZMA2 decoder produces; more than maxOutput is a bomb). Filter chains: LZMA2, after at most
 * three BCJ filters (what mksquashfs -Xbcj writes).
 */
function xzWalk(input: Uint8Array, maxOutput: number): { checkType: number; blocks: XzBlock[] } {
  const fail = (why: string): DecompressError => new DecompressError('xz', why);
  if (input.length < 12 + 12) throw fail('truncated stream');
  for (let i = 0; i < 6; i++) if (input[i] !== XZ_MAGIC[i]) throw fail('not an xz stream (bad magic)');
  if (crc32(input.subarray(6, 8)) !== le32(input, 8)) throw fail('stream header CRC32 mismatch');
  if (input[6] !== 0 || u8At(input, 7) > 0x0f) throw fail('unsupported stream flags');
  const checkType = u8At(input, 7);
  const checkSize = checkType === 0 ? 0 : 4 << Math.floor((checkType - 1) / 3);
  const blocks: XzBlock[] = [];
  let pos = 12;
  let total = 0;
  for (;;) {
    if (pos >= input.length) throw fail('truncated stream');
    const sizeByte = u8At(input, pos);
    if (sizeByte === 0) break; // the index follows
    const blockStart = pos;
    const headerEnd = blockStart + (sizeByte + 1) * 4;
    if (headerEnd > input.length) throw fail('truncated block header');
    if (crc32(input.subarray(blockStart, headerEnd - 4)) !== le32(input, headerEnd - 4)) throw fail('block header CRC32 mismatch');
    const flags = u8At(input, pos + 1);
    if (flags & 0x3c) throw fail('reserved block flags set');
    pos += 2;
    const filterCount = (flags & 3) + 1;
    if (flags & 0x40) pos = xzVarint(input, pos, headerEnd - 4)[1];
    let uncompressedSize: bigint | undefined;
    if (flags & 0x80) [uncompressedSize, pos] = xzVarint(input, pos, headerEnd - 4);
    const filters: XzFilter[] = [];
    for (let f = 0; f < filterCount; f++) {
      let id: bigint;
      let propSize: bigint;
      [id, pos] = xzVarint(input, pos, headerEnd - 4);
      [propSize, pos] = xzVarint(input, pos, headerEnd - 4);
      if (propSize > BigInt(headerEnd - 4 - pos)) throw fail('truncated block header');
      const last = f === filterCount - 1;
      const ok = last ? id === BigInt(XZ_FILTER_LZMA2) && propSize === 1n : BCJ_FILTERS[Number(id & 0xffn)] !== undefined && id < 0x100n && (propSize === 0n || propSize === 4n);
      if (!ok) {
        throw new DecompressError('xz', `unsupported filter chain (filter 0x${id.toString(16)}: only LZMA2, after BCJ filters for x86, powerpc, arm, armthumb or sparc)`, true);
      }
      filters.push({ id: Number(id), props: input.subarray(pos, pos + Number(propSize)) });
      pos += Number(propSize);
    }
    // LZMA2 chunks.
    const dataStart = headerEnd;
    pos = headerEnd;
    let unpacked = 0;
    for (;;) {
      if (pos >= input.length) throw fail('truncated LZMA2 data');
      const control = u8At(input, pos);
      if (control === 0) {
        pos += 1;
        break;
      }
      if (control === 1 || control === 2) {
        if (pos + 3 > input.length) throw fail('truncated LZMA2 chunk header');
        const size = ((u8At(input, pos + 1) << 8) | u8At(input, pos + 2)) + 1;
        unpacked += size;
        pos += 3 + size;
      } else if (control >= 0x80) {
        const hasProps = control >= 0xc0 ? 1 : 0;
        if (pos + 5 + hasProps > input.length) throw fail('truncated LZMA2 chunk header');
        const size = ((control & 0x1f) << 16) + ((u8At(input, pos + 1) << 8) | u8At(input, pos + 2)) + 1;
        const packed = ((u8At(input, pos + 3) << 8) | u8At(input, pos + 4)) + 1;
        unpacked += size;
        pos += 5 + hasProps + packed;
      } else {
        throw fail(`bad LZMA2 chunk control byte 0x${control.toString(16)}`);
      }
      if (total + unpacked > maxOutput) throw bomb('xz', maxOutput);
    }
    const dataEnd = pos;
    if (dataEnd > input.length) throw fail('truncated LZMA2 data');
    total += unpacked;
    // Block padding to a multiple of four, then the check.
    pos += (4 - ((pos - blockStart) % 4)) % 4;
    if (pos + checkSize > input.length) throw fail('truncated block');
    blocks.push({ filters, dataStart, dataEnd, unpacked, uncompressedSize, check: input.subarray(pos, pos + checkSize) });
    pos += checkSize;
  }
  return { checkType, blocks };
}

function unxz(input: Uint8Array, maxOutput: number): Uint8Array {
  const { checkType, blocks } = xzWalk(input, maxOutput);
  const lib = lzmaLibrary('xz');
  if (blocks.every((b) => b.filters.length === 1)) {
    // LZMA2 alone: lzma-rs reads the whole stream, and checks the checks and the index.
    try {
      return lib.xz.decompressSync(input);
    } catch (err) {
      throw failed('xz', err);
    }
  }
  // BCJ filters, which lzma-rs does not know: decode each block's LZMA2 data, undo the filters,
  // then check the size and the CRC32 ourselves.
  const parts: Uint8Array[] = [];
  for (const b of blocks) {
    let out: Uint8Array;
    try {
      out = new Uint8Array(lib.lzma2.decompressSync(input.subarray(b.dataStart, b.dataEnd)));
    } catch (err) {
      throw failed('xz', err);
    }
    if (out.length !== b.unpacked) throw new DecompressError('xz', `LZMA2 data decompressed to ${out.length} bytes, not the ${b.unpacked} its chunks give`);
    if (b.uncompressedSize !== undefined && BigInt(out.length) !== b.uncompressedSize) throw new DecompressError('xz', 'block size does not match its header');
    for (let f = b.filters.length - 2; f >= 0; f--) {
      const filter = itemAt(b.filters, f);
      unBcj(filter.id, out, filter.props.length === 4 ? le32(filter.props, 0) : 0);
    }
    if (checkType === XZ_CHECK_CRC32 && crc32(out) !== le32(b.check, 0)) throw new DecompressError('xz', 'CRC32 of the data does not match');
    parts.push(out);
  }
  return parts.length === 1 ? itemAt(parts, 0) : Buffer.concat(parts);
}

// ---- BCJ filters (decoding), after xz's reference decoders (public domain, xz-embedded) --------

const X86_ALLOWED = [true, true, true, false, true, false, false, false];
const X86_BIT_NUM = [0, 1, 2, 2, 3, 3, 3, 3];
const x86MsByte = (b: number): boolean => b === 0x00 || b === 0xff;

/**
 * Undoes a BCJ filter in place; `start` is the stream position of buf[0] (the filter's offset).
 * Unchecked reads: u8At is measurably slower in these per-byte loops, twice as slow for ARM
 * (BENCHMARKS.md, "Figures behind code choices").
 */
export function unBcj(id: number, buf: Uint8Array, start = 0): void {
  const size = buf.length;
  const be32 = (i: number): number => ((buf[i]! << 24) | (buf[i + 1]! << 16) | (buf[i + 2]! << 8) | buf[i + 3]!) >>> 0;
  const putBe32 = (v: number, i: number): void => {
    buf[i] = v >>> 24;
    buf[i + 1] = v >>> 16;
    buf[i + 2] = v >>> 8;
    buf[i + 3] = v;
  };
  switch (BCJ_FILTERS[id]) {
    case 'x86': {
      if (size <= 4) return;
      let prevPos = -1;
      let prevMask = 0;
      const end = size - 4;
      for (let i = 0; i < end; i++) {
        if ((buf[i]! & 0xfe) !== 0xe8) continue;
        const dist = i - prevPos;
        if (dist > 3) {
          prevMask = 0;
        } else {
          prevMask = (prevMask << (dist - 1)) & 7;
          if (prevMask !== 0) {
            const b = buf[i + 4 - X86_BIT_NUM[prevMask]!]!;
            if (!X86_ALLOWED[prevMask] || x86MsByte(b)) {
              prevPos = i;
              prevMask = (prevMask << 1) | 1;
              continue;
            }
          }
        }
        prevPos = i;
        if (x86MsByte(buf[i + 4]!)) {
          let src = le32(buf, i + 1);
          let dest: number;
          for (;;) {
            dest = (src - (start + i + 5)) >>> 0;
            if (prevMask === 0) break;
            const j = X86_BIT_NUM[prevMask]! * 8;
            const b = (dest >>> (24 - j)) & 0xff;
            if (!x86MsByte(b)) break;
            src = (dest ^ (2 ** (32 - j) - 1)) >>> 0;
          }
          dest &= 0x01ffffff;
          dest = (dest | (0 - (dest & 0x01000000))) >>> 0;
          buf[i + 1] = dest;
          buf[i + 2] = dest >>> 8;
          buf[i + 3] = dest >>> 16;
          buf[i + 4] = dest >>> 24;
          i += 4;
        } else {
          prevMask = (prevMask << 1) | 1;
        }
      }
      return;
    }
    case 'arm': {
      for (let i = 0; i + 4 <= size; i += 4) {
        if (buf[i + 3] !== 0xeb) continue;
        let addr = buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16);
        addr = (((addr << 2) - (start + i + 8)) >>> 2) & 0xffffff;
        buf[i] = addr;
        buf[i + 1] = addr >>> 8;
        buf[i + 2] = addr >>> 16;
      }
      return;
    }
    case 'armthumb': {
      for (let i = 0; i + 4 <= size; i += 2) {
        if ((buf[i + 1]! & 0xf8) !== 0xf0 || (buf[i + 3]! & 0xf8) !== 0xf8) continue;
        let addr = ((buf[i + 1]! & 7) << 19) | (buf[i]! << 11) | ((buf[i + 3]! & 7) << 8) | buf[i + 2]!;
        addr = ((addr << 1) - (start + i + 4)) >>> 1;
        buf[i + 1] = 0xf0 | ((addr >>> 19) & 7);
        buf[i] = addr >>> 11;
        buf[i + 3] = 0xf8 | ((addr >>> 8) & 7);
        buf[i + 2] = addr;
        i += 2;
      }
      return;
    }
    case 'powerpc': {
      for (let i = 0; i + 4 <= size; i += 4) {
        let instr = be32(i);
        if ((instr & 0xfc000003) >>> 0 !== 0x48000001) continue;
        instr &= 0x03fffffc;
        instr = (instr - (start + i)) & 0x03fffffc;
        putBe32((instr | 0x48000001) >>> 0, i);
      }
      return;
    }
    case 'sparc': {
      for (let i = 0; i + 4 <= size; i += 4) {
        let instr = be32(i);
        if (instr >>> 22 !== 0x100 && instr >>> 22 !== 0x1ff) continue;
        instr = (((instr << 2) >>> 0) - (start + i)) >>> 0;
        instr >>>= 2;
        instr = ((0x40000000 - (instr & 0x400000)) | 0x40000000 | (instr & 0x3fffff)) >>> 0;
        putBe32(instr, i);
      }
      return;
    }
    default:
      throw new DecompressError('xz', `unsupported BCJ filter 0x${id.toString(16)}`, true);
  }
}

// lzo: one LZO1X stream, lzo1x.ts (hand-written: no maintained LZO decoder on npm installs
// without compiling), which checks every read and write against the input and the limit.
function unlzo(input: Uint8Array, maxOutput: number): Uint8Array {
  try {
    return lzo1xDecompress(input, maxOutput);
  } catch (err) {
    if (!(err instanceof Lzo1xError)) throw err;
    if (err.tooLarge) throw bomb('lzo', maxOutput);
    throw new DecompressError('lzo', `corrupt data (${err.why} at input offset ${err.details.offset})`, false, err);
  }
}

/**
 * A raw LZ4 block (squashfs-tools' LZ4_decompress_safe), at most `maxOutput` bytes once decoded,
 * by lz4-napi (lz4_flex, Rust). Its block API reads the output size from a 4-byte prefix and fails
 * rather than write past it, so the limit is passed as that prefix: bounded by construction.
 */
function unlz4(input: Uint8Array, maxOutput: number): Uint8Array {
  if (input.length === 0) throw new DecompressError('lz4', 'empty block');
  if (maxOutput > 0xffff_ffff) throw new RangeError(`decompress: maxOutput ${maxOutput} is beyond an lz4 block`);
  const framed = Buffer.allocUnsafe(4 + input.length);
  framed.writeUInt32LE(maxOutput, 0);
  framed.set(input, 4);
  try {
    return lz4Library().uncompressSync(framed);
  } catch (err) {
    if (err instanceof DecompressError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    if (/output is too small/.test(message)) throw bomb('lz4', maxOutput);
    throw failed('lz4', err);
  }
}

/** LZMA alone: 1 byte properties, 4 bytes dictionary size, 8 bytes unpacked size (LE). */
const LZMA_HEADER_SIZE = 13;

function unlzma(input: Uint8Array, maxOutput: number): Uint8Array {
  if (input.length < LZMA_HEADER_SIZE) throw new DecompressError('lzma', 'truncated header');
  if (u8At(input, 0) >= 9 * 5 * 5) throw new DecompressError('lzma', 'bad properties byte');
  const size = new DataView(input.buffer, input.byteOffset, input.length).getBigUint64(5, true);
  if (size === 0xffff_ffff_ffff_ffffn) throw new DecompressError('lzma', 'the header does not give the unpacked size');
  if (size > BigInt(maxOutput)) throw bomb('lzma', maxOutput);
  let out: Uint8Array;
  try {
    out = lzmaLibrary('lzma').lzma.decompressSync(input);
  } catch (err) {
    throw failed('lzma', err);
  }
  if (BigInt(out.length) !== size) throw new DecompressError('lzma', `decompressed to ${out.length} bytes, not the ${size} its header gives`);
  return out;
}
