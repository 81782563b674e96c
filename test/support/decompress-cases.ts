/** Inputs and checks shared by the decompressor tests (src/formats/decompress.test.ts and its e2e twin). */
import { createRequire } from 'node:module';
import { DecompressError, type CompressionKind } from '../../src/formats/decompress.js';

/** A raw LZ4 block: lz4-napi's size-prefixed block without its 4-byte prefix. */
export const lz4Block = (input: Uint8Array): Buffer =>
  (createRequire(import.meta.url)('lz4-napi') as { compressSync(b: Uint8Array): Buffer }).compressSync(input).subarray(4);

/** 7000 bytes of repetitive text, like a squashfs metadata block. */
export const text = Buffer.from('squashfs metadata block, repeated. '.repeat(200));

/** The "output would exceed the cap" error of `kind`. */
export function isBomb(kind: CompressionKind): (err: unknown) => boolean {
  return (err: unknown) => err instanceof DecompressError && err.code === 'EFORMAT' && err.kind === kind && /more than \d+ bytes/.test(err.message);
}
