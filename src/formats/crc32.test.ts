import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { crc32 } from './crc32.js';
import { seeded } from '../../test/support/property.js';

/** The table-driven CRC-32 nix-seal used before zlib's: the definition, bit by bit. */
function tableCrc32(data: Uint8Array): number {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

test('crc32 gives the standard check values', () => {
  const ascii = (s: string) => new TextEncoder().encode(s);
  assert.equal(crc32(ascii('123456789')), 0xcbf43926); // the CRC catalogue's check value
  assert.equal(crc32(new Uint8Array(0)), 0);
  assert.equal(crc32(ascii('The quick brown fox jumps over the lazy dog')), 0x414fa339);
  assert.equal(crc32(new Uint8Array(32)), 0x190a55ad);
  assert.equal(crc32(new Uint8Array(32).fill(0xff)), 0xff6cab0b);
});

test('crc32 agrees with the table-driven definition on any bytes, and on views into larger buffers', () => {
  const seed = Number(process.env.FC_SEED ?? 0x5eed32);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), fc.nat(16), fc.nat(16), (bytes, pre, post) => {
      const big = new Uint8Array(pre + bytes.length + post).fill(0xaa);
      big.set(bytes, pre);
      const view = big.subarray(pre, pre + bytes.length);
      assert.equal(crc32(view), tableCrc32(bytes));
      assert.equal(crc32(bytes), tableCrc32(bytes));
    }),
    seeded({ seed, numRuns: 500 }),
  );
});
