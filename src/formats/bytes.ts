/**
 * The byte toolkit every format module reads headers with: fixed-width integers at an offset
 * (little- and big-endian), latin1 slices, magic comparisons. Plain functions over a Uint8Array,
 * no DataView per call: detection runs on thousands of files per `--seal-images` run.
 *
 * Callers check lengths before reading (a read past the end gives garbage through `!`, not an
 * exception); the detections below check `bytes.length` against the structure first.
 */

export const u8 = (b: Uint8Array, at: number): number => b[at]!;
export const le16 = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
export const be16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
export const le32 = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
export const be32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
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
  for (let i = at; i < at + n; i++) if (!ok(b[i]!)) return false;
  return true;
}
export const isHexDigit = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
export const isOctalDigit = (c: number): boolean => c >= 0x30 && c <= 0x37;
export const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** A name from a header, for a message: up to 64 bytes, up to a NUL, non-printables as '.'. */
export function printableName(b: Uint8Array, at: number, n: number): string {
  let out = '';
  for (let i = at; i < Math.min(at + Math.min(n, 64), b.length) && b[i] !== 0; i++) out += b[i]! >= 0x20 && b[i]! < 0x7f ? String.fromCharCode(b[i]!) : '.';
  return out;
}
