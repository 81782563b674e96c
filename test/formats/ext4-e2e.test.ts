import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import { fuzzCorpus, replayCorpus } from '../support/fuzz-corpus.js';
import { requireTools } from '../support/tools.js';
import { viewTree, writeSampleTree } from '../support/view-tree.js';
import { bytesSource, windowSource } from '../../src/formats/byte-source.js';
import { Ext4, ext4Reader, EXT4_SUPERBLOCK_OFFSET, SB } from '../../src/formats/ext4.js';
import { readWhole, type ImageView } from '../../src/formats/image.js';
import { readerFor } from '../../src/formats/image-readers.js';
import { narHashOfTree } from '../../src/formats/nar.js';
import { tempDir } from '../support/temp.js';
import { seeded } from '../support/property.js';

function mkfs(dir: string, tree: string, cmd: string, size: string, ...args: string[]): Buffer {
  const img = join(dir, `${cmd}-${args.join('')}.img`);
  execFileSync(cmd, ['-q', '-F', '-d', tree, ...args, img, size], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, E2FSPROGS_FAKE_TIME: '1' } });
  return readFileSync(img);
}

/** What debugfs's rdump writes, as path → type/size/exec/target, relative to `root`. */
function listDisk(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (p: string, rel: string): void => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) out.set(rel, `symlink ${readlinkSync(p)}`);
    else if (st.isDirectory()) {
      out.set(rel, 'dir');
      for (const n of readdirSync(p)) walk(join(p, n), rel === '' ? n : `${rel}/${n}`);
    } else out.set(rel, `file ${st.size} ${(st.mode & 0o100) !== 0}`);
  };
  walk(root, '');
  return out;
}

function listView(view: ImageView): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of view.entries()) {
    out.set(e.path, e.type === 'symlink' ? `symlink ${e.target}` : e.type === 'dir' ? 'dir' : `file ${e.size} ${e.executable}`);
  }
  return out;
}

function nixHash(dir: string): string {
  return 'sha256:' + execFileSync('nix-hash', ['--type', 'sha256', '--base32', dir], { encoding: 'utf8' }).trim();
}

const VARIANTS: { label: string; cmd: string; args: string[]; fsck?: boolean }[] = [
  { label: 'mkfs.ext4 (extents, 64bit, metadata_csum)', cmd: 'mkfs.ext4', args: ['-O', '64bit'] },
  { label: 'mkfs.ext4 -O ^64bit (32-byte group descriptors)', cmd: 'mkfs.ext4', args: ['-O', '^64bit'] },
  { label: 'mkfs.ext4 -O ^extent (block maps)', cmd: 'mkfs.ext4', args: ['-O', '^extent,^64bit'] },
  { label: 'mkfs.ext2 (block maps, 1 KiB blocks)', cmd: 'mkfs.ext2', args: ['-b', '1024'] },
  { label: 'mkfs.ext3', cmd: 'mkfs.ext3', args: [] },
  { label: 'mkfs.ext4 -O inline_data', cmd: 'mkfs.ext4', args: ['-O', 'inline_data', '-I', '512'] },
  { label: 'mkfs.ext4 then e2fsck -D (htree directories)', cmd: 'mkfs.ext4', args: ['-O', 'dir_index'], fsck: true },
  { label: 'mkfs.ext4 -b 1024 -O ^flex_bg (many groups, deep extent trees)', cmd: 'mkfs.ext4', args: ['-b', '1024', '-O', '^flex_bg'] },
  { label: 'mkfs.ext4 -b 1024 -O meta_bg (group descriptors spread over meta groups)', cmd: 'mkfs.ext4', args: ['-b', '1024', '-g', '1024', '-O', 'meta_bg,^resize_inode,64bit'] },
];

for (const v of VARIANTS) {
  test(`reads an image made by ${v.label}: listing equals debugfs rdump, NAR hash equals nix-hash`, (t) => {
    if (!requireTools(t, v.cmd, 'debugfs', 'nix-hash', ...(v.fsck ? ['e2fsck'] : []))) return;
    const dir = tempDir(t);
    const tree = join(dir, 'tree');
    writeSampleTree(join(tree, 't'));
    let bytes = mkfs(dir, tree, v.cmd, '24M', ...v.args);
    const img = join(dir, 'fs.img');
    writeFileSync(img, bytes);
    if (v.fsck) {
      try {
        execFileSync('e2fsck', ['-fyD', img], { stdio: 'ignore' });
      } catch (err) {
        // e2fsck exits 1 when it changed the file system (it re-indexed directories).
        if ((err as { status?: number }).status !== 1) throw err;
      }
      bytes = readFileSync(img);
      const htree = execFileSync('debugfs', ['-R', 'htree /t/many', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      assert.match(htree, /Root node dump/, 't/many is an htree directory');
    }
    if (v.args.includes('inline_data')) {
      const stat = execFileSync('debugfs', ['-R', 'stat /t/run.sh', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      assert.match(stat, /Size of inline data/, 'small files are inline');
    }
    assert.equal(readerFor(bytesSource(bytes)), ext4Reader);
    const view = ext4Reader.open(bytesSource(bytes), 'fs.img');
    const out = join(dir, 'rdump');
    execFileSync('mkdir', [out]);
    execFileSync('debugfs', ['-R', `rdump / ${out}`, img], { stdio: 'ignore' });
    const listing = listView(view);
    if (v.args.includes('inline_data')) {
      // debugfs 1.47's rdump pads inline files to 60 bytes: compare with the source tree instead,
      // and the sizes with debugfs's own `ls -p` of a directory.
      const src = listDisk(tree);
      for (const k of [...listing.keys()]) if (k === 'lost+found' || k.startsWith('lost+found/')) listing.delete(k);
      assert.deepEqual(listing, src);
    } else assert.deepEqual(listing, listDisk(out));
    // debugfs ls -p: /inode/mode/uid/gid/name/size/ for each entry of t/many.
    const lsp = execFileSync('debugfs', ['-R', 'ls -p /t/many', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    let n = 0;
    for (const line of lsp.split('\n')) {
      const f = line.split('/');
      if (f.length < 7 || f[5] === '.' || f[5] === '..') continue;
      n++;
      assert.equal(listing.get(`t/many/${f[5]}`), `file ${f[6]} false`, line);
    }
    assert.equal(n, 150);
    const tr = viewTree(view);
    assert.equal(narHashOfTree(tr, 't', 'fs.img:t').narHash, nixHash(join(tree, 't')));
    if (!v.args.join(' ').includes('^extent') && v.cmd !== 'mkfs.ext2' && v.cmd !== 'mkfs.ext3') {
      const ex = execFileSync('debugfs', ['-R', 'ex /t/big.bin', img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      assert.match(ex, /^\s*1\/\s*1\s/m, 'big.bin has an extent tree of depth 1');
    }
    // fileSource maps offsets through the extents: random slices equal the file's bytes.
    const big = [...view.entries()].find((e) => e.path === 't/big.bin')!;
    const whole = readWhole(view, big);
    assert.deepEqual(Buffer.from(whole), readFileSync(join(tree, 't/big.bin')));
    const fsrc = view.fileSource(big)!;
    for (const [o, n] of [[0, 10], [69_990, 40], [1_499_000, 8000], [whole.length - 5, 5], [4000, 1]] as const) {
      assert.deepEqual(Buffer.from(fsrc.read(o, n)), Buffer.from(whole.subarray(o, o + n)), `${o}+${n}`);
    }
    // locate: a byte of big.bin's data is "data of t/big.bin" at the right offset in the file.
    const marker = whole.subarray(1_500_100, 1_500_132);
    const at = bytes.indexOf(marker);
    assert.ok(at > 0);
    assert.deepEqual(view.locate(at), { path: 't/big.bin', what: 'data of t/big.bin', offsetInFile: 1_500_100 });
    assert.equal(view.locate(EXT4_SUPERBLOCK_OFFSET + 10).what, 'ext4 superblock');
    assert.equal(view.locate(100).what, 'ext4 boot area');
    const fs = new Ext4(bytesSource(bytes), 'fs.img');
    assert.match(view.locate(fs.sb.blockSize * (fs.sb.firstDataBlock + 1)).what, /group descriptors/);
    if (v.args.join(' ').includes('meta_bg')) {
      // dumpe2fs names where each group's descriptors are: the reader found them there (it read the tree).
      const d = execFileSync('dumpe2fs', [img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const gd = [...d.matchAll(/Group descriptor at (\d+)/g)].map((m) => Number(m[1]));
      // 24 groups of 1024 blocks, 16 64-byte descriptors a block: the second block is in group 16.
      assert.ok(gd.includes(16 * 1024 + 1), gd.join());
      for (const x of gd) assert.match(view.locate(x * fs.sb.blockSize + 7).what, /group descriptors/, String(x));
    }
    // debugfs bmap gives the physical block of a logical one: t/many's first directory block,
    // the journal's first block, run.sh's inode (debugfs imap).
    const dbg = (req: string): string => execFileSync('debugfs', ['-R', req, img], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const bs = fs.sb.blockSize;
    if (!v.args.includes('inline_data')) assert.deepEqual(view.locate(Number(dbg('bmap /t/many 0').trim()) * bs + 5), { path: 't/many', what: 'ext4 directory block of t/many' });
    if (v.cmd !== 'mkfs.ext2') assert.equal(view.locate(Number(dbg('bmap <8> 0').trim()) * bs).what, 'ext4 journal');
    const imap = /located at block (\d+), offset 0x([0-9a-f]+)/.exec(dbg('imap /t/run.sh'))!;
    assert.deepEqual(view.locate(Number(imap[1]) * bs + parseInt(imap[2]!, 16) + 3), { path: 't/run.sh', what: 'ext4 inode of t/run.sh' });
  });
}

test('an ext4 image stored in a file of an ext4 image opens through fileSource (nesting)', (t) => {
  if (!requireTools(t, 'mkfs.ext4')) return;
  const dir = tempDir(t);
  const inner = join(dir, 'inner');
  writeSampleTree(join(inner, 't'), { seed: 7 });
  const innerImg = mkfs(dir, inner, 'mkfs.ext4', '8M');
  const outer = join(dir, 'outer');
  execFileSync('mkdir', [outer]);
  writeFileSync(join(outer, 'root.img'), innerImg);
  const outerImg = mkfs(dir, outer, 'mkfs.ext4', '24M', '-b', '1024');
  const view = ext4Reader.open(bytesSource(outerImg), 'outer.img');
  const e = [...view.entries()].find((x) => x.path === 'root.img')!;
  const nested = ext4Reader.open(view.fileSource(e)!, 'outer.img:root.img');
  const direct = ext4Reader.open(bytesSource(innerImg), 'inner.img');
  assert.equal(narHashOfTree(viewTree(nested), 't', 'n').narHash, narHashOfTree(viewTree(direct), 't', 'd').narHash);
});

test('near misses: not ext4, truncated, bad block size, bigalloc — EFORMAT with the offset', (t) => {
  if (!requireTools(t, 'mkfs.ext4')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  writeSampleTree(join(tree, 't'), { seed: 3 });
  const bytes = mkfs(dir, tree, 'mkfs.ext4', '8M');
  assert.equal(ext4Reader.detect(bytesSource(Buffer.alloc(4096))), false);
  assert.equal(ext4Reader.detect(bytesSource(bytes.subarray(0, 1500))), false);
  const expect = (b: Uint8Array, re: RegExp, offset?: number): void => {
    assert.throws(
      () => {
        const v = ext4Reader.open(bytesSource(b), 'bad.img');
        for (const e of v.entries()) if (e.type === 'file') readWhole(v, e);
      },
      (err: unknown) => err instanceof NixSealError && err.code === 'EFORMAT' && re.test(err.message) && (offset === undefined || err.details.offset === offset) && /^Cannot read bad\.img: /.test(err.message),
    );
  };
  const bad = Buffer.from(bytes);
  bad.writeUInt32LE(9, EXT4_SUPERBLOCK_OFFSET + SB.logBlockSize);
  expect(bad, /block size/, EXT4_SUPERBLOCK_OFFSET + SB.logBlockSize);
  const bigalloc = Buffer.from(bytes);
  bigalloc.writeUInt32LE(bigalloc.readUInt32LE(EXT4_SUPERBLOCK_OFFSET + SB.featureRoCompat) | 0x200, EXT4_SUPERBLOCK_OFFSET + SB.featureRoCompat);
  expect(bigalloc, /bigalloc/, EXT4_SUPERBLOCK_OFFSET + SB.featureRoCompat);
  // Cut inside big.bin's data: reading it fails at the cut.
  const cut = bytes.indexOf(Buffer.from('bottom\n')) - 1;
  assert.ok(cut > 0);
  expect(bytes.subarray(0, cut), /outside|past the end/);
  // A window of the image (as in a partition) reads the same.
  const padded = Buffer.concat([Buffer.alloc(4096, 1), bytes]);
  const w = ext4Reader.open(windowSource(bytesSource(padded), 4096, bytes.length), 'w');
  assert.ok([...w.entries()].some((e) => e.path === 't/run.sh' && e.executable === true));
});

test('property: mutated ext4 images fail only with NixSealError and never hang', (t) => {
  if (!requireTools(t, 'mkfs.ext4')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  writeSampleTree(join(tree, 't'), { seed: 5 });
  for (const args of [['-b', '1024', '-O', '^extent,^64bit'], ['-O', 'inline_data,64bit', '-I', '256']]) {
    const img = mkfs(dir, tree, 'mkfs.ext4', '6M', ...args);
    // Mutate where the structure is: blocks that are not all zeros (and not file contents alone).
    const bs = 1024;
    const hot: number[] = [];
    for (let b = 1; b * bs < img.length; b++) if (img.subarray(b * bs, b * bs + bs).some((x) => x !== 0)) hot.push(b);
    const pos = fc.oneof(fc.integer({ min: 1024, max: 2047 }), fc.tuple(fc.constantFrom(...hot), fc.integer({ min: 0, max: bs - 1 })).map(([b, o]) => b * bs + o));
    fc.assert(
      fc.property(fc.array(fc.tuple(pos, fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
        const m = Buffer.from(img);
        for (const [p, v] of edits) m[p] = v;
        try {
          const v = ext4Reader.open(bytesSource(m), 'm.img');
          for (const e of v.entries()) {
            if (e.type === 'file' && e.size < 8 << 20) readWhole(v, e);
          }
          for (let o = 0; o < m.length; o += 97_003) v.locate(o);
        } catch (err) {
          if (!(err instanceof NixSealError)) throw err;
        }
      }),
      seeded({ numRuns: 150, seed: 0xe4f5 }),
    );
  }
  // Random bytes: detection is false or the open fails cleanly.
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 2048, maxLength: 8192 }), (b) => {
      const m = Buffer.from(b);
      m.writeUInt16LE(0xef53, EXT4_SUPERBLOCK_OFFSET + SB.magic);
      try {
        const v = ext4Reader.open(bytesSource(m), 'r.img');
        for (const e of v.entries()) if (e.type === 'file' && e.size < 1 << 20) readWhole(v, e);
      } catch (err) {
        if (!(err instanceof NixSealError)) throw err;
      }
    }),
    seeded({ numRuns: 300, seed: 0xe4 }),
  );
});

test('fuzz: seeded mutations of the kept ext4 seeds end in entries or a NixSealError, never a hang', () => {
  const kinds = fuzzCorpus(ext4Reader, 'ext4');
  // The mutations reach the parsers: several kinds of error, not one refusal at the header.
  assert.ok(kinds.size >= 3, [...kinds.keys()].join('\n'));
});

test('ext4 fuzz corpus replays: each kept image ends as recorded (offsets are regression pins, not an oracle)', () => {
  replayCorpus(ext4Reader, 'ext4');
});

test('a name twice in one directory (a corrupt directory block) is EFORMAT at the second record, as in EROFS and FAT', (t) => {
  if (!requireTools(t, 'mkfs.ext4')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  execFileSync('mkdir', ['-p', join(tree, 'd')]);
  writeFileSync(join(tree, 'd', 'twin-one'), 'one\n');
  writeFileSync(join(tree, 'd', 'twin-two'), 'two\n');
  // Without metadata_csum: the directory block's checksum would not say which record is wrong.
  const bytes = mkfs(dir, tree, 'mkfs.ext4', '1M', '-O', '^metadata_csum');
  const fs = new Ext4(bytesSource(bytes), 'ok.img');
  assert.deepEqual(fs.entries().filter((e) => e.path.startsWith('d/')).map((e) => e.path).sort(), ['d/twin-one', 'd/twin-two']);
  const at = bytes.indexOf('twin-two');
  assert.ok(at > 0 && bytes.indexOf('twin-two', at + 1) < 0);
  const other = bytes.indexOf('twin-one');
  const bad = Buffer.from(bytes);
  bad.write('twin-one', at, 'latin1');
  // Blamed: the later of the two records, which starts 8 bytes before its name (inode, rec_len,
  // name_len, file_type). Before the shared walk ext4 listed both.
  assert.throws(
    () => new Ext4(bytesSource(bad), 'twin.img').entries(),
    (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && /d\/twin-one is named twice at offset \d+$/.test(e.message) && e.details.offset === Math.max(at, other) - 8,
  );
});
