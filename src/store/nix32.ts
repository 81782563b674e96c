import { u8At } from '../checked-index.js';

/**
 * Nix's base32 ("nix32"): not RFC 4648. The alphabet omits e, o, t, u, and the bytes are read
 * from the end, so the first character of the text holds the most significant bits of the last byte.
 */
export const NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';

/** Digit of each ASCII character; 0xff for one outside the alphabet. */
const DECODE = new Uint8Array(128).fill(0xff);
for (let i = 0; i < NIX32_ALPHABET.length; i++) DECODE[NIX32_ALPHABET.charCodeAt(i)] = i;

/** True for the 32 characters of the nix32 alphabet (as a char code). */
export function isNix32Char(code: number): boolean {
  return code < 128 && u8At(DECODE, code) !== 0xff;
}

/** Length of the nix32 text for `byteLength` bytes: floor((n*8-1)/5)+1. */
export function nix32Length(byteLength: number): number {
  return byteLength === 0 ? 0 : Math.floor((byteLength * 8 - 1) / 5) + 1;
}

export function encodeNix32(bytes: Uint8Array): string {
  const len = nix32Length(bytes.length);
  let out = '';
  for (let k = len - 1; k >= 0; k--) {
    const bit = k * 5;
    const i = bit >> 3;
    const j = bit & 7;
    const lo = u8At(bytes, i) >> j;
    const hi = i + 1 < bytes.length ? u8At(bytes, i + 1) << (8 - j) : 0;
    out += NIX32_ALPHABET[(lo | hi) & 31];
  }
  return out;
}

/** Decodes nix32 text into `byteLength` bytes; returns undefined when the text is not valid for that length. */
export function decodeNix32(text: string, byteLength: number): Uint8Array | undefined {
  if (text.length !== nix32Length(byteLength)) return undefined;
  const out = new Uint8Array(byteLength);
  for (let n = 0; n < text.length; n++) {
    const c = text.charCodeAt(text.length - n - 1);
    const digit = c < 128 ? u8At(DECODE, c) : 0xff;
    if (digit === 0xff) return undefined;
    const bit = n * 5;
    const i = bit >> 3;
    const j = bit & 7;
    out[i] = u8At(out, i) | ((digit << j) & 0xff);
    const carry = digit >> (8 - j);
    if (i + 1 < byteLength) out[i + 1] = u8At(out, i + 1) | carry;
    else if (carry !== 0) return undefined; // bits beyond the last byte must be zero
  }
  return out;
}
