/**
 * The shared detection pieces: the byte toolkit against Node's Buffer readers, the head read once
 * per source, and the near-miss policy (the reader claims a broken image of its format so that
 * opening it reports the damage; the sniffer does not call it an image). Each format's valid
 * headers and near misses: src/seal/sniff.test.ts; real tool-made images: test/sniff-e2e.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../errors.js';
import { sniffSource } from '../seal/sniff.js';
import { BufferSource, type ByteSource } from './byte-source.js';
import { be16, be32, be64, latin1, le16, le32, le64, printableName, startsWith, magicBytes } from './bytes.js';
import { HEAD_SIZE, headOf, isImage } from './detection.js';
import { isExecutableHeader } from './executable.js';
import { detectLz4 } from './compressed-stream.js';
import { readerFor } from './image-readers.js';
import { SQUASHFS_MAGIC, detectSquashfs } from './squashfs.js';
import { seeded } from '../../test/support/property.js';

const SEED = 1105;

test('bytes: integers and latin1 read as Buffer reads them', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 8, maxLength: 64 }), fc.nat(), (arr, n) => {
      const b = Buffer.from(arr);
      const at = n % (b.length - 7);
      assert.equal(le16(b, at), b.readUInt16LE(at));
      assert.equal(be16(b, at), b.readUInt16BE(at));
      assert.equal(le32(b, at), b.readUInt32LE(at));
      assert.equal(be32(b, at), b.readUInt32BE(at));
      // 64-bit values as doubles: exact below 2^53.
      assert.equal(le64(b, at), Number(b.readBigUInt64LE(at)));
      assert.equal(be64(b, at), Number(b.readBigUInt64BE(at)));
      assert.equal(latin1(b, at, 8), b.toString('latin1', at, at + 8));
    }),
    seeded({ seed: SEED, numRuns: 500 }),
  );
  assert.equal(startsWith(magicBytes('hsqs'), 0, magicBytes('hsqsx')), false, 'a magic longer than the bytes is no match');
  // A read past the end is a caller's bug: a RangeError, not a value made up from missing bytes.
  assert.throws(() => le32(Buffer.from([1, 2, 3]), 0), RangeError);
  assert.throws(() => be16(Buffer.from([1, 2]), 1), RangeError);
  assert.equal(printableName(Buffer.from('a\x01b\0c'), 0, 5), 'a.b');
  assert.equal(isExecutableHeader(Buffer.from('#!/bin/sh\n')), true);
  assert.equal(isExecutableHeader(Buffer.from('\x7fELF\x02\x01\x01')), true);
  assert.equal(isExecutableHeader(Buffer.from('hsqs')), false);
});

test('detectLz4: a legacy lz4 file too short for its first block size is a near miss', () => {
  // Legacy magic (02 21 4C 18) and 3 bytes of a block size: before the fix, the missing fourth byte
  // was read as 0 and the 7-byte file was called an lz4 legacy frame.
  const legacy = Uint8Array.of(0x02, 0x21, 0x4c, 0x18, 0x10, 0x00, 0x00);
  assert.deepEqual(detectLz4(legacy), { format: 'lz4', offset: 0, nearMiss: 'shorter than an lz4 legacy frame' });
  assert.deepEqual(detectLz4(Uint8Array.of(...legacy, 0x00)), { format: 'lz4', offset: 0, why: 'lz4 legacy frame, first block size valid' });
  // Every prefix of a legacy header: a verdict, never an exception.
  const full = Uint8Array.of(...legacy, 0x00, 0xaa, 0xbb);
  for (let n = 0; n <= full.length; n++) detectLz4(full.subarray(0, n));
});

test('headOf: one read per source, of at most HEAD_SIZE bytes, kept as a copy', () => {
  const bytes = new Uint8Array(3 * HEAD_SIZE).fill(7);
  let reads = 0;
  const src: ByteSource = {
    size: bytes.length,
    read(offset, length) {
      reads++;
      return bytes.subarray(offset, offset + length);
    },
  };
  const head = headOf(src);
  assert.equal(head.length, HEAD_SIZE);
  assert.equal(headOf(src), head);
  assert.equal(reads, 1);
  bytes[0] = 9; // the source's buffer changes (a reused read buffer): the head does not
  assert.equal(headOf(src)[0], 7);
  assert.equal(headOf(new BufferSource(new Uint8Array(100))).length, 100);
});

test('a near miss: the sniffer says "not an image", the reader claims it and reports the damage with its offset', () => {
  // "hsqs" and a superblock of 0xff: a broken squashfs.
  const broken = new Uint8Array(4096).fill(0xff);
  new DataView(broken.buffer).setUint32(0, SQUASHFS_MAGIC, true);
  const verdict = detectSquashfs(broken, broken.length);
  assert.ok(verdict !== undefined && !isImage(verdict) && 'nearMiss' in verdict, 'a near miss');
  assert.equal(verdict.nearMiss, 'not version 4.0');
  const src = new BufferSource(broken);
  assert.equal(sniffSource(src), undefined);
  const reader = readerFor(src);
  assert.equal(reader?.kind, 'squashfs');
  assert.throws(
    () => reader!.open(src, 'broken.squashfs'),
    (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && typeof e.details.offset === 'number' && /^Cannot read broken\.squashfs: /.test(e.message),
  );
  // Random bytes after the magic: never an image for the sniffer, always the squashfs reader's.
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 92, maxLength: 2000 }), (tail) => {
      const b = new Uint8Array(4 + tail.length);
      new DataView(b.buffer).setUint32(0, SQUASHFS_MAGIC, true);
      b.set(tail, 4);
      const s = new BufferSource(b);
      return sniffSource(s) === undefined && readerFor(s)?.kind === 'squashfs';
    }),
    seeded({ seed: SEED, numRuns: 200 }),
  );
});
