import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import { fuzzCorpus, replayCorpus } from '../support/fuzz-corpus.js';
import { requireTools } from '../support/tools.js';
import { ENCODERS, transcode } from '../support/erofs-transcode.js';
import { nixHashOf, viewTree, writeSampleTree } from '../support/view-tree.js';
import { bytesSource } from '../../src/formats/byte-source.js';
import { EROFS_SUPERBLOCK_OFFSET, SB, erofsReader, openErofs } from '../../src/formats/erofs.js';
import { readWhole, type ImageView } from '../../src/formats/image.js';
import { readerFor } from '../../src/formats/image-readers.js';
import { narHashOfTree } from '../../src/formats/nar.js';
import { tempDir } from '../support/temp.js';
import { seeded } from '../support/property.js';

/** mkfs.erofs 1.5 (Debian 12) fails on a 255-byte name ("Could not format the device"); 200 bytes work. */
const SAMPLE = { longNameLength: 200 };

function mkerofs(dir: string, tree: string, ...args: string[]): { img: string; bytes: Buffer } {
  const img = join(dir, `erofs${args.join('')}.img`);
  execFileSync('mkfs.erofs', ['--quiet', ...args, img, tree], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { img, bytes: readFileSync(img) };
}

function listDisk(root: string, rel = '', out = new Map<string, string>()): Map<string, string> {
  const p = join(root, rel);
  const st = lstatSync(p);
  if (st.isSymbolicLink()) out.set(rel, `symlink ${readlinkSync(p)}`);
  else if (st.isDirectory()) {
    out.set(rel, 'dir');
    for (const n of readdirSync(p)) listDisk(root, rel === '' ? n : `${rel}/${n}`, out);
  } else out.set(rel, `file ${st.size} ${(st.mode & 0o100) !== 0}`);
  return out;
}

function listView(view: ImageView): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of view.entries()) out.set(e.path, e.type === 'symlink' ? `symlink ${e.target}` : e.type === 'dir' ? 'dir' : `file ${e.size} ${e.executable}`);
  return out;
}

// What each variant exercises: [inode size, data layout] pairs that must occur (0 plain, 2 inline, 4 chunks).
const VARIANTS: { args: string[]; has: string[] }[] = [
  { args: [], has: ['64/2', '64/0'] }, // extended inodes (mtimes differ from the build time)
  { args: ['-T0'], has: ['32/2', '32/0'] }, // one timestamp: compact inodes
  { args: ['--chunksize=4096'], has: ['64/4'] },
  { args: ['-E', 'noinline_data'], has: ['64/0'] },
];

for (const { args, has } of VARIANTS) {
  test(`reads an image made by mkfs.erofs ${args.join(' ')}: listing equals fsck.erofs --extract, NAR hash equals nix-hash`, (t) => {
    if (!requireTools(t, 'mkfs.erofs', 'fsck.erofs', 'nix-hash')) return;
    const dir = tempDir(t);
    const tree = join(dir, 'tree');
    writeSampleTree(join(tree, 't'), SAMPLE);
    const { img, bytes } = mkerofs(dir, tree, ...args);
    assert.equal(readerFor(bytesSource(bytes)), erofsReader);
    const fs = openErofs(bytesSource(bytes), 'e.img');
    const kinds = new Set(fs.entries().map((e) => { const i = fs.inode(e.nid, 0); return `${i.inodeSize}/${i.layout}`; }));
    for (const k of has) assert.ok(kinds.has(k), `${k} in ${[...kinds].join(' ')}`);
    const view = erofsReader.open(bytesSource(bytes), 'e.img');
    const out = join(dir, 'out');
    execFileSync('fsck.erofs', [`--extract=${out}`, img], { stdio: 'ignore' });
    assert.deepEqual(listView(view), listDisk(out));
    const expected = 'sha256:' + execFileSync('nix-hash', ['--type', 'sha256', '--base32', join(tree, 't')], { encoding: 'utf8' }).trim();
    assert.equal(narHashOfTree(viewTree(view), 't', 'e.img:t').narHash, expected);
    const entries = [...view.entries()];
    const big = entries.find((e) => e.path === 't/big.bin')!;
    const whole = readFileSync(join(tree, 't/big.bin'));
    const fsrc = view.fileSource(big)!;
    for (const [o, n] of [[0, 10], [69_990, 40], [1_499_000, 8000], [whole.length - 5, 5]] as const) {
      assert.deepEqual(Buffer.from(fsrc.read(o, n)), whole.subarray(o, o + n), `${o}+${n}`);
    }
    const at = bytes.indexOf(whole.subarray(1_500_100, 1_500_132));
    assert.ok(at > 0);
    assert.deepEqual(view.locate(at), { path: 't/big.bin', what: 'data of t/big.bin', offsetInFile: 1_500_100 });
    // A small file whose tail is inline (or in a block): its bytes are located in it.
    const run = readFileSync(join(tree, 't/run.sh'));
    const rat = bytes.indexOf(run);
    assert.ok(rat > 0);
    assert.equal(view.locate(rat + 2).path, 't/run.sh');
    assert.equal(view.locate(EROFS_SUPERBLOCK_OFFSET + 4).what, 'EROFS superblock');
  });
}

// Compressed images: compact (default) and full (legacy-compress) lcluster indexes, big pclusters (-C).
for (const args of [['-zlz4'], ['-zlz4hc'], ['-zlz4', '-E', 'legacy-compress'], ['-zlz4hc', '-C', '16384'], ['-zlz4hc', '-E', 'ztailpacking'], ['-zlz4', '-E', 'legacy-compress,ztailpacking']]) {
  test(`reads an image made by mkfs.erofs ${args.join(' ')}: listing equals fsck.erofs --extract, NAR hash equals nix-hash`, (t) => {
    if (!requireTools(t, 'mkfs.erofs', 'fsck.erofs', 'nix-hash')) return;
    const dir = tempDir(t);
    const tree = join(dir, 'tree');
    writeSampleTree(join(tree, 't'), { ...SAMPLE, seed: 11 });
    const { img, bytes } = mkerofs(dir, tree, ...args);
    const fs = openErofs(bytesSource(bytes), 'z.img');
    const layouts = new Set(fs.entries().map((e) => fs.inode(e.nid, 0).layout));
    const legacy = args.some((a) => a.includes('legacy-compress'));
    assert.ok(layouts.has(legacy ? 1 : 3), [...layouts].join());
    if (args.some((a) => a.includes('ztailpacking'))) {
      // Some compressed inode's map header advises an inline (tail-packed) pcluster.
      const advised = fs.entries().some((e) => {
        const i = fs.inode(e.nid, 0);
        if (i.layout !== 1 && i.layout !== 3) return false;
        return (bytes.readUInt16LE(Math.ceil((i.offset + i.inodeSize + i.xattrSize) / 8) * 8 + 4) & 0x8) !== 0;
      });
      assert.ok(advised, 'a tail-packed inode');
    }
    const view = erofsReader.open(bytesSource(bytes), 'z.img');
    const out = join(dir, 'out');
    execFileSync('fsck.erofs', [`--extract=${out}`, img], { stdio: 'ignore' });
    assert.deepEqual(listView(view), listDisk(out));
    const expected = 'sha256:' + execFileSync('nix-hash', ['--type', 'sha256', '--base32', join(tree, 't')], { encoding: 'utf8' }).trim();
    assert.equal(narHashOfTree(viewTree(view), 't', 'z.img:t').narHash, expected);
    const big = [...view.entries()].find((e) => e.path === 't/big.bin')!;
    assert.equal(view.fileSource(big), undefined);
    const marker = readFileSync(join(tree, 't/big.bin')).subarray(1_500_100, 1_500_132);
    const at = bytes.indexOf(marker);
    // The noise does not compress: lz4 stores it as literals, so the bytes are in the image.
    if (at > 0) assert.deepEqual(view.locate(at), { path: 't/big.bin', what: 'compressed data of t/big.bin' });
  });
}

test('near misses: no magic, a bad block size, a truncated image', (t) => {
  if (!requireTools(t, 'mkfs.erofs')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  writeSampleTree(join(tree, 't'), { ...SAMPLE, seed: 12 });
  const { bytes } = mkerofs(dir, tree);
  const noMagic = Buffer.from(bytes);
  noMagic[EROFS_SUPERBLOCK_OFFSET] = noMagic[EROFS_SUPERBLOCK_OFFSET]! ^ 1;
  assert.equal(erofsReader.detect(bytesSource(noMagic)), false);
  const bad = Buffer.from(bytes);
  bad[EROFS_SUPERBLOCK_OFFSET + SB.blkszbits] = 20;
  assert.equal(erofsReader.detect(bytesSource(bad)), false);
  assert.throws(() => erofsReader.open(bytesSource(bad), 'b.img'), (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && e.details.offset === EROFS_SUPERBLOCK_OFFSET + SB.blkszbits);
  // An algorithm nix-seal cannot decode (the header's nibble set to lzma): the image opens and
  // lists; reading the file is EFORMAT naming the algorithm.
  const z = mkerofs(dir, tree, '-zlz4').bytes;
  const zfs = openErofs(bytesSource(z), 'z.img');
  const big = zfs.entry('t/big.bin')!;
  const ino = zfs.inode(big.nid, 0);
  assert.equal(ino.layout, 3, 'big.bin is compressed with compact indexes');
  const hdr = Math.ceil((ino.offset + ino.inodeSize + ino.xattrSize) / 8) * 8;
  assert.equal(z.readUInt16LE(hdr + 4) & 1, 1, 'and 2-byte compact packs');
  const unknown = Buffer.from(z);
  unknown[hdr + 6] = 0x44;
  const lv = erofsReader.open(bytesSource(unknown), 'l.img');
  const lbig = [...lv.entries()].find((e) => e.path === 't/big.bin')!;
  assert.throws(
    () => readWhole(lv, lbig),
    (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && /is compressed with algorithm 4, which nix-seal cannot decode at offset \d+$/.test(e.message),
  );
  // lz4 data labelled lzma: the MicroLZMA decoder refuses it with the pcluster's offset.
  const lzma = Buffer.from(z);
  lzma[hdr + 6] = 0x11;
  const mv = erofsReader.open(bytesSource(lzma), 'm.img');
  assert.throws(
    () => readWhole(mv, [...mv.entries()].find((e) => e.path === 't/big.bin')!),
    (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && /'s lzma pcluster does not decode \(.*\) at offset \d+$/.test(e.message),
  );
  // Cut in the middle: some data or metadata is past the end.
  assert.throws(
    () => {
      const v = erofsReader.open(bytesSource(bytes.subarray(0, bytes.length >> 1)), 'cut.img');
      for (const e of v.entries()) if (e.type === 'file') readWhole(v, e);
    },
    (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && /past the end of the image at offset \d+$/.test(e.message),
  );
});

test('property: mutated EROFS images fail only with NixSealError and never hang', (t) => {
  if (!requireTools(t, 'mkfs.erofs')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  writeSampleTree(join(tree, 't'), { ...SAMPLE, seed: 13 });
  for (const args of [[], ['--chunksize=4096'], ['-zlz4hc', '-C', '16384', '-E', 'ztailpacking']]) {
    const { bytes } = mkerofs(dir, tree, ...args);
    const bs = 512;
    const hot: number[] = [];
    for (let b = 2; b * bs < bytes.length; b++) if (bytes.subarray(b * bs, b * bs + bs).some((x) => x !== 0)) hot.push(b);
    // Metadata is at the end (mkfs.erofs writes inodes after data): weight the last blocks.
    const meta = hot.slice(-40);
    const pos = fc.oneof(
      fc.integer({ min: 1024, max: 1151 }),
      fc.tuple(fc.constantFrom(...meta), fc.integer({ min: 0, max: bs - 1 })).map(([b, o]) => b * bs + o),
      fc.tuple(fc.constantFrom(...hot), fc.integer({ min: 0, max: bs - 1 })).map(([b, o]) => b * bs + o),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(pos, fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const m = Buffer.from(bytes);
        for (const [p, v] of edits) m[p] = v;
        try {
          const v = erofsReader.open(bytesSource(m), 'm.img');
          for (const e of v.entries()) if (e.type === 'file' && e.size < 8 << 20) readWhole(v, e);
          for (let o = 0; o < m.length; o += 50_021) v.locate(o);
        } catch (err) {
          if (!(err instanceof NixSealError)) throw err;
        }
      }),
      seeded({ numRuns: 200, seed: 0xe40f5 }),
    );
  }
});

// ---- lzma, deflate and zstd ---------------------------------------------------------------------
// mkfs.erofs 1.5 (Debian 12) compresses with lz4 and lz4hc only. The other algorithms are tested on
// real mkfs.erofs lz4 images whose every lz4 pcluster is re-encoded, in place and 0-padded as
// erofs-utils ≥ 1.6 writes them, by the real encoder of that algorithm: liblzma's
// lzma_microlzma_encoder (through python3's ctypes, as mkfs.erofs calls it), zlib's raw deflate,
// the zstd program. The pclusters, lcluster indexes, big pclusters and tail packing are mkfs.erofs's.

for (const alg of ['lzma', 'deflate', 'zstd'] as const) {
  for (const args of [['-zlz4hc'], ['-zlz4hc', '-E', 'legacy-compress'], ['-zlz4hc', '-C', '16384', '-E', 'ztailpacking']]) {
    test(`reads ${alg} pclusters in place of mkfs.erofs ${args.join(' ')}'s: NAR hash equals nix-hash of the tree`, (t) => {
      if (!requireTools(t, 'mkfs.erofs', 'nix-hash', ...ENCODERS[alg].tools)) return;
      const dir = tempDir(t);
      const tree = join(dir, 'tree');
      writeSampleTree(join(tree, 't'), { ...SAMPLE, seed: 21 });
      // Text that compresses about 3×: many pclusters, each holding several lclusters.
      let r = 7;
      const words = Array.from({ length: 60_000 }, () => ((r = (Math.imul(r, 1103515245) + 12345) >>> 0), `w${(r >>> 16) % 4000}`));
      writeFileSync(join(tree, 't', 'text.txt'), words.join(' '));
      const { bytes } = mkerofs(dir, tree, ...args);
      const { image, pclusters } = transcode(bytes, alg, dir);
      assert.ok(pclusters >= 10, `${pclusters} pclusters re-encoded`);
      assert.equal(narHashOfTree(viewTree(erofsReader.open(bytesSource(bytes), 'lz4.img')), 't', 'lz4.img:t').narHash, nixHashOf(join(tree, 't')));
      const view = erofsReader.open(bytesSource(image), `${alg}.img`);
      assert.equal(narHashOfTree(viewTree(view), 't', `${alg}.img:t`).narHash, nixHashOf(join(tree, 't')));
      // A corrupt pcluster: EFORMAT naming the algorithm, at the pcluster's offset.
      const fs = openErofs(bytesSource(image), 'c.img');
      const ino = fs.inode(fs.entry('t/text.txt')!.nid, 0);
      const x = fs.zextents(ino).find((z) => z.alg === ENCODERS[alg].id)!;
      const bad = Buffer.from(image);
      let o = x.offset;
      while (bad[o] === 0) o++;
      for (; o < x.offset + x.compressedLength; o++) bad[o] = bad[o]! ^ 0x5a;
      const bv = erofsReader.open(bytesSource(bad), 'c.img');
      assert.throws(
        () => readWhole(bv, [...bv.entries()].find((e) => e.path === 't/text.txt')!),
        (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && e.details.offset === x.offset && e.message.includes(`${alg} pcluster`),
      );
    });
  }
}

test('fuzz: seeded mutations of the kept erofs seeds end in entries or a NixSealError, never a hang', () => {
  const kinds = fuzzCorpus(erofsReader, 'erofs');
  // The mutations reach the parsers: several kinds of error, not one refusal at the header.
  assert.ok(kinds.size >= 3, [...kinds.keys()].join('\n'));
});

test('erofs fuzz corpus replays: each kept image ends as recorded (offsets are regression pins, not an oracle)', () => {
  replayCorpus(erofsReader, 'erofs');
});
