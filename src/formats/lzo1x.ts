/**
 * LZO1X decompression, for squashfs images made with `mksquashfs -comp lzo` (squashfs-tools calls
 * liblzo2's lzo1x_decompress_safe on each block; every LZO1X compressor level, lzo1x_1 to
 * lzo1x_999, writes this one bitstream).
 *
 * Hand-written because no maintained LZO decoder on npm installs without compiling (the `lzo`
 * package is node-gyp bindings; the others wrap FFmpeg for browsers). The bitstream is the one
 * documented by liblzo2's lzo1x_d.ch and the Linux kernel's lib/lzo/lzo1x_decompress_safe.c (the
 * "safe" variant: every read and write is bounds-checked). The kernel's lzo-rle extension is not
 * part of LZO1X and never appears in squashfs images.
 */
import { u8At } from '../checked-index.js';
import { NixSealError } from '../errors.js';

/** Why an LZO1X stream is invalid, with the offset in the input where it was found. */
export class Lzo1xError extends NixSealError {
  constructor(
    readonly why: string,
    offset: number,
    /** The stream decodes to more than the caller allows (a bomb, or a limit too small). */
    readonly tooLarge = false,
  ) {
    super('EFORMAT', `Cannot decompress lzo data: ${why} at input offset ${offset}`, { offset });
  }
}

/** Distances of M1-after-literals and M4 matches start beyond those of M2 and M3. */
const M2_MAX_OFFSET = 0x0800;
const M4_BASE = 0x4000;

/**
 * Decompresses one complete LZO1X stream to at most `maxOutput` bytes. Throws Lzo1xError for
 * corrupt input, input that ends early or continues after the end marker, and output that would
 * exceed `maxOutput` (then `tooLarge`).
 *
 * The stream is a sequence of instructions, each a first byte `t` then operands:
 *
 * - literal run (t < 16 after a match that copied no trailing literals, or at the start): t + 3
 *   literals, or with t = 0 a length extended by zero bytes (each +255) and a final byte (+15);
 * - M1 match (t < 16 after 1–3 trailing literals): 2 bytes at distance 1 + (t >> 2) + (b << 2);
 *   after a literal run: 3 bytes at distance 2049 + (t >> 2) + (b << 2);
 * - M2 (t ≥ 64): 3–8 bytes, distance up to 2048;
 * - M3 (32 ≤ t < 64): length (t & 31) + 2 (extended when 0), distance up to 16384 (16-bit LE);
 * - M4 (16 ≤ t < 32): length (t & 7) + 2 (extended when 0), distance 16384 + … up to 49151; with
 *   distance 16384 exactly, the end-of-stream marker (always 0x11 0x00 0x00).
 *
 * The low two bits of each match's last operand give 0–3 literals that follow it.
 *
 * Checked reads (u8At) measured free here: 0.97–1.00 of unchecked (12 liblzo2 lzo1x_1 blocks of
 * 128 KiB, alternated rounds, medians).
 */
export function lzo1xDecompress(input: Uint8Array, maxOutput: number): Uint8Array {
  const out = new Uint8Array(maxOutput);
  const end = input.length;
  let ip = 0;
  let op = 0;

  const tooLarge = (): Lzo1xError => new Lzo1xError(`decompresses to more than ${maxOutput} bytes`, ip, true);
  const needInput = (n: number): void => {
    if (ip + n > end) throw new Lzo1xError('the input ends early', end);
  };
  const needRoom = (n: number): void => {
    if (op + n > maxOutput) throw tooLarge();
  };
  const copyLiterals = (n: number): void => {
    needInput(n);
    needRoom(n);
    out.set(input.subarray(ip, ip + n), op);
    ip += n;
    op += n;
  };
  /** A length extension: zero bytes count 255 each, then a non-zero byte. */
  const extension = (): number => {
    let n = 0;
    for (;;) {
      needInput(1);
      const b = u8At(input, ip++);
      if (b !== 0) return n + b;
      n += 255;
      if (n > maxOutput) throw tooLarge();
    }
  };

  if (end < 3) throw new Lzo1xError('the input ends early', end);
  /** 0: after a literal run's match or at the start; 1–3: trailing literals copied; 4: after a literal run. */
  let state = 0;
  if (u8At(input, 0) > 17) {
    const t = u8At(input, ip++) - 17;
    copyLiterals(t);
    state = t < 4 ? t : 4;
  }

  for (;;) {
    needInput(1);
    const at = ip;
    const t = u8At(input, ip++);
    let length: number;
    let from: number;
    let next: number;
    if (t < 16) {
      if (state === 0) {
        copyLiterals((t === 0 ? 15 + extension() : t) + 3);
        state = 4;
        continue;
      }
      needInput(1);
      next = t & 3;
      if (state !== 4) {
        from = op - 1 - (t >> 2) - (u8At(input, ip++) << 2);
        length = 2;
      } else {
        from = op - 1 - M2_MAX_OFFSET - (t >> 2) - (u8At(input, ip++) << 2);
        length = 3;
      }
    } else if (t >= 64) {
      needInput(1);
      next = t & 3;
      from = op - 1 - ((t >> 2) & 7) - (u8At(input, ip++) << 3);
      length = (t >> 5) + 1;
    } else if (t >= 32) {
      length = (t & 31) + 2;
      if (length === 2) length += 31 + extension();
      needInput(2);
      const v = u8At(input, ip) | (u8At(input, ip + 1) << 8);
      ip += 2;
      from = op - 1 - (v >> 2);
      next = v & 3;
    } else {
      length = (t & 7) + 2;
      if (length === 2) length += 7 + extension();
      needInput(2);
      const v = u8At(input, ip) | (u8At(input, ip + 1) << 8);
      ip += 2;
      from = op - ((t & 8) << 11) - (v >> 2);
      next = v & 3;
      if (from === op) {
        if (length !== 3) throw new Lzo1xError('malformed end-of-stream marker', at);
        if (ip !== end) throw new Lzo1xError(`${end - ip} bytes after the end of the stream`, ip);
        return out.subarray(0, op);
      }
      from -= M4_BASE;
    }
    if (from < 0) throw new Lzo1xError(`a match refers to ${-from} bytes before the start of the output`, at);
    needRoom(length);
    // Byte by byte: a match may overlap the bytes it produces (a run).
    for (let i = 0; i < length; i++) out[op++] = u8At(out, from++);
    copyLiterals(next);
    state = next;
  }
}
