import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeNix32, encodeNix32, isNix32Char, nix32Length } from './nix32.js';
import { seeded } from '../../test/support/property.js';

test('nix32 length follows floor((n*8-1)/5)+1', () => {
  assert.equal(nix32Length(20), 32); // store path hash parts
  assert.equal(nix32Length(32), 52); // sha256
  assert.equal(nix32Length(64), 103); // sha512
});

test('nix32 round-trips any bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 80 }), (bytes) => {
      const text = encodeNix32(bytes);
      assert.equal(text.length, nix32Length(bytes.length));
      for (const c of text) assert.ok(isNix32Char(c.charCodeAt(0)));
      assert.deepEqual(decodeNix32(text, bytes.length), bytes);
    }),
    seeded(),
  );
});

test('nix32 rejects characters outside the alphabet and stray high bits', () => {
  const ok = encodeNix32(new Uint8Array(32).fill(7));
  assert.equal(decodeNix32(ok.replace(/./, 'e'), 32), undefined);
  assert.equal(decodeNix32(ok.slice(1), 32), undefined);
  // 52 chars carry 260 bits; the top 4 bits must be zero for 32 bytes.
  assert.equal(decodeNix32('z' + ok.slice(1), 32), undefined);
});
