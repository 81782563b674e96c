import { test } from 'node:test';
import assert from 'node:assert/strict';
import { f64At, i32At, itemAt, u16At, u32At, u64At, u8At } from './checked-index.js';

test('checked reads return the element', () => {
  assert.equal(u8At(new Uint8Array([1, 255]), 1), 255);
  assert.equal(u8At(Buffer.from([7]), 0), 7);
  assert.equal(u16At(new Uint16Array([0, 65535]), 1), 65535);
  assert.equal(u32At(new Uint32Array([0, 0xffffffff]), 1), 0xffffffff);
  assert.equal(i32At(new Int32Array([-1]), 0), -1);
  assert.equal(u64At(new BigUint64Array([0n, 2n ** 64n - 1n]), 1), 2n ** 64n - 1n);
  assert.ok(Number.isNaN(f64At(new Float64Array([NaN]), 0)), 'a NaN element is an element');
  assert.equal(itemAt(['a', 'b'], 1), 'b');
  assert.equal(itemAt([undefined, 1], 0), undefined, 'an undefined element of a T[] that allows it is an element');
});

test('an index outside the array is a RangeError naming it, for every accessor', () => {
  const cases: [string, () => unknown][] = [
    ['u8At', () => u8At(new Uint8Array(2), 2)],
    ['u16At', () => u16At(new Uint16Array(2), -1)],
    ['u32At', () => u32At(new Uint32Array(2), 1.5)],
    ['i32At', () => i32At(new Int32Array(0), 0)],
    ['u64At', () => u64At(new BigUint64Array(1), 1)],
    ['f64At', () => f64At(new Float64Array(2), NaN)],
    ['itemAt', () => itemAt(['a'], 1)],
  ];
  for (const [name, f] of cases) assert.throws(f, (e: unknown) => e instanceof RangeError && /^index .* is outside an array of \d+$/.test(e.message), name);
});
