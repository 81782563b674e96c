import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, symlinkSync, linkSync, truncateSync, appendFileSync, writeFileSync, chmodSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import { requireTools, which } from '../support/tools.js';
import { isSupported, type CompressionKind } from '../../src/formats/decompress.js';
import { type ByteSource, type SquashEntry, SB, Squashfs, bytesSource, fdSource, openSquashfs, windowSource } from '../../src/formats/squashfs.js';
import { tempDir } from '../support/temp.js';
import { seeded } from '../support/property.js';
import { noiseBytes } from '../support/prng.js';

const CORPUS = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fuzz-corpus/squashfs');

/** Deterministic bytes that do not compress. */
const noise = noiseBytes;

function mksquashfs(tree: string, out: string, ...args: string[]): Buffer {
  execFileSync('mksquashfs', [tree, out, '-noappend', '-no-progress', '-quiet', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  return readFileSync(out);
}

/**
 * The tree every compressor is tested on: small files (fragments, some identical), files of several
 * blocks, a sparse file, an empty file, symlinks, a hard link, empty and deep directories, a
 * directory of 700 entries (an extended directory with an index), a fifo and (as root) devices.
 */
function makeTree(root: string): void {
  mkdirSync(root);
  mkdirSync(join(root, 'small'));
  for (let i = 0; i < 40; i++) writeFileSync(join(root, 'small', `f${i}`), `small file ${i}\n`.repeat(i + 1));
  for (const d of ['dup1', 'dup2', 'dup3']) writeFileSync(join(root, 'small', d), 'the same bytes\n');
  // 3 blocks + a tail: a block of its own by default (-no-tailends), a fragment with -tailends.
  writeFileSync(join(root, 'big'), noise(3 * 128 * 1024 + 1234, 7));
  writeFileSync(join(root, 'exact'), Buffer.from('0123456789abcdef'.repeat(16 * 1024))); // 2 blocks, no tail
  writeFileSync(join(root, 'sparse'), 'start');
  truncateSync(join(root, 'sparse'), 2 * 1024 * 1024 + 10);
  appendFileSync(join(root, 'sparse'), 'end');
  writeFileSync(join(root, 'empty-file'), '');
  mkdirSync(join(root, 'empty-dir'));
  let deep = join(root, 'deep');
  for (let i = 0; i < 40; i++) deep = join(deep, `level${i}`);
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'bottom'), 'deep down\n');
  mkdirSync(join(root, 'many'));
  for (let i = 0; i < 700; i++) writeFileSync(join(root, 'many', `entry-with-a-longish-name-${String(i).padStart(4, '0')}`), `${i}`);
  symlinkSync('big', join(root, 'link'));
  symlinkSync('nowhere/at/all', join(root, 'dangling'));
  symlinkSync('t/'.repeat(150) + 'x', join(root, 'long-link'));
  linkSync(join(root, 'big'), join(root, 'big-hardlink'));
  writeFileSync(join(root, 'ünïcödé'), 'utf-8 name\n');
  writeFileSync(join(root, 'setuid'), '#!/bin/sh\n');
  chmodSync(join(root, 'setuid'), 0o4755);
  mkdirSync(join(root, 'sticky'));
  chmodSync(join(root, 'sticky'), 0o1777);
  try {
    execFileSync('mkfifo', [join(root, 'fifo')]);
  } catch {
    /* no fifo */
  }
  if (process.getuid?.() === 0) {
    try {
      execFileSync('mknod', [join(root, 'chr'), 'c', '1', '3']);
      execFileSync('mknod', [join(root, 'blk'), 'b', '8', '17']);
    } catch {
      /* no devices */
    }
  }
}

function modeString(mode: number): string {
  const type: Record<number, string> = { 0o040000: 'd', 0o100000: '-', 0o120000: 'l', 0o060000: 'b', 0o020000: 'c', 0o010000: 'p', 0o140000: 's' };
  let s = type[mode & 0o170000] ?? '?';
  const rwx = (bits: number, special: boolean, ch: string): string =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? ch : ch.toUpperCase()) : bits & 1 ? 'x' : '-');
  s += rwx((mode >> 6) & 7, (mode & 0o4000) !== 0, 's');
  s += rwx((mode >> 3) & 7, (mode & 0o2000) !== 0, 's');
  s += rwx(mode & 7, (mode & 0o1000) !== 0, 't');
  return s;
}

/** `unsquashfs -lln` lines, re-spaced: "mode uid/gid size date time path[ -> target]". */
function unsquashfsListing(img: string): string[] {
  const out = execFileSync('unsquashfs', ['-lln', img], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' }, maxBuffer: 1 << 26 });
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const m = /^(\S{10}) (\d+\/\d+)\s+(\d+|\d+,\s*\d+) (\S+ \S+) squashfs-root(.*)$/.exec(l);
      assert.ok(m, `unexpected unsquashfs line ${JSON.stringify(l)}`);
      return `${m[1]} ${m[2]} ${m[3]!.replace(/\s+/g, '')} ${m[4]} ${m[5]}`;
    });
}

function ourListing(entries: SquashEntry[]): string[] {
  return entries.map((e) => {
    const d = new Date(e.mtime * 1000).toISOString();
    const size = e.rdev !== undefined ? `${e.rdev.major},${e.rdev.minor}` : String(e.size);
    const path = e.path === '.' ? '' : `/${e.path}`;
    return `${modeString(e.mode)} ${e.uid}/${e.gid} ${size} ${d.slice(0, 10)} ${d.slice(11, 16)} ${path}${e.target !== undefined ? ` -> ${e.target}` : ''}`;
  });
}

/** Checks every entry against the tree it was made from: listing (unsquashfs) and contents. */
function checkAgainstTree(img: string, tree: string, s: Squashfs): SquashEntry[] {
  const entries = [...s.entries()];
  assert.deepEqual(ourListing(entries), unsquashfsListing(img));
  const paths = execFileSync('unsquashfs', ['-l', img], { encoding: 'utf8', maxBuffer: 1 << 26 })
    .split('\n')
    .filter((l) => l.startsWith('squashfs-root'))
    .map((l) => (l === 'squashfs-root' ? '.' : l.slice('squashfs-root/'.length)));
  assert.deepEqual(
    entries.map((e) => e.path),
    paths,
  );
  for (const e of entries) {
    const st = lstatSync(join(tree, e.path));
    if (e.type === 'file') {
      assert.equal(e.size, st.size, e.path);
      assert.ok(Buffer.from(s.readFileBytes(e)).equals(readFileSync(join(tree, e.path))), `contents of ${e.path}`);
      // Every range is inside the image and flagged the way the block list says.
      for (const r of e.ranges!) assert.ok(r.offset >= 96 && r.offset + r.length <= s.superblock.bytesUsed, e.path);
    }
    assert.equal(e.mode & 0o7777, st.mode & 0o7777, e.path);
  }
  return entries;
}

const COMPRESSORS: CompressionKind[] = ['gzip', 'xz', 'lzma', 'lzo', 'lz4', 'zstd'];

test('mksquashfs -help lists every compressor this reader knows', (t) => {
  if (!requireTools(t, 'mksquashfs')) return;
  let help = '';
  try {
    help = execFileSync('mksquashfs', ['-help'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    help = String((err as { stdout?: string }).stdout ?? '') + String((err as { stderr?: string }).stderr ?? '');
  }
  for (const c of COMPRESSORS) assert.match(help, new RegExp(`^\\s+${c}\\b`, 'm'), c);
});

for (const comp of COMPRESSORS) {
  test(`reads an image made by mksquashfs -comp ${comp}`, (t) => {
    if (!requireTools(t, 'mksquashfs', 'unsquashfs')) return;
    const dir = tempDir(t);
    const tree = join(dir, 'tree');
    makeTree(tree);
    const img = join(dir, 'out.sqfs');
    const bytes = mksquashfs(tree, img, '-comp', comp);
    const s = openSquashfs(bytesSource(bytes), 'out.sqfs');
    assert.equal(s.superblock.compression, comp);
    if (!isSupported(comp)) {
      assert.throws(
        () => [...s.entries()],
        (err: unknown) => err instanceof NixSealError && err.code === 'EFORMAT' && /unsupported compressor/.test(err.message) && err.details.offset !== undefined,
      );
      // Without compressed metadata or data, any compressor's image can be read.
      const plain = mksquashfs(tree, join(dir, 'plain.sqfs'), '-comp', comp, '-noI', '-noD', '-noF', '-noX');
      checkAgainstTree(join(dir, 'plain.sqfs'), tree, openSquashfs(bytesSource(plain), 'plain.sqfs'));
      t.diagnostic(`${comp}: unsupported compressor, refused as EFORMAT (uncompressed image read)`);
      return;
    }
    const entries = checkAgainstTree(img, tree, s);
    const byPath = new Map(entries.map((e) => [e.path, e]));

    // The shapes the tree was made to have.
    const big = byPath.get('big')!;
    assert.deepEqual(
      big.blocks!.map((b) => b.size),
      [131072, 131072, 131072, 1234],
    );
    assert.equal(big.fragment, undefined);
    assert.equal(byPath.get('big-hardlink')!.inode, big.inode);
    assert.equal(byPath.get('exact')!.fragment, undefined);
    const sparse = byPath.get('sparse')!;
    assert.ok(sparse.blocks!.some((b) => b.length === 0 && b.size >= 128 * 1024), 'sparse run');
    assert.ok(sparse.ranges!.reduce((n, r) => n + r.length, 0) < 64 * 1024, 'the hole takes no space');
    assert.equal(byPath.get('long-link')!.target, 't/'.repeat(150) + 'x');
    assert.equal(byPath.get('deep/' + Array.from({ length: 40 }, (_, i) => `level${i}`).join('/') + '/bottom')!.type, 'file');
    assert.ok(byPath.get('many')!.size > 8192, 'a listing over one metadata block');

    // locate: a byte inside each block of `big` is that file's block (and its hard link's).
    for (const [i, b] of big.blocks!.entries()) {
      const o = s.locate(b.offset + (b.length >> 1));
      assert.equal(o.kind, 'file-block');
      assert.equal(o.block, i);
      assert.deepEqual(new Set(o.paths), new Set(['big', 'big-hardlink']));
      assert.deepEqual([o.start, o.end], [b.offset, b.offset + b.length]);
    }
    // A fragment block is shared by the small files.
    const f0 = byPath.get('small/f0')!.fragment!;
    const frag = s.locate(f0.offset);
    assert.equal(frag.kind, 'fragment-block');
    assert.ok(frag.paths!.includes('small/f0') && frag.paths!.length > 10, 'shared fragment');
    assert.ok(frag.paths!.includes('small/dup1') && frag.paths!.includes('small/dup3'));
    const sb = s.superblock;
    assert.equal(s.locate(0).kind, 'superblock');
    assert.equal(s.locate(95).kind, 'superblock');
    assert.equal(s.locate(sb.inodeTableStart).kind, 'inode-table');
    assert.equal(s.locate(sb.directoryTableStart + 1).kind, 'directory-table');
    assert.equal(s.locate(sb.idTableStart).kind, 'id-table');
    assert.equal(s.locate(sb.fragmentTableStart!).kind, 'fragment-table');
    if (sb.exportTableStart !== undefined) assert.equal(s.locate(sb.exportTableStart).kind, 'export-table');
    if (sb.bytesUsed < bytes.length) assert.equal(s.locate(bytes.length - 1).kind, 'padding');
    // Every byte of every file's ranges maps back to the file.
    for (const e of entries) for (const r of e.ranges ?? []) assert.ok(s.locate(r.offset + r.length - 1).paths!.includes(e.path), e.path);
  });
}

test('variants: no fragments, always fragments, 4 KiB and 1 MiB blocks, no duplicate detection', (t) => {
  if (!requireTools(t, 'mksquashfs', 'unsquashfs')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  makeTree(tree);
  const variants: string[][] = [
    ['-comp', 'gzip', '-no-fragments', '-b', '4K'],
    ['-comp', 'zstd', '-always-use-fragments', '-b', '1M'],
    ['-comp', 'gzip', '-tailends'],
    ['-comp', 'gzip', '-no-duplicates', '-no-sparse'],
    ['-comp', 'xz', '-b', '64K', '-noI'],
    ['-comp', 'lz4', '-Xhc', '-b', '1M'],
    ['-comp', 'lzo', '-Xalgorithm', 'lzo1x_1', '-b', '256K'],
    ['-comp', 'lzo', '-Xalgorithm', 'lzo1x_999', '-Xcompression-level', '9'],
  ];
  for (const [i, args] of variants.entries()) {
    const img = join(dir, `v${i}.sqfs`);
    const bytes = mksquashfs(tree, img, ...args);
    const s = openSquashfs(bytesSource(bytes), `v${i}.sqfs`);
    const entries = checkAgainstTree(img, tree, s);
    const big = entries.find((e) => e.path === 'big')!;
    if (args.includes('-tailends') || args.includes('-always-use-fragments')) assert.equal(big.fragment?.size, big.size % s.superblock.blockSize);
    if (args.includes('-no-fragments')) assert.ok(entries.every((e) => e.fragment === undefined));
  }
});

test('reads through a file descriptor without reading the whole image', (t) => {
  if (!requireTools(t, 'mksquashfs')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  makeTree(tree);
  const img = join(dir, 'out.sqfs');
  mksquashfs(tree, img, '-comp', 'gzip');
  const fd = openSync(img, 'r');
  t.after(() => closeSync(fd));
  const inner = fdSource(fd);
  let largest = 0;
  const counting: ByteSource = {
    size: inner.size,
    read(o, n) {
      largest = Math.max(largest, n);
      return inner.read(o, n);
    },
  };
  const s = openSquashfs(counting, img);
  for (const e of s.entries()) if (e.type === 'file') for (const _ of s.readFile(e));
  s.locate(1000);
  assert.ok(largest <= s.superblock.blockSize, `largest read ${largest}`);
});

// ---- hostile input -------------------------------------------------------------------------------

function isEformat(err: unknown): boolean {
  return err instanceof NixSealError && err.code === 'EFORMAT' && typeof err.details.offset === 'number' && err.details.path !== undefined;
}

/** Everything a consumer might do with an image; returns normally or throws (the caller checks what). */
function exercise(bytes: Uint8Array, limits = { maxEntries: 20_000, maxDepth: 64, maxMetadataBytes: 8 << 20 }): void {
  const s = openSquashfs(bytesSource(bytes), 'fuzz.sqfs', limits);
  let budget = 32 << 20; // a hostile sparse file can be huge: read a bounded amount of it
  for (const e of s.entries()) {
    if (e.type !== 'file') continue;
    for (const chunk of s.readFile(e)) {
      budget -= chunk.length;
      if (budget < 0) break;
    }
  }
  for (const o of [0, 96, s.superblock.inodeTableStart, s.superblock.directoryTableStart, bytes.length >> 1, bytes.length - 1]) {
    if (o < bytes.length) s.locate(o);
  }
}

function expectEformat(bytes: Uint8Array, re?: RegExp, limits?: Parameters<typeof exercise>[1]): void {
  assert.throws(
    () => exercise(bytes, limits),
    (err: unknown) => {
      if (!isEformat(err)) throw err;
      if (re !== undefined && !re.test((err as Error).message)) throw err;
      return true;
    },
  );
}

/** A small tree for corruption and fuzzing: a few files, a fragment, a two-block file, a symlink. */
function makeSmallTree(root: string): void {
  mkdirSync(join(root, 'sub', 'loopdir'), { recursive: true });
  writeFileSync(join(root, 'a'), 'alpha\n');
  writeFileSync(join(root, 'sub', 'b'), 'bravo bravo\n');
  writeFileSync(join(root, 'two-blocks'), noise(4096 + 700, 3));
  symlinkSync('sub/b', join(root, 'ln'));
}

function smallImage(t: TestContext, ...args: string[]): Buffer {
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  makeSmallTree(tree);
  return mksquashfs(tree, join(dir, 'small.sqfs'), '-b', '4K', ...args);
}

test('superblock errors: magic, version, compressor, block size, truncation', (t) => {
  if (!requireTools(t, 'mksquashfs')) return;
  const img = smallImage(t, '-comp', 'gzip');
  const patch = (at: number, f: (dv: DataView) => void): Buffer => {
    const b = Buffer.from(img);
    f(new DataView(b.buffer, b.byteOffset + at));
    return b;
  };
  expectEformat(Buffer.alloc(10), /too small for a squashfs superblock \(10 bytes\) at offset 0/);
  expectEformat(patch(0, (d) => d.setUint32(0, 0x12345678, true)), /not a squashfs image.*at offset 0/);
  expectEformat(patch(0, (d) => d.setUint32(0, 0x73717368, false)), /big-endian/);
  expectEformat(patch(SB.versionMajor, (d) => d.setUint16(0, 3, true)), /version 3\.0 is not supported \(only 4\.0\) at offset 28/);
  expectEformat(patch(SB.compression, (d) => d.setUint16(0, 9, true)), /unknown compressor id 9 at offset 20/);
  expectEformat(patch(SB.blockSize, (d) => d.setUint32(0, 5000, true)), /bad block size 5000/);
  expectEformat(patch(SB.blockLog, (d) => d.setUint16(0, 13, true)), /block log 13/);
  expectEformat(patch(SB.bytesUsed, (d) => d.setBigUint64(0, 1n << 60n, true)), /bytes_used .* past the end/);
  const used = Number(new DataView(img.buffer, img.byteOffset).getBigUint64(SB.bytesUsed, true));
  for (let n = 0; n < used; n += 97) expectEformat(img.subarray(0, n));
});

test('superblock fields set to edge values: read or EFORMAT, never another error', (t) => {
  if (!requireTools(t, 'mksquashfs')) return;
  for (const img of [smallImage(t, '-comp', 'gzip'), smallImage(t, '-noI', '-noD', '-noF', '-noX')]) {
    const dv = new DataView(img.buffer, img.byteOffset);
    const u64s = [SB.rootInode, SB.bytesUsed, SB.idTableStart, SB.xattrIdTableStart, SB.inodeTableStart, SB.directoryTableStart, SB.fragmentTableStart, SB.exportTableStart];
    const starts = u64s.map((o) => dv.getBigUint64(o, true));
    const used = dv.getBigUint64(SB.bytesUsed, true);
    const values = [0n, 1n, 95n, 96n, 98n, used - 1n, used, used + 1n, BigInt(img.length), (1n << 64n) - 1n, 1n << 63n, ...starts, ...starts.map((v) => v + 2n)];
    for (const field of u64s) {
      for (const v of values) {
        const b = Buffer.from(img);
        b.writeBigUInt64LE(BigInt.asUintN(64, v), field);
        survives(b);
      }
    }
    for (const field of [SB.inodeCount, SB.fragmentCount, SB.blockSize]) {
      for (const v of [0, 1, 2, 511, 512, 513, 4096, 0x7fffffff, 0xffffffff]) {
        const b = Buffer.from(img);
        b.writeUInt32LE(v, field);
        survives(b);
      }
    }
    for (const field of [SB.idCount, SB.flags, SB.compression, SB.blockLog]) {
      for (const v of [0, 1, 2, 12, 0x7fff, 0xffff]) {
        const b = Buffer.from(img);
        b.writeUInt16LE(v, field);
        survives(b);
      }
    }
  }
});

test('a directory that contains its own ancestor is a loop', (t) => {
  if (!requireTools(t, 'mksquashfs')) return;
  // Uncompressed metadata (-noI) so the directory entry can be patched in place.
  const img = smallImage(t, '-noI', '-noD', '-noF', '-noX');
  const s = openSquashfs(bytesSource(img), 'x');
  const entries = [...s.entries()];
  const root = entries[0]!;
  const loopdir = entries.find((e) => e.path === 'sub/loopdir')!;
  // The entry: u16 offset, s16 inode delta, u16 type, u16 name size - 1, name.
  const sb = s.superblock;
  const at = img.indexOf('loopdir', sb.directoryTableStart) - 8;
  assert.ok(at > sb.directoryTableStart);
  const rootRef = sb.rootInode;
  assert.equal(rootRef >> 16n, 0n, 'a small inode table is one metadata block');
  const b = Buffer.from(img);
  b.writeUInt16LE(Number(rootRef & 0xffffn), at);
  b.writeInt16LE(b.readInt16LE(at + 2) + (root.inode - loopdir.inode), at + 2);
  expectEformat(b, /directory loop: "sub\/loopdir"/);
});

test('budgets: entries, depth, metadata', (t) => {
  if (!requireTools(t, 'mksquashfs')) return;
  const img = smallImage(t, '-comp', 'gzip');
  exercise(img);
  expectEformat(img, /more than 3 entries/, { maxEntries: 3, maxDepth: 64, maxMetadataBytes: 1 << 20 });
  expectEformat(img, /nested deeper than 1/, { maxEntries: 100, maxDepth: 1, maxMetadataBytes: 1 << 20 });
  expectEformat(img, /metadata read or decompressed/, { maxEntries: 100, maxDepth: 64, maxMetadataBytes: 100 });
});

test('a squashfs inside an ISO laid out like NixOS (/nix-store.squashfs), read through a window', (t) => {
  if (!requireTools(t, 'mksquashfs', 'xorriso', 'unsquashfs')) return;
  const dir = tempDir(t);
  const store = join(dir, 'store');
  const pkg = join(store, 'nix', 'store', '0123456789abcdfghijklmnpqrsvwxyz-hello-2.12');
  mkdirSync(join(pkg, 'bin'), { recursive: true });
  mkdirSync(join(pkg, 'share', 'doc'), { recursive: true });
  writeFileSync(join(pkg, 'bin', 'hello'), noise(300 * 1024, 11));
  chmodSync(join(pkg, 'bin', 'hello'), 0o555);
  // Machine code, for the BCJ filter NixOS asks for to have something to do.
  const ls = which('ls');
  if (ls !== undefined) writeFileSync(join(pkg, 'bin', 'ls'), readFileSync(ls));
  writeFileSync(join(pkg, 'share', 'doc', 'README'), 'hello\n');
  symlinkSync('../bin/hello', join(pkg, 'share', 'hello'));
  const isoRoot = join(dir, 'iso');
  mkdirSync(join(isoRoot, 'boot'), { recursive: true });
  writeFileSync(join(isoRoot, 'boot', 'placeholder'), 'kernel would be here\n');
  const sqfs = join(isoRoot, 'nix-store.squashfs');
  // As nixpkgs' make-squashfs.nix does with iso-image.nix's default compression: 1 MiB blocks,
  // -all-root, "xz -Xdict-size 100% -Xbcj x86" (arm on ARM).
  const bcj = process.arch === 'arm64' || process.arch === 'arm' ? 'arm' : 'x86';
  mksquashfs(store, sqfs, '-comp', 'xz', '-Xdict-size', '100%', '-Xbcj', bcj, '-b', '1048576', '-all-root');
  const iso = join(dir, 'nixos.iso');
  execFileSync('xorriso', ['-as', 'mkisofs', '-o', iso, '-R', '-J', '-V', 'NIXOS_ISO', isoRoot], { stdio: ['ignore', 'ignore', 'pipe'] });
  const fd = openSync(iso, 'r');
  t.after(() => closeSync(fd));
  const isoSrc = fdSource(fd);
  // xorriso's own answer, and the 'hsqs' magic at a 2048-byte boundary: the same place.
  const report = execFileSync('xorriso', ['-indev', iso, '-find', '/nix-store.squashfs', '-exec', 'report_lba'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const m = /File data lba:\s*\d+\s*,\s*(\d+)\s*,\s*\d+\s*,\s*(\d+)\s*,\s*'\/nix-store\.squashfs'/.exec(report);
  assert.ok(m, report);
  const offset = Number(m[1]) * 2048;
  const length = Number(m[2]);
  let found = -1;
  for (let o = 0; o + 4 <= isoSrc.size; o += 2048) {
    if (Buffer.from(isoSrc.read(o, 4)).toString('latin1') === 'hsqs') {
      found = o;
      break;
    }
  }
  assert.equal(found, offset);
  const s = openSquashfs(windowSource(isoSrc, offset, length), 'nixos.iso:/nix-store.squashfs');
  const entries = checkAgainstTree(sqfs, store, s);
  const hello = entries.find((e) => e.path.endsWith('/bin/hello'))!;
  assert.equal(hello.path, 'nix/store/0123456789abcdfghijklmnpqrsvwxyz-hello-2.12/bin/hello');
  assert.equal(hello.uid, 0);
  // Offsets are the window's: + offset is where the block is in the ISO.
  const r0 = hello.ranges![0]!;
  const o = s.locate(r0.offset + 10);
  if (r0.kind === 'fragment' && r0.compressed && new Set(o.paths).size > 1) {
    // A compressed fragment block shared by several files: a raw offset names none of them.
    assert.equal(o.path, undefined);
    assert.ok(o.paths!.includes(hello.path));
  } else assert.equal(o.path, hello.path);
  // The ISO's bytes there are the block: an xz stream.
  assert.deepEqual([...isoSrc.read(offset + hello.ranges![0]!.offset, 6)], [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
  if (ls !== undefined) {
    // mksquashfs keeps the BCJ-filtered stream of a block when it is the smaller one: machine code
    // gets one (block header flags: filter count - 1 in the low bits), and it read back right above.
    const lsEntry = entries.find((e) => e.path.endsWith('/bin/ls'))!;
    const filtered = lsEntry.ranges!.some((r) => r.compressed && (isoSrc.read(offset + r.offset + 13, 1)[0]! & 3) > 0);
    assert.ok(filtered, 'a BCJ-filtered block');
  }
});

// ---- fuzzing -----------------------------------------------------------------------------------

/**
 * Runs `exercise` and accepts success or EFORMAT; anything else fails the test. (No wall-clock
 * bound: the reader's limits bound the work, and the test runner's timeout catches a hang.)
 */
function survives(bytes: Uint8Array): void {
  try {
    exercise(bytes);
  } catch (err) {
    if (!isEformat(err)) {
      saveCorpus(bytes, 'crash');
      throw err;
    }
  }
}

/** With SQUASHFS_FUZZ_SAVE=1, failing inputs are kept in the corpus to be replayed. */
function saveCorpus(bytes: Uint8Array, why: string): void {
  if (process.env.SQUASHFS_FUZZ_SAVE !== '1') return;
  mkdirSync(CORPUS, { recursive: true });
  writeFileSync(join(CORPUS, `${why}-${Date.now()}.sqfs`), bytes);
}

const FUZZ_RUNS = Number(process.env.SQUASHFS_FUZZ_RUNS ?? 500);

for (const comp of ['gzip', 'zstd', 'xz', 'lzma', 'lz4', 'lzo', 'plain'] as const) {
  test(`fuzz: mutated and truncated ${comp} images read or fail with EFORMAT`, (t) => {
    if (!requireTools(t, 'mksquashfs')) return;
    const img = smallImage(t, ...(comp === 'plain' ? ['-noI', '-noD', '-noF', '-noX'] : ['-comp', comp]));
    exercise(img); // the seed itself reads
    const dv = new DataView(img.buffer, img.byteOffset);
    const used = Number(dv.getBigUint64(SB.bytesUsed, true));
    const inodes = Number(dv.getBigUint64(SB.inodeTableStart, true));
    // Positions: the superblock, the tables (inode table on), anywhere in the image.
    const pos = fc.oneof(fc.integer({ min: 0, max: 95 }), fc.integer({ min: inodes, max: used - 1 }), fc.integer({ min: 0, max: used - 1 }));
    const mutation = fc.record({
      edits: fc.array(fc.tuple(pos, fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      truncate: fc.option(fc.integer({ min: 0, max: img.length }), { freq: 5 }),
    });
    fc.assert(
      fc.property(mutation, ({ edits, truncate }) => {
        const b = Buffer.from(img);
        for (const [p, v] of edits) b[p] = v;
        survives(truncate === null ? b : b.subarray(0, truncate));
      }),
      seeded({ numRuns: FUZZ_RUNS, seed: 0x5eed + comp.length }),
    );
  });
}

// Regression pins, not an oracle: inputs that once broke the reader must keep honouring the
// contract (read, or EFORMAT). See test/fuzz-corpus/README.md.
test('fuzz corpus replays: each image reads or fails with EFORMAT', () => {
  const files = existsSync(CORPUS) ? readdirSync(CORPUS).filter((f) => f.endsWith('.sqfs')) : [];
  assert.ok(files.length > 0, `no corpus in ${CORPUS}`);
  for (const f of files) {
    const bytes = readFileSync(join(CORPUS, f));
    try {
      exercise(bytes);
    } catch (err) {
      if (!isEformat(err)) throw new Error(`${f}: ${String(err)}`, { cause: err });
    }
  }
});

