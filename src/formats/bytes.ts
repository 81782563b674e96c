/**
 * The byte toolkit every format module reads headers with: fixed-width integers at an offset
 * (little- and big-endian), latin1 slices, magic comparisons. Plain functions over a Uint8Array,
 * no DataView per call: detection runs on thousands of files per `--seal-images` run.
 *
 * Callers check lengths before reading: a read past the end is a bug in the caller and stops with
 * the RangeError of checked-index (not a verdict on the input); the detections below check
 * `bytes.length` against the structure first. Checked reads measured free for header fields, not
 * in a per-word data loop (compressed-stream's xxHash32 stripe reads its own words unchecked;
 * BENCHMARKS.md, "Figures behind code choices").
 */
import { u8At } from '../checked-index.js';

export const u8 = (b: Uint8Array, at: number): number => u8At(b, at);
export const le16 = (b: Uint8Array, at: number): number => u8At(b, at) | (u8At(b, at + 1) << 8);
export const be16 = (b: Uint8Array, at: number): number => (u8At(b, at) << 8) | u8At(b, at + 1);
export const le32 = (b: Uint8Array, at: number): number =>
  (u8At(b, at) | (u8At(b, at + 1) << 8) | (u8At(b, at + 2) << 16) | (u8At(b, at + 3) << 24)) >>> 0;
export const be32 = (b: Uint8Array, at: number): number =>
  ((u8At(b, at) << 24) | (u8At(b, at + 1) << 16) | (u8At(b, at + 2) << 8) | u8At(b, at + 3)) >>> 0;
/** 64-bit little-endian as a double (exact below 2^53, which is all a file size needs). */
export const le64 = (b: Uint8Array, at: number): number => le32(b, at) + le32(b, at + 4) * 2 ** 32;
/** 64-bit big-endian as a double (exact below 2^53). */
export const be64 = (b: Uint8Array, at: number): number => be32(b, at) * 2 ** 32 + be32(b, at + 4);

/** `n` bytes at `at` as a latin1 string (one char per byte). */
export const latin1 = (b: Uint8Array, at: number, n: number): string => String.fromCharCode(...b.subarray(at, at + n));

/** A magic string as bytes (latin1), made once per module: detection compares bytes, not strings. */
export const magicBytes = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** Whether `magic` is at `at` in `b` (false when `b` is too short). */
export function startsWith(b: Uint8Array, at: number, magic: Uint8Array): boolean {
  if (at + magic.length > b.length) return false;
  for (let i = 0; i < magic.length; i++) if (b[at + i] !== magic[i]) return false;
  return true;
}

/** Whether each of the `n` bytes at `at` passes `ok` (false when `b` is too short). */
export function allMatch(b: Uint8Array, at: number, n: number, ok: (c: number) => boolean): boolean {
  if (at + n > b.length) return false;
  for (const c of b.subarray(at, at + n)) if (!ok(c)) return false;
  return true;
}
export const isHexDigit = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
export const isOctalDigit = (c: number): boolean => c >= 0x30 && c <= 0x37;
export const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** A name from a header, for a message: up to 64 bytes, up to a NUL, non-printables as '.'. */
export function printableName(b: Uint8Array, at: number, n: number): string {
  let out = '';
  for (const c of b.subarray(at, at + Math.min(n, 64))) {
    if (c === 0) break;
    out += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.';
  }
  return out;
}
