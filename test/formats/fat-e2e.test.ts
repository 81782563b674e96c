import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import { fuzzCorpus, replayCorpus } from '../support/fuzz-corpus.js';
import { requireTools } from '../support/tools.js';
import { writeSampleTree } from '../support/view-tree.js';
import { bytesSource } from '../../src/formats/byte-source.js';
import { BPB, fatReader, lfnChecksum, openFat } from '../../src/formats/fat.js';
import { readWhole } from '../../src/formats/image.js';
import { readerFor } from '../../src/formats/image-readers.js';
import { tempDir } from '../support/temp.js';
import { seeded } from '../support/property.js';

const MENV = { ...process.env, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8' };

/** mkfs.vfat an image of `kib` KiB and copy `tree/t` in with mcopy -s (VFAT long names). */
function mkfat(dir: string, tree: string, fatBits: number, kib: number, ...args: string[]): { img: string; bytes: Buffer } {
  const img = join(dir, `fat${fatBits}.img`);
  execFileSync('mkfs.vfat', ['-F', String(fatBits), ...args, '-C', img, String(kib)], { stdio: 'ignore' });
  execFileSync('mcopy', ['-s', '-i', img, join(tree, 't'), '::'], { stdio: 'ignore', env: MENV });
  return { img, bytes: readFileSync(img) };
}

function files(root: string, rel = ''): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  for (const n of readdirSync(join(root, rel))) {
    const r = rel === '' ? n : `${rel}/${n}`;
    if (lstatSync(join(root, r)).isDirectory()) for (const [k, v] of files(root, r)) out.set(k, v);
    else out.set(r, readFileSync(join(root, r)));
  }
  return out;
}

for (const [bits, kib, args] of [
  [12, 8192, ['-s', '4']],
  [16, 24576, ['-s', '1']],
  [32, 40960, ['-s', '1']],
] as const) {
  test(`reads FAT${bits} made by mkfs.vfat + mcopy -s: names equal mdir -/ -b, contents equal mcopy's and the source's`, (t) => {
    if (!requireTools(t, 'mkfs.vfat', 'mcopy', 'mdir')) return;
    const dir = tempDir(t);
    const tree = join(dir, 'tree');
    writeSampleTree(join(tree, 't'), { fat: true });
    const { img, bytes } = mkfat(dir, tree, bits, kib, ...args);
    assert.equal(readerFor(bytesSource(bytes)), fatReader);
    const view = fatReader.open(bytesSource(bytes), 'fat.img');
    assert.equal(view.description.startsWith(`FAT${bits} `), true, view.description);
    const entries = [...view.entries()];
    const mdir = execFileSync('mdir', ['-/', '-b', '-i', img, '::'], { encoding: 'utf8', env: MENV })
      .split('\n')
      .filter((l) => l.startsWith('::/'))
      .map((l) => l.slice(3));
    assert.deepEqual(entries.filter((e) => e.path !== '').map((e) => (e.type === 'dir' ? `${e.path}/` : e.path)).sort(), mdir.sort());
    const out = join(dir, 'out');
    mkdirSync(out);
    execFileSync('mcopy', ['-s', '-n', '-i', img, '::t', out], { stdio: 'ignore', env: MENV });
    const tool = files(join(out, 't'));
    const source = files(join(tree, 't'));
    const mine = new Map<string, Buffer>();
    for (const e of entries) {
      if (e.type !== 'file') continue;
      assert.equal(e.executable, false);
      mine.set(e.path.slice(2), Buffer.from(readWhole(view, e)));
    }
    assert.deepEqual(mine, tool);
    assert.deepEqual(mine, source);
    // fileSource maps offsets through the cluster chain; locate names big.bin's bytes.
    const big = entries.find((e) => e.path === 't/big.bin')!;
    const whole = mine.get('big.bin')!;
    const fsrc = view.fileSource(big)!;
    for (const [o, n] of [[0, 10], [69_990, 40], [1_499_000, 8000], [whole.length - 5, 5]] as const) {
      assert.deepEqual(Buffer.from(fsrc.read(o, n)), whole.subarray(o, o + n), `${o}+${n}`);
    }
    const marker = whole.subarray(1_500_100, 1_500_132);
    const at = bytes.indexOf(marker);
    assert.ok(at > 0);
    assert.deepEqual(view.locate(at), { path: 't/big.bin', what: 'data of t/big.bin', offsetInFile: 1_500_100 });
    assert.equal(view.locate(10).what, 'FAT boot sector');
    const fs = openFat(bytesSource(bytes), 'fat.img');
    assert.match(view.locate(fs.geo.fatOffset + 3).what, new RegExp(`FAT${bits} allocation table`));
  });
}

test('lfnChecksum matches the VFAT algorithm on a known short name', () => {
  // The checksum is the rotate-right-and-add of the 11 bytes.
  let sum = 0;
  for (const b of Buffer.from('AVERYL~1TXT')) sum = ((sum >> 1) | ((sum & 1) << 7)) + b & 0xff;
  assert.equal(lfnChecksum(Buffer.from('AVERYL~1TXT')), sum);
});

test('near misses: an MBR without a BPB, bad sizes, a looping chain, a long name with a wrong checksum', (t) => {
  if (!requireTools(t, 'mkfs.vfat', 'mcopy')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  writeSampleTree(join(tree, 't'), { fat: true, seed: 9 });
  const { bytes } = mkfat(dir, tree, 16, 24576);
  const mbr = Buffer.alloc(1024);
  mbr[0] = 0xeb;
  mbr[510] = 0x55;
  mbr[511] = 0xaa;
  assert.equal(fatReader.detect(bytesSource(mbr)), false);
  const bad = Buffer.from(bytes);
  bad[BPB.sectorsPerCluster] = 3;
  assert.equal(fatReader.detect(bytesSource(bad)), false);
  assert.throws(() => fatReader.open(bytesSource(bad), 'bad.img'), (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && /sectors per cluster 3 is invalid at offset 0/.test(e.message));
  // big.bin's chain made to loop back on itself: reading fails with the entry's offset.
  const fs = openFat(bytesSource(bytes), 'fat.img');
  const big = fs.entry('t/big.bin')!;
  const looped = Buffer.from(bytes);
  const second = fs.fileClusters(big)[1]!;
  looped.writeUInt16LE(big.cluster, fs.geo.fatOffset + second * 2);
  assert.throws(
    () => readWhole(fatReader.open(bytesSource(looped), 'l.img'), { path: 't/big.bin', type: 'file', size: big.size }),
    (e: unknown) => e instanceof NixSealError && /loops/.test(e.message) && e.details.offset === big.recordOffset,
  );
  // A wrong checksum on the long-name entries before a short entry: the 8.3 name is used.
  const longName = fs.entries().find((e) => e.path.startsWith('t/LLLL'))!;
  const lfnBroken = Buffer.from(bytes);
  lfnBroken[longName.recordOffset - 32 + 13]! ^= 0xff;
  const names = openFat(bytesSource(lfnBroken), 'x').entries().map((e) => e.path);
  assert.ok(!names.includes(longName.path));
  assert.ok(names.some((n) => /^t\/LLLLLL~\d$/.test(n)), names.filter((n) => n.startsWith('t/L')).join());
});

test('property: mutated FAT images fail only with NixSealError and never hang', (t) => {
  if (!requireTools(t, 'mkfs.vfat', 'mcopy')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 't', 'a', 'b'), { recursive: true });
  for (let i = 0; i < 30; i++) execFileSync('sh', ['-c', `printf 'file %s' ${i} > "${join(tree, 't', i % 2 ? 'a' : 'a/b', `some long name ${i}.txt`)}"`]);
  const { bytes } = mkfat(dir, tree, 12, 512);
  const hot: number[] = [];
  for (let b = 0; b * 512 < bytes.length; b++) if (bytes.subarray(b * 512, b * 512 + 512).some((x) => x !== 0)) hot.push(b);
  const pos = fc.tuple(fc.constantFrom(...hot), fc.integer({ min: 0, max: 511 })).map(([b, o]) => b * 512 + o);
  fc.assert(
    fc.property(fc.array(fc.tuple(pos, fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
      const m = Buffer.from(bytes);
      for (const [p, v] of edits) m[p] = v;
      try {
        const v = fatReader.open(bytesSource(m), 'm.img');
        for (const e of v.entries()) if (e.type === 'file' && e.size < 1 << 20) readWhole(v, e);
        for (let o = 0; o < m.length; o += 4099) v.locate(o);
      } catch (err) {
        if (!(err instanceof NixSealError)) throw err;
      }
    }),
    seeded({ numRuns: 300, seed: 0xfa7 }),
  );
});

test('fuzz: seeded mutations of the kept fat seeds end in entries or a NixSealError, never a hang', () => {
  const kinds = fuzzCorpus(fatReader, 'fat');
  // The mutations reach the parsers: several kinds of error, not one refusal at the header.
  assert.ok(kinds.size >= 3, [...kinds.keys()].join('\n'));
});

test('fat fuzz corpus replays: each kept image ends as recorded (offsets are regression pins, not an oracle)', () => {
  replayCorpus(fatReader, 'fat');
});
