import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import { test } from 'node:test';
import { DecompressError, crc32, decompress, isSupported, unBcj } from './decompress.js';
import { isBomb, lz4Block, text } from '../../test/support/decompress-cases.js';

test('gzip (zlib): round trip, cap, corrupt', () => {
  const z = deflateSync(text);
  assert.deepEqual(Buffer.from(decompress('gzip', z, 8192)), text);
  assert.deepEqual(Buffer.from(decompress('gzip', z, text.length)), text);
  assert.throws(() => decompress('gzip', z, text.length - 1), isBomb('gzip'));
  // A bomb: 32 MiB of zeros in ~32 KiB, capped at a block.
  assert.throws(() => decompress('gzip', deflateSync(Buffer.alloc(32 << 20)), 128 * 1024), isBomb('gzip'));
  assert.throws(() => decompress('gzip', z.subarray(0, 20), 8192), (e: unknown) => e instanceof DecompressError && /corrupt/.test(e.message));
});

test('crc32 and the BCJ decoders agree with known values', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  // x86: E8 (call) with a relative target becomes absolute when encoded; decoding subtracts.
  const b = Buffer.from([0x90, 0xe8, 0x10, 0x00, 0x00, 0x00, 0x90, 0x90, 0x90, 0x90]);
  unBcj(0x04, b, 0);
  assert.deepEqual([...b.subarray(1, 6)], [0xe8, 0x10 - 6, 0x00, 0x00, 0x00]);
  assert.throws(() => unBcj(0x06, Buffer.alloc(16)), (e: unknown) => e instanceof DecompressError && e.unsupported);
});

test('lz4 (raw block, as squashfs-tools writes it): round trip, cap, corrupt', () => {
  assert.equal(isSupported('lz4'), true);
  const block = lz4Block(text);
  assert.deepEqual(Buffer.from(decompress('lz4', block, 8192)), text);
  assert.deepEqual(Buffer.from(decompress('lz4', block, text.length)), text);
  assert.throws(() => decompress('lz4', block, text.length - 1), isBomb('lz4'));
  assert.throws(() => decompress('lz4', lz4Block(Buffer.alloc(4 << 20)), 128 * 1024), isBomb('lz4'));
  assert.throws(() => decompress('lz4', block.subarray(0, 20), 8192), (e: unknown) => e instanceof DecompressError && /corrupt/.test(e.message));
  assert.throws(() => decompress('lz4', new Uint8Array(0), 8192), (e: unknown) => e instanceof DecompressError && /empty block/.test(e.message));
});

test('lzo (one LZO1X stream): decoded, capped, corrupt data is EFORMAT', () => {
  assert.equal(isSupported('lzo'), true);
  // 17 + 5: a first run of 5 literals; then an M2 match (3 bytes at distance 5); the end marker.
  const stream = Uint8Array.of(17 + 5, ...Buffer.from('hello'), 0x50, 0, 0x11, 0, 0);
  assert.equal(Buffer.from(decompress('lzo', stream, 8192)).toString(), 'hellohel');
  assert.throws(() => decompress('lzo', stream, 7), isBomb('lzo'));
  assert.throws(
    () => decompress('lzo', stream.subarray(0, 8), 8192),
    (e: unknown) => e instanceof DecompressError && e.code === 'EFORMAT' && e.message === 'Cannot decompress lzo data: corrupt data (the input ends early at input offset 8)',
  );
});

