/** The decompressors against what the real zstd and xz write (mksquashfs' libraries, from the command line). */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { test } from 'node:test';
import fc from 'fast-check';
import { DecompressError, decompress, isSupported, prepareDecoders, zstdDecoder, type CompressionKind } from '../../src/formats/decompress.js';
import { requireThat, requireTools } from '../support/tools.js';
import { seeded } from '../support/property.js';
import { isBomb, lz4Block, text } from '../support/decompress-cases.js';

/** @napi-rs/lzma ships a binary for every platform the package supports: not loading is a failure in CI. */
const LZMA_MISSING = '@napi-rs/lzma did not load (no binary for this platform?)';

/** Compresses with a command-line tool as mksquashfs' libraries would (stdin to stdout). */
function compressWith(cmd: string, args: string[], input: Uint8Array): Buffer {
  return execFileSync(cmd, args, { input, maxBuffer: 1 << 28 });
}

test('zstd: round trip, cap, frames without a size, several frames, with every decoder this Node has', async (t) => {
  if (!requireTools(t, 'zstd')) return;
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const hasNodeZstd = major > 22 || (major === 22 && minor >= 15);
  // Node 20: fzstd until prepareDecoders() has loaded libzstd as WebAssembly, then zstddec.
  const expected = hasNodeZstd ? ['node:zlib'] : ['fzstd', 'zstddec'];
  for (const decoder of expected) {
    if (decoder === 'zstddec') await prepareDecoders();
    assert.equal(zstdDecoder(), decoder);
    zstdCases(decoder);
  }
});

function zstdCases(decoder: string): void {
  // --stream-size: zstd then writes the content size in the frame header, as mksquashfs' frames have it.
  const z = compressWith('zstd', ['-q', '-c', '-19', `--stream-size=${text.length}`], text);
  assert.deepEqual(Buffer.from(decompress('zstd', z, 8192)), text);
  assert.throws(() => decompress('zstd', z, 100), isBomb('zstd'));
  const bomb = compressWith('zstd', ['-q', '-c', '-19', `--stream-size=${32 << 20}`], Buffer.alloc(32 << 20));
  assert.throws(() => decompress('zstd', bomb, 1 << 20), isBomb('zstd'));
  const noSize = compressWith('zstd', ['-q', '-c', '--no-content-size'], Buffer.alloc(32 << 20));
  assert.throws(() => decompress('zstd', noSize, 1 << 20), /does not declare its content size/);
  assert.throws(() => decompress('zstd', Buffer.concat([z, z]), 1 << 20), /data after the frame/);
  assert.throws(() => decompress('zstd', z.subarray(0, z.length - 3), 8192), (e: unknown) => e instanceof DecompressError);
  // Blocks of 128 KiB of varied data, as a squashfs data block holds them.
  const code = readFileSync(process.execPath).subarray(4 << 20, (4 << 20) + (128 << 10));
  const block = compressWith('zstd', ['-q', '-c', '-15', `--stream-size=${code.length}`], code);
  assert.ok(Buffer.from(decompress('zstd', block, 128 << 10)).equals(code), `${decoder}: 128 KiB block`);
  // A frame that declares less than its blocks hold: never more output than declared. libzstd
  // refuses it; fzstd stops writing at the declared size (it cannot tell).
  const big = compressWith('zstd', ['-q', '-c', '-19', `--stream-size=${text.length}`], text);
  const liar = Buffer.from(big);
  const fhd = liar[4]!;
  const fcsPos = 5 + ((fhd >> 5) & 1 ? 0 : 1) + [0, 1, 2, 4][fhd & 3]!;
  const fcsBytes = (fhd >> 6) === 0 ? 1 : 1 << (fhd >> 6);
  assert.equal(fcsBytes, 2, 'zstd wrote a 2-byte content size');
  liar.writeUInt16LE(liar.readUInt16LE(fcsPos) - 100, fcsPos);
  const declared = text.length - 100;
  if (decoder === 'fzstd') {
    assert.deepEqual(Buffer.from(decompress('zstd', liar, 8192)), text.subarray(0, declared));
  } else {
    assert.throws(() => decompress('zstd', liar, 8192), (e: unknown) => e instanceof DecompressError && /more than the 6900 bytes it declares/.test(e.message));
    // libzstd checks the frame's checksum: one flipped byte of data is an error, not wrong bytes.
    const summed = Buffer.from(compressWith('zstd', ['-q', '-c', '--check', `--stream-size=${code.length}`], code));
    summed[summed.length >> 1] = summed[summed.length >> 1]! ^ 0x55;
    assert.throws(() => decompress('zstd', summed, 128 << 10), (e: unknown) => e instanceof DecompressError);
  }
}

test('xz: round trip, cap, BCJ filters (as mksquashfs -Xbcj writes them)', (t) => {
  if (!requireTools(t, 'xz') || !requireThat(t, isSupported('xz'), LZMA_MISSING)) return;
  const z = compressWith('xz', ['-c', '--check=crc32'], text);
  assert.deepEqual(Buffer.from(decompress('xz', z, 8192)), text);
  assert.throws(() => decompress('xz', z, 100), isBomb('xz'));
  const bomb = compressWith('xz', ['-c', '-1', '--check=crc32'], Buffer.alloc(32 << 20));
  assert.throws(() => decompress('xz', bomb, 1 << 20), isBomb('xz'));
  // BCJ filters: machine code (this very node binary: x86-64 or arm64) and bytes that make the
  // filters fire everywhere; every filter mksquashfs offers except ia64.
  const code = readFileSync(process.execPath).subarray(1 << 20, (1 << 20) + (512 << 10));
  const dense = Buffer.from(Array.from({ length: 1 << 16 }, (_, i) => [0xe8, 0x00, 0xeb, 0xf0, 0xf8, 0x48, 0x40, 0xff][i % 8]! ^ (i % 13 === 0 ? 1 : 0)));
  for (const filter of ['--x86', '--arm', '--armthumb', '--powerpc', '--sparc', '--x86=start=4096']) {
    for (const input of [code, dense]) {
      const bcj = compressWith('xz', ['-c', filter, '--lzma2=preset=1', '--check=crc32'], input);
      assert.ok(Buffer.from(decompress('xz', bcj, input.length)).equals(input), `${filter} round trip`);
    }
    const bcj = compressWith('xz', ['-c', filter, '--lzma2', '--check=crc32'], text);
    assert.throws(() => decompress('xz', bcj, 100), isBomb('xz'));
    const bad = Buffer.from(bcj);
    bad[bad.length - 40] = bad[bad.length - 40]! ^ 0x55; // inside the data: LZMA2 error or a CRC32 mismatch
    assert.throws(() => decompress('xz', bad, 8192), (e: unknown) => e instanceof DecompressError);
  }
  const delta = compressWith('xz', ['-c', '--delta=dist=4', '--lzma2', '--check=crc32'], text);
  assert.throws(() => decompress('xz', delta, 8192), (e: unknown) => e instanceof DecompressError && e.unsupported && /unsupported filter chain \(filter 0x3/.test(e.message));
  // Two concatenated streams: refused.
  assert.throws(() => decompress('xz', Buffer.concat([z, z]), 1 << 20), (e: unknown) => e instanceof DecompressError);
});

test('lzma (LZMA alone): round trip, cap from the header, unknown size refused', (t) => {
  if (!requireTools(t, 'xz') || !requireThat(t, isSupported('lzma'), LZMA_MISSING)) return;
  const z = Buffer.from(compressWith('xz', ['-c', '--format=lzma'], text)); // size unknown (all ones)
  assert.throws(() => decompress('lzma', z, 8192), /does not give the unpacked size/);
  z.writeBigUInt64LE(BigInt(text.length), 5);
  assert.deepEqual(Buffer.from(decompress('lzma', z, 8192)), text);
  assert.throws(() => decompress('lzma', z, 100), isBomb('lzma'));
  // A header that lies (says 8 KiB of a 32 MiB stream): lzma-rs stops near it, and it is an error.
  const bomb = Buffer.from(compressWith('xz', ['-c', '-1', '--format=lzma'], Buffer.alloc(32 << 20)));
  bomb.writeBigUInt64LE(8192n, 5);
  assert.throws(() => decompress('lzma', bomb, 8192), (e: unknown) => e instanceof DecompressError);
});

test('fuzz: random and mutated input never escapes as anything but DecompressError', (t) => {
  const seeds: [CompressionKind, Buffer][] = [['gzip', deflateSync(text)], ['lz4', lz4Block(text)]];
  if (requireTools(t, 'zstd', 'xz')) {
    seeds.push(['zstd', compressWith('zstd', ['-q', '-c', `--stream-size=${text.length}`], text)]);
    if (requireThat(t, isSupported('xz'), LZMA_MISSING)) {
      seeds.push(['xz', compressWith('xz', ['-c', '--check=crc32'], text)]);
      seeds.push(['xz', compressWith('xz', ['-c', '--x86', '--lzma2', '--check=crc32'], text)]);
    }
    if (requireThat(t, isSupported('lzma'), LZMA_MISSING)) {
      const l = Buffer.from(compressWith('xz', ['-c', '--format=lzma'], text));
      l.writeBigUInt64LE(BigInt(text.length), 5);
      seeds.push(['lzma', l]);
    }
  }
  for (const [kind, seed] of seeds) {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat({ max: seed.length - 1 }), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat({ max: seed.length }), (edits, cut) => {
        const b = Buffer.from(seed.subarray(0, cut === 0 ? seed.length : cut));
        for (const [p, v] of edits) if (p < b.length) b[p] = v;
        try {
          const out = decompress(kind, b, 8192);
          assert.ok(out.length <= 8192);
        } catch (err) {
          if (!(err instanceof DecompressError)) throw err;
        }
      }),
      seeded({ numRuns: 300, seed: 42 }),
    );
  }
});
