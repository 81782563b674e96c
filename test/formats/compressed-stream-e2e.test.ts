import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import { requireTools } from '../support/tools.js';
import { treeArbitraries, writeTree } from '../support/random-tree.js';
import { cleanly, nixHashOf, viewNarHash } from '../support/view-tree.js';
import { BufferSource } from '../../src/formats/byte-source.js';
import { DEFAULT_STREAM_LIMITS, makeCompressedStreamReader, compressedStreamReader, streamKind, Xxh32, Xxh64 } from '../../src/formats/compressed-stream.js';
import { prepareDecoders } from '../../src/formats/decompress.js';
import { readWhole } from '../../src/formats/image.js';
import { openImageView, readerFor } from '../../src/formats/image-readers.js';
import { tempDir } from '../support/temp.js';
import { seeded } from '../support/property.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Each compressor's CLI: [kind, file suffix, compress argv (stdin → stdout), decompress argv]. */
const TOOLS: Array<[string, string, string[], string[]]> = [
  ['gzip', 'gz', ['gzip', '-c'], ['gzip', '-dc']],
  ['xz', 'xz', ['xz', '-c'], ['xz', '-dc']],
  ['xz', 'xzb', ['xz', '-c', '-T2', '--block-size=20000'], ['xz', '-dc']], // several blocks in the index
  ['zstd', 'zst', ['zstd', '-q', '-c'], ['zstd', '-q', '-dc']],
  ['bzip2', 'bz2', ['bzip2', '-c'], ['bzip2', '-dc']],
  ['lz4', 'lz4', ['lz4', '-q', '-c'], ['lz4', '-q', '-dc']],
  ['lz4', 'lz4l', ['lz4', '-q', '-l', '-c'], ['lz4', '-q', '-dc']],
  ['lz4', 'lz4x', ['lz4', '-q', '-BX', '-B4', '-c'], ['lz4', '-q', '-dc']], // block checksums, 64 KiB blocks
];

function run(argv: string[], input: Uint8Array): Buffer {
  return execFileSync(argv[0]!, argv.slice(1), { input, maxBuffer: 1 << 28 });
}

test('each CLI compressor: the view holds what the tool decompresses to; a tar inside nests and hashes as nix-hash', (t) => {
  if (!requireTools(t, 'gzip', 'xz', 'zstd', 'bzip2', 'lz4', 'tar', 'nix-hash')) return;
  const dir = tempDir(t);
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const limits = { ...DEFAULT_STREAM_LIMITS, tmpDir: tmp };
  const reader = makeCompressedStreamReader(limits);
  const [tree] = fc.sample(treeArbitraries(200_000).dir, { numRuns: 1, seed: 3 });
  const root = join(dir, 'tree');
  writeTree(root, tree!);
  const tarball = execFileSync('tar', ['--format=pax', '-C', root, '-cf', '-', '.'], { maxBuffer: 1 << 28 });
  const want = nixHashOf(root);
  for (const [kind, suffix, comp, decomp] of TOOLS) {
    const packed = run(comp, tarball);
    // Two members/frames back to back, as `cat a.gz b.gz` (and pigz, zstd -T, lz4 of concatenations) make.
    const twice = Buffer.concat([packed, kind === 'xz' ? Buffer.alloc(8) : Buffer.alloc(0), packed]); // xz: with stream padding
    for (const [what, bytes] of [
      ['one', packed],
      ['two', twice],
    ] as const) {
      const src = new BufferSource(bytes);
      assert.equal(streamKind(src), kind, suffix);
      const view = reader.open(src, `x.${suffix}`);
      assert.equal(readdirSync(tmp).length, 0, 'the temporary file is unlinked once open');
      const [, entry] = [...view.entries()];
      assert.deepEqual(entry, { path: `(${kind} contents)`, type: 'file', size: run(decomp, bytes).length, executable: false });
      assert.equal(sha(readWhole(view, entry!)), sha(run(decomp, bytes)), `${suffix} ${what}`);
      assert.deepEqual(view.locate(5), { path: entry!.path, what: 'compressed data' });
      if (what === 'one') {
        const inner = openImageView(view.fileSource(entry!)!, entry!.path)!;
        assert.equal(inner.kind, 'tar');
        assert.equal(viewNarHash(inner), want, suffix);
      }
    }
    t.diagnostic(`${suffix}: ${packed.length} → ${tarball.length} bytes`);
  }
});

test('the registry opens a .gz as a compressed stream; a cpio.zst nests', (t) => {
  if (!requireTools(t, 'zstd', 'cpio')) return;
  const dir = tempDir(t);
  const root = join(dir, 'r');
  mkdirSync(root);
  writeFileSync(join(root, 'init'), '#!/bin/sh\n', { mode: 0o755 });
  const cpio = execFileSync('sh', ['-c', 'cd "$1" && find . | cpio -o -H newc --quiet', 'sh', root]);
  const zst = run(['zstd', '-q', '-c'], cpio);
  const src = new BufferSource(zst);
  assert.equal(readerFor(src), compressedStreamReader);
  const outer = openImageView(src, 'initrd.zst')!;
  const [, e] = [...outer.entries()];
  const inner = openImageView(outer.fileSource(e!)!, 'initrd')!;
  assert.equal(inner.kind, 'cpio');
  assert.equal(viewNarHash(inner), nixHashOf(root));
});

test('corrupt, truncated and oversized streams are EFORMAT; nothing else escapes on hostile input', (t) => {
  if (!requireTools(t, 'gzip', 'xz', 'zstd', 'bzip2', 'lz4')) return;
  const dir = tempDir(t);
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const reader = makeCompressedStreamReader({ ...DEFAULT_STREAM_LIMITS, tmpDir: tmp, maxOutput: 1 << 20 });
  const data = Buffer.concat([Buffer.from('x'.repeat(50_000)), createHash('sha512').update('seed').digest()]);
  const isFormat = (name: string) => (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && e.message.startsWith(`Cannot read ${name}: `) && !e.message.includes('\n');
  for (const [, suffix, comp] of TOOLS) {
    const packed = run(comp, data);
    // A flipped byte in the middle (the data or its check) and the stream cut short.
    const bad = Buffer.from(packed);
    bad.writeUInt8(bad.readUInt8(bad.length - 6) ^ 0x55, bad.length - 6);
    // Checked: gzip's CRC-32, xz's check, bzip2's block CRC, lz4's xxHash32 content and block
    // checksums, zstd's xxHash64 (low 32 bits). Legacy lz4 frames have none.
    if (['gz', 'xz', 'xzb', 'zst', 'bz2', 'lz4', 'lz4x'].includes(suffix)) assert.throws(() => reader.open(new BufferSource(bad), `c.${suffix}`), isFormat(`c.${suffix}`), suffix);
    assert.throws(() => reader.open(new BufferSource(packed.subarray(0, packed.length - 9)), `c.${suffix}`), isFormat(`c.${suffix}`), `${suffix} truncated`);
    // A bomb: 4 MiB of zeros against a 1 MiB budget.
    assert.throws(
      () => reader.open(new BufferSource(run(comp, Buffer.alloc(4 << 20))), `z.${suffix}`),
      (e: unknown) => e instanceof NixSealError && /decompresses to more than 1048576 bytes/.test(e.message),
      `${suffix} bomb`,
    );
    const step = Math.max(1, Math.floor(packed.length / 150));
    for (let n = 1; n < packed.length; n += step) cleanly(reader, packed.subarray(0, n));
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(packed.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (edits) => {
        const b = Buffer.from(packed);
        for (const [at, v] of edits) b[at] = v;
        cleanly(reader, b);
      }),
      seeded({ numRuns: 40 }),
    );
  }
  assert.equal(readdirSync(tmp).length, 0, 'no temporary file is left behind, even after failures');
});

test('random bytes behind each magic number fail only with NixSealError', (t) => {
  const dir = tempDir(t);
  const reader = makeCompressedStreamReader({ ...DEFAULT_STREAM_LIMITS, tmpDir: dir, maxOutput: 1 << 20 });
  const magics = [
    [0x1f, 0x8b, 0x08],
    [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00],
    [0x28, 0xb5, 0x2f, 0xfd],
    [0x04, 0x22, 0x4d, 0x18],
    [0x02, 0x21, 0x4c, 0x18],
    [0x42, 0x5a, 0x68, 0x39, 0x31, 0x41, 0x59, 0x26, 0x53, 0x59],
  ];
  fc.assert(
    fc.property(fc.constantFrom(...magics), fc.uint8Array({ maxLength: 2048 }), (magic, tail) => {
      const b = Buffer.concat([Buffer.from(magic), tail]);
      assert.equal(reader.detect(new BufferSource(b)), true);
      cleanly(reader, b);
    }),
    seeded({ numRuns: 300 }),
  );
  assert.equal(readdirSync(dir).length, 0);
});

test('xxHash32 (lz4 checksums): reference vectors, any chunking; a flipped checksum byte is caught', (t) => {
  assert.equal(new Xxh32().digest(), 0x02cc5d05);
  assert.equal(new Xxh32().update(Buffer.from('abc')).digest(), 0x32d153ff);
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(200), (data, cut) => {
      const c = Math.min(cut, data.length);
      assert.equal(new Xxh32().update(data.subarray(0, c)).update(data.subarray(c)).digest(), new Xxh32().update(data).digest());
    }),
    seeded({ numRuns: 200 }),
  );
  if (!requireTools(t, 'lz4')) return;
  const dir = tempDir(t);
  const reader = makeCompressedStreamReader({ ...DEFAULT_STREAM_LIMITS, tmpDir: dir });
  const data = Buffer.from('nix-seal '.repeat(20_000));
  const framed = run(['lz4', '-q', '-c'], data);
  framed.writeUInt8(framed.readUInt8(framed.length - 1) ^ 1, framed.length - 1);
  assert.throws(() => reader.open(new BufferSource(framed), 'f.lz4'), /^NixSealError: Cannot read f\.lz4: the lz4 content checksum does not match at offset \d+$/);
  const blocks = run(['lz4', '-q', '-BX', '--no-frame-crc', '-c'], data);
  // The first block's checksum follows its data: header 7 bytes, size word 4, data.
  const first = blocks.readUInt32LE(7) & 0x7fffffff;
  const at = 7 + 4 + first;
  blocks.writeUInt8(blocks.readUInt8(at) ^ 1, at);
  assert.throws(() => reader.open(new BufferSource(blocks), 'b.lz4'), (e: unknown) => e instanceof NixSealError && e.details.offset === at && /an lz4 block checksum does not match/.test(e.message));
});

test('xxHash64 (zstd content checksums): reference vectors, any chunking; a flipped checksum byte is caught', (t) => {
  const hex = (d: [number, number]): string => d.map((x) => x.toString(16).padStart(8, '0')).join('');
  assert.equal(hex(new Xxh64().digest()), 'ef46db3751d8e999');
  assert.equal(hex(new Xxh64().update(Buffer.from('abc')).digest()), '44bc2cf5ad770999');
  assert.equal(hex(new Xxh64().update(Buffer.from('Nobody inspects the spammish repetition')).digest()), 'fbcea83c8a378bf1');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(300), (data, cut) => {
      const c = Math.min(cut, data.length);
      assert.deepEqual(new Xxh64().update(data.subarray(0, c)).update(data.subarray(c)).digest(), new Xxh64().update(data).digest());
    }),
    seeded({ numRuns: 200 }),
  );
  if (!requireTools(t, 'zstd')) return;
  const dir = tempDir(t);
  const reader = makeCompressedStreamReader({ ...DEFAULT_STREAM_LIMITS, tmpDir: dir });
  const data = Buffer.from('nix-seal '.repeat(20_000));
  const framed = run(['zstd', '-q', '-c'], data);
  assert.equal(readWhole(reader.open(new BufferSource(framed), 'f.zst'), { path: '(zstd contents)', type: 'file', size: data.length }).length, data.length);
  framed.writeUInt8(framed.readUInt8(framed.length - 1) ^ 1, framed.length - 1);
  assert.throws(() => reader.open(new BufferSource(framed), 'f.zst'), /^NixSealError: Cannot read f\.zst: a zstd frame content checksum does not match at offset \d+$/);
});

// Last in this file: from here on zstd streams go through libzstd (WebAssembly), not fzstd.
test('zstd streams through libzstd once prepareDecoders() has run: same contents; corrupt, truncated and oversized frames are EFORMAT', async (t) => {
  if (!requireTools(t, 'zstd')) return;
  await prepareDecoders();
  const dir = tempDir(t);
  const tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const reader = makeCompressedStreamReader({ ...DEFAULT_STREAM_LIMITS, tmpDir: tmp, maxOutput: 4 << 20 });
  const isFormat = (e: unknown): boolean => e instanceof NixSealError && e.code === 'EFORMAT' && e.message.startsWith('Cannot read c.zst: ') && !e.message.includes('\n');
  // Varied data over several zstd blocks, one frame with a checksum, one without, both back to back, and a skippable frame between.
  const data = Buffer.concat([readFileSync(process.execPath).subarray(1 << 20, (1 << 20) + (700 << 10)), Buffer.from('nix-seal '.repeat(40_000))]);
  const summed = run(['zstd', '-q', '-c', '--check'], data);
  const plain = run(['zstd', '-q', '-c', '--no-check', '-19'], data);
  const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0]), Buffer.from('abc')]);
  for (const bytes of [summed, plain, Buffer.concat([summed, skippable, plain])]) {
    const view = reader.open(new BufferSource(bytes), 'c.zst');
    const [, entry] = [...view.entries()];
    assert.ok(Buffer.from(readWhole(view, entry!)).equals(run(['zstd', '-q', '-dc'], bytes)));
  }
  const flipped = Buffer.from(summed);
  flipped[flipped.length - 1] = flipped[flipped.length - 1]! ^ 1; // the checksum
  assert.throws(() => reader.open(new BufferSource(flipped), 'c.zst'), (e: unknown) => isFormat(e) && /libzstd/.test((e as Error).message));
  const inData = Buffer.from(plain);
  inData[inData.length >> 1] = inData[inData.length >> 1]! ^ 0x55;
  // A flipped byte inside compressed data without a checksum: refused, or decoded to the declared size.
  try {
    reader.open(new BufferSource(inData), 'c.zst');
  } catch (e) {
    assert.ok(isFormat(e), String(e));
  }
  assert.throws(() => reader.open(new BufferSource(summed.subarray(0, summed.length - 9)), 'c.zst'), isFormat);
  assert.throws(
    () => reader.open(new BufferSource(run(['zstd', '-q', '-c'], Buffer.alloc(8 << 20))), 'c.zst'),
    (e: unknown) => e instanceof NixSealError && /decompresses to more than 4194304 bytes/.test(e.message),
  );
  // Hostile edits end in contents or a NixSealError, never a hang or another exception.
  const small = run(['zstd', '-q', '-c', '--check'], data.subarray(0, 200_000));
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(small.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), (edits) => {
      const b = Buffer.from(small);
      for (const [at, v] of edits) b[at] = v;
      cleanly(reader, b);
    }),
    seeded({ numRuns: 150 }),
  );
  for (let n = 1; n < small.length; n += Math.max(1, Math.floor(small.length / 100))) cleanly(reader, small.subarray(0, n));
  assert.equal(readdirSync(tmp).length, 0, 'no temporary file is left behind');
});
