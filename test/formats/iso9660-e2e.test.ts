import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, ftruncateSync, lstatSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import { requireTools } from '../support/tools.js';
import { BufferSource, DR_FIELD, FdSource, openIso, SECTOR_SIZE, SYSTEM_AREA_SIZE, withIsoFile, type Iso, type IsoEntry, type IsoLimits } from '../../src/formats/iso9660.js';
import { tempDir } from '../support/temp.js';
import { seeded } from '../support/property.js';
import { CountingSource } from '../support/counting-source.js';

// dist/test/formats/iso9660-e2e.test.js → the source tree's corpus (not copied to dist).
const CORPUS = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fuzz-corpus/iso9660');
/** xorriso converts names from the locale's charset: in the C locale every non-ASCII byte becomes "_" in Joliet. */
const UTF8_ENV = { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' };

function xorriso(args: string[]): string {
  return execFileSync('xorriso', args, { env: UTF8_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 28 });
}

/** `xorriso -as mkisofs ARGS -o OUT TREE`. */
function mkiso(out: string, tree: string, args: string[]): string {
  xorriso(['-as', 'mkisofs', ...args, '-o', out, tree]);
  return out;
}

/** Opens an image file through a file descriptor, closed after the test. */
function openFile(t: TestContext, path: string, limits?: Partial<IsoLimits>): Iso {
  const fd = openSync(path, 'r');
  t.after(() => closeSync(fd));
  return openIso(new FdSource(fd, path), path, limits);
}

const LONG_TARGET = Array.from({ length: 60 }, (_, i) => `seg${i}`).join('/'); // ~350 bytes: several SL entries
const DEEP = Array.from({ length: 20 }, (_, i) => `d${i}`).join('/');

/** A tree with what the reader has to get right. Returns the boot image's path inside the tree. */
function buildTree(root: string): void {
  mkdirSync(join(root, 'a/b/c'), { recursive: true });
  mkdirSync(join(root, 'private'), { mode: 0o700 });
  mkdirSync(join(root, 'empty-dir'));
  mkdirSync(join(root, 'boot'));
  mkdirSync(join(root, DEEP), { recursive: true });
  writeFileSync(join(root, DEEP, 'bottom'), 'at depth 21\n');
  writeFileSync(join(root, 'a/b/c/deep'), 'deep\n');
  writeFileSync(join(root, 'private/secret'), 's');
  writeFileSync(join(root, 'empty-file'), '');
  writeFileSync(join(root, 'one-sector'), Buffer.alloc(SECTOR_SIZE, 7));
  writeFileSync(join(root, 'big.bin'), randomBytes(3 * 1024 * 1024 + 3)); // several readFile chunks
  writeFileSync(join(root, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  writeFileSync(join(root, 'read-only'), 'r', { mode: 0o444 });
  writeFileSync(join(root, 'with space'), 'sp');
  writeFileSync(join(root, 'x'.repeat(250)), 'long name: NM continued in a CE area');
  writeFileSync(join(root, 'é'.repeat(127)), '254 bytes of UTF-8 name');
  writeFileSync(join(root, 'ünïcödé-名前.txt'), 'héllo');
  writeFileSync(join(root, '𝔸-astral'), 'outside the BMP: a surrogate pair in Joliet');
  writeFileSync(join(root, 'boot/boot.img'), randomBytes(4 * SECTOR_SIZE));
  symlinkSync('a/b/c/deep', join(root, 'link'));
  symlinkSync('/nonexistent/x/../y', join(root, 'abs'));
  symlinkSync('./../a/./b', join(root, 'dots'));
  symlinkSync('/', join(root, 'to-root'));
  symlinkSync(LONG_TARGET, join(root, 'long-target'));
  symlinkSync('a', join(root, 'dir-link'));
}

type Snap = Map<string, string>;

/** path → "dir", "link <target>" or "file <sha256>", of a directory on disk. */
function snapshotDisk(root: string): Snap {
  const out: Snap = new Map([['/', 'dir']]);
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const r = `${rel}/${name}`;
      const st = lstatSync(join(root, r));
      if (st.isDirectory()) {
        out.set(r, 'dir');
        walk(r);
      } else if (st.isSymbolicLink()) out.set(r, `link ${readlinkSync(join(root, r))}`);
      else out.set(r, `file ${createHash('sha256').update(readFileSync(join(root, r))).digest('hex')}`);
    }
  };
  walk('');
  return out;
}

/** The same from our reader, with contents through readFile. */
function snapshotIso(iso: Iso): Snap {
  const out: Snap = new Map();
  for (const e of iso.entries()) {
    if (e.type === 'dir') out.set(e.path, 'dir');
    else if (e.type === 'symlink') out.set(e.path, `link ${e.target}`);
    else {
      const h = createHash('sha256');
      let n = 0;
      for (const chunk of iso.readFile(e)) {
        h.update(chunk);
        n += chunk.length;
      }
      assert.equal(n, e.size, e.path);
      out.set(e.path, `file ${h.digest('hex')}`);
    }
  }
  return out;
}

/** What `xorriso -osirrox on -extract / DIR` makes of the image. */
function extractWithXorriso(t: TestContext, iso: string): Snap {
  const dir = join(tempDir(t), 'x');
  xorriso(['-osirrox', 'on', '-indev', iso, '-extract', '/', dir]);
  return snapshotDisk(dir);
}

function lsMode(mode: number): string {
  const type = ({ 0o040000: 'd', 0o120000: 'l', 0o100000: '-' } as Record<number, string>)[mode & 0o170000] ?? '?';
  let s = type;
  for (let shift = 6; shift >= 0; shift -= 3) {
    const p = (mode >> shift) & 7;
    s += (p & 4 ? 'r' : '-') + (p & 2 ? 'w' : '-') + (p & 1 ? 'x' : '-');
  }
  return s;
}

/** `xorriso -find / -exec lsdl`: path → "mode size [-> target]" (sizes of files only). */
function xorrisoListing(iso: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of xorriso(['-indev', iso, '-find', '/', '-exec', 'lsdl']).split('\n')) {
    if (line === '') continue;
    const m = /^(\S{10})\s+\d+\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\S+\s+\S+\s+'(.*?)'(?: -> '(.*)')?$/.exec(line);
    assert.ok(m, `unexpected lsdl line ${JSON.stringify(line)}`);
    const [, mode, size, path, target] = m;
    out.set(path!, `${mode} ${mode!.startsWith('-') ? size : ''}${target === undefined ? '' : ` -> ${target}`}`);
  }
  return out;
}

function ourListing(iso: Iso): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of iso.entries()) {
    out.set(e.path, `${lsMode(e.mode)} ${e.type === 'file' ? e.size : ''}${e.target === undefined ? '' : ` -> ${e.target}`}`);
  }
  return out;
}

function entryMap(iso: Iso): Map<string, IsoEntry> {
  return new Map([...iso.entries()].map((e) => [e.path, e]));
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i === 0 ? '/' : path.slice(0, i);
}

function assertEformat(fn: () => unknown, offset: number | undefined, why: RegExp): NixSealError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof NixSealError, `expected a NixSealError, got ${String(err)}`);
    assert.equal(err.code, 'EFORMAT', err.message);
    assert.match(err.message, why);
    assert.match(err.message, /^Cannot read .+: .+ at offset \d+$/);
    if (offset !== undefined) assert.equal(err.details.offset, offset, err.message);
    assert.ok(err.message.endsWith(`at offset ${err.details.offset}`));
    return err;
  }
  assert.fail(`expected EFORMAT ${why}`);
}

// -----------------------------------------------------------------------------------------------
// Real images made by xorriso

test('Rock Ridge + Joliet: the listing, modes, symlinks and contents are what xorriso sees', (t) => {
  if (!requireTools(t, 'xorriso')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  buildTree(tree);
  const path = mkiso(join(dir, 'rr.iso'), tree, ['-R', '-J']);
  const iso = openFile(t, path);
  assert.equal(iso.names, 'rock-ridge');
  assert.ok(iso.rockRidge && iso.joliet);
  assert.equal(iso.blockSize, 2048);
  assert.deepEqual(
    iso.volumeDescriptors.map((v) => v.type),
    ['primary', 'joliet', 'terminator'],
  );

  assert.deepEqual(ourListing(iso), xorrisoListing(path));
  assert.deepEqual(snapshotIso(iso), snapshotDisk(tree));
  assert.deepEqual(snapshotIso(iso), extractWithXorriso(t, path));

  const byPath = entryMap(iso);
  assert.equal(byPath.get('/long-target')?.target, LONG_TARGET);
  assert.equal(byPath.get('/dots')?.target, './../a/./b');
  assert.equal(byPath.get('/to-root')?.target, '/');
  assert.equal(byPath.get('/' + 'x'.repeat(250))?.type, 'file');
  assert.equal(byPath.get(`/${DEEP}/bottom`)?.size, 12);
  assert.equal(byPath.get('/private')?.mode, 0o040700);
  assert.equal(byPath.get('/run.sh')?.mode, 0o100755);
  assert.deepEqual(byPath.get('/empty-file')?.extents, []);
  assert.equal(byPath.get('/big.bin')?.extents.length, 1);
  assert.equal([...iso.readFile(byPath.get('/big.bin')!)].length, 4, 'read in 1 MiB chunks');
});

test('plain ISO 9660 (--norock): level-1 names without ";1", mode 0555, no symlinks', (t) => {
  if (!requireTools(t, 'xorriso')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  buildTree(tree);
  // xorriso -as mkisofs writes Rock Ridge even without -R: --norock is what turns it off.
  const path = mkiso(join(dir, 'plain.iso'), tree, ['--norock']);
  const iso = openFile(t, path);
  assert.equal(iso.names, 'iso9660');
  assert.ok(!iso.rockRidge && !iso.joliet);
  assert.deepEqual(ourListing(iso), xorrisoListing(path));
  assert.deepEqual(snapshotIso(iso), extractWithXorriso(t, path));
  const byPath = entryMap(iso);
  assert.equal(byPath.get('/A/B/C/DEEP')?.mode, 0o100555);
  assert.equal(byPath.get('/A')?.mode, 0o040555);
  assert.ok(![...byPath.values()].some((e) => e.type === 'symlink'), 'symlinks cannot be recorded without Rock Ridge');
});

test('Joliet without Rock Ridge: UCS-2 names (UTF-16 surrogate pairs too), as xorriso sees them', (t) => {
  if (!requireTools(t, 'xorriso')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  buildTree(tree);
  // Strict UCS-2 by default: a character outside the BMP becomes "_" (with a warning).
  const ucs2 = mkiso(join(dir, 'ucs2.iso'), tree, ['--norock', '-J']);
  const ucs2Iso = openFile(t, ucs2);
  assert.deepEqual(ourListing(ucs2Iso), xorrisoListing(ucs2));
  assert.ok([...ucs2Iso.entries()].some((e) => e.path === '/_-astral'));
  const path = mkiso(join(dir, 'joliet.iso'), tree, ['--norock', '-J', '-joliet-utf16']);
  const iso = openFile(t, path);
  assert.equal(iso.names, 'joliet');
  assert.deepEqual(ourListing(iso), xorrisoListing(path));
  assert.deepEqual(snapshotIso(iso), extractWithXorriso(t, path));
  const paths = [...iso.entries()].map((e) => e.path);
  assert.ok(paths.includes('/ünïcödé-名前.txt'));
  assert.ok(paths.includes('/𝔸-astral'));
  assert.ok(paths.includes('/' + 'x'.repeat(64)), 'Joliet names are cut to 64 characters');
});

test('isoinfo (genisoimage) agrees: Rock Ridge names, raw ISO 9660 identifiers, Joliet names', (t) => {
  if (!requireTools(t, 'xorriso', 'isoinfo')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  buildTree(tree);
  const isoinfo = (args: string[], encoding: BufferEncoding): string[] =>
    execFileSync('isoinfo', [...args, '-f'], { encoding, maxBuffer: 1 << 26 })
      .split('\n')
      .filter((l) => l !== '');
  const paths = (iso: Iso): string[] => [...iso.entries()].map((e) => e.path).filter((p) => p !== '/');

  const rr = mkiso(join(dir, 'rr.iso'), tree, ['-R']);
  assert.deepEqual(paths(openFile(t, rr)).sort(), isoinfo(['-R', '-i', rr], 'utf8').sort());

  // isoinfo shows the raw identifiers: "DEEP.;1" is our "DEEP".
  const plain = mkiso(join(dir, 'plain.iso'), tree, ['--norock']);
  const raw = isoinfo(['-i', plain], 'latin1').map((l) => l.replace(/;\d+$/, '').replace(/(?<=[^/])\.$/, ''));
  assert.deepEqual(paths(openFile(t, plain)).sort(), raw.sort());

  // isoinfo prints Joliet names in ISO 8859-1, with "_" for each UTF-16 unit that has no Latin-1 character.
  const joliet = mkiso(join(dir, 'joliet.iso'), tree, ['--norock', '-J', '-joliet-utf16']);
  assert.deepEqual(
    paths(openFile(t, joliet))
      .map((p) => p.replace(/[^\x00-\xff]/g, '_'))
      .sort(),
    isoinfo(['-J', '-i', joliet], 'latin1').sort(),
  );
});

test('El Torito: boot catalog, BIOS and EFI entries as xorriso reports them; locate finds catalog and images', (t) => {
  if (!requireTools(t, 'xorriso')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  buildTree(tree);
  const efi = join(dir, 'efi.img');
  writeFileSync(efi, randomBytes(64 * 1024));
  const path = mkiso(join(dir, 'boot.iso'), tree, [
    '-R', '-J',
    '-b', 'boot/boot.img', '-no-emul-boot', '-boot-load-size', '4',
    '-eltorito-alt-boot',
    // The EFI image only as an appended partition, not a file in the tree (as Debian's ISOs do).
    '-append_partition', '2', '0xef', efi, '-e', '--interval:appended_partition_2:all::', '-no-emul-boot',
  ]);
  const iso = openFile(t, path);
  assert.deepEqual(iso.volumeDescriptors.map((v) => v.type), ['primary', 'boot-record', 'joliet', 'terminator']);
  const cat = iso.bootCatalog;
  assert.ok(cat);

  // "El Torito boot img :   1  BIOS  y   none  0x0000  0x00      4          37"
  const report = xorriso(['-indev', path, '-report_el_torito', 'plain']);
  const images = [...report.matchAll(/^El Torito boot img :\s+(\d+)\s+(\S+)\s+(\S)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)\s+(\d+)$/gm)];
  assert.equal(images.length, 2);
  assert.deepEqual(
    cat.entries.map((e) => ({ platform: e.platform, bootable: e.bootable, mediaType: e.mediaType, sectorCount: e.sectorCount, lba: e.lba })),
    images.map((m) => ({ platform: m[2] === 'UEFI' ? 0xef : 0, bootable: m[3] === 'y', mediaType: 0, sectorCount: Number(m[7]), lba: Number(m[8]) })),
  );
  const catLba = /^El Torito catalog\s+:\s+(\d+)/m.exec(report);
  assert.equal(cat.offset, Number(catLba?.[1]) * SECTOR_SIZE);

  assert.deepEqual(iso.locate(cat.offset), { kind: 'boot-catalog' });
  assert.deepEqual(iso.locate(cat.offset + 40), { kind: 'boot-catalog' });
  const bios = cat.entries[0]!;
  const bootImg = entryMap(iso).get('/boot/boot.img')!;
  assert.equal(bios.offset, bootImg.extents[0]?.offset, 'the BIOS entry points at the file');
  assert.deepEqual(iso.locate(bios.offset + 10), { kind: 'file', path: '/boot/boot.img', offsetInFile: 10 });
  const uefi = cat.entries[1]!;
  assert.ok(uefi.offset >= iso.volumeSize, 'the appended partition is after the ISO volume');
  assert.deepEqual(iso.locate(uefi.offset), { kind: 'boot-image' });
  assert.deepEqual(iso.locate(uefi.offset + uefi.length - 1), { kind: 'boot-image' });
  const partition = readFileSync(path).subarray(uefi.offset, uefi.offset + uefi.length);
  assert.ok(partition.equals(readFileSync(efi)));
});

test('locate: file data, directory records, descriptors, system area, path tables, continuation areas', (t) => {
  if (!requireTools(t, 'xorriso')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(tree);
  buildTree(tree);
  const path = mkiso(join(dir, 'rr.iso'), tree, ['-R', '-J']);
  const iso = openFile(t, path);
  const image = readFileSync(path);

  assert.deepEqual(iso.locate(0), { kind: 'system-area' });
  assert.deepEqual(iso.locate(SYSTEM_AREA_SIZE - 1), { kind: 'system-area' });
  assert.deepEqual(iso.locate(SYSTEM_AREA_SIZE), { kind: 'volume-descriptor', type: 'primary' });
  assert.deepEqual(iso.locate(SYSTEM_AREA_SIZE + 2 * SECTOR_SIZE + 5), { kind: 'volume-descriptor', type: 'terminator' });
  // xorriso pads the image with 300 KiB of zeros by default.
  assert.deepEqual(iso.locate(iso.size - 1), { kind: 'unallocated' });

  for (const e of iso.entries()) {
    if (e.path !== '/') {
      const owner = { kind: 'dirrecord', dir: parentOf(e.path), entryName: e.name, tree: 'iso9660' };
      assert.deepEqual(iso.locate(e.recordOffset), owner, e.path);
      assert.deepEqual(iso.locate(e.recordOffset + DR_FIELD.name), owner, e.path);
      assert.ok(image[e.recordOffset]! >= 34);
    }
    if (e.type === 'dir') {
      assert.deepEqual(iso.locate(e.extents[0]!.offset), { kind: 'dirrecord', dir: e.path, entryName: '.', tree: 'iso9660' });
    }
    if (e.type !== 'file') continue;
    let base = 0;
    for (const x of e.extents) {
      for (const d of [0, x.length >> 1, x.length - 1]) {
        assert.deepEqual(iso.locate(x.offset + d), { kind: 'file', path: e.path, offsetInFile: base + d }, e.path);
      }
      base += x.length;
    }
  }

  // Every byte belongs to something; the structures xorriso writes are all there.
  const kinds = new Map<string, number>();
  for (let o = 0; o < iso.size; o += 32) {
    const k = iso.locate(o).kind;
    kinds.set(k, (kinds.get(k) ?? 0) + 1);
  }
  for (const k of ['system-area', 'volume-descriptor', 'path-table', 'continuation-area', 'dirrecord', 'file', 'unallocated']) {
    assert.ok(kinds.has(k), `no ${k} in ${JSON.stringify([...kinds])}`);
  }
  // The Joliet hierarchy's records are located too.
  let joliet = 0;
  for (let o = 0; o < iso.size; o += 32) {
    const w = iso.locate(o);
    if (w.kind === 'dirrecord' && w.tree === 'joliet') joliet++;
  }
  assert.ok(joliet > 0);

  for (const bad of [-1, iso.size, 0.5, Number.NaN]) {
    assert.throws(() => iso.locate(bad), (err: unknown) => err instanceof NixSealError && err.code === 'EUSAGE');
  }
});

test('deep directories: relocated ones (CL/RE) are where xorriso shows them; the depth budget holds', (t) => {
  if (!requireTools(t, 'xorriso')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, DEEP), { recursive: true });
  writeFileSync(join(tree, DEEP, 'bottom'), 'b');
  // xorriso -as mkisofs keeps deep directories in place (beyond ECMA-119's 8 levels) unless told otherwise.
  const reloc = join(dir, 'reloc.iso');
  xorriso(['-compliance', 'deep_paths_off', '-as', 'mkisofs', '-R', '-o', reloc, tree]);
  const iso = openFile(t, reloc);
  assert.deepEqual(ourListing(iso), xorrisoListing(reloc));
  assert.ok(entryMap(iso).has(`/${DEEP}/bottom`));
  // The relocated directories' records (RE) are in the root directory, which does not list them
  // (isoinfo -R does: it ignores RE).
  const root = entryMap(iso).get('/')!.extents[0]!;
  const inRoot = new Set<string>();
  for (let o = root.offset; o < root.offset + root.length; o++) {
    const w = iso.locate(o);
    if (w.kind === 'dirrecord') inRoot.add(w.entryName);
  }
  const moved = [...inRoot].filter((n) => /^d[1-9]/.test(n));
  assert.ok(moved.length >= 1, `records in the root: ${[...inRoot].join(' ')}`);
  for (const n of moved) assert.ok(!entryMap(iso).has(`/${n}`), n);

  const deeper = join(dir, 'deeper');
  const levels = Array.from({ length: 70 }, () => 'z').join('/');
  mkdirSync(join(deeper, levels), { recursive: true });
  const path = mkiso(join(dir, 'deep.iso'), deeper, ['-R']);
  assertEformat(() => openFile(t, path).entries(), undefined, /nested more than 64 deep/);
  assert.equal([...openFile(t, path, { maxDepth: 100 }).entries()].length, 71);
});

// -----------------------------------------------------------------------------------------------
// Hand-made images: what xorriso cannot be asked to write

interface Rec {
  name: string | Uint8Array;
  lba: number;
  length: number;
  flags?: number;
  su?: Uint8Array;
  ear?: number;
  unit?: number;
}

function dirRecord(r: Rec): Buffer {
  const name = typeof r.name === 'string' ? Buffer.from(r.name, 'latin1') : Buffer.from(r.name);
  const su = r.su ?? new Uint8Array(0);
  const pad = name.length % 2 === 0 ? 1 : 0;
  let len = 33 + name.length + pad + su.length;
  len += len % 2;
  const b = Buffer.alloc(len);
  b[0] = len;
  b[1] = r.ear ?? 0;
  b.writeUInt32LE(r.lba, 2);
  b.writeUInt32BE(r.lba, 6);
  b.writeUInt32LE(r.length, 10);
  b.writeUInt32BE(r.length, 14);
  b.set([124, 1, 1, 0, 0, 0, 0], 18);
  b[25] = r.flags ?? 0;
  b[26] = r.unit ?? 0;
  b.writeUInt16LE(1, 28);
  b.writeUInt16BE(1, 30);
  b[32] = name.length;
  name.copy(b, 33);
  b.set(su, 33 + name.length + pad);
  return b;
}

/** Records packed into sectors, none crossing a sector boundary. */
function dirExtent(records: Rec[]): Buffer {
  const sectors: Buffer[] = [];
  let cur = Buffer.alloc(SECTOR_SIZE);
  let at = 0;
  for (const r of records) {
    const b = dirRecord(r);
    if (at + b.length > SECTOR_SIZE) {
      sectors.push(cur);
      cur = Buffer.alloc(SECTOR_SIZE);
      at = 0;
    }
    b.copy(cur, at);
    at += b.length;
  }
  sectors.push(cur);
  return Buffer.concat(sectors);
}

/** A SUSP entry. */
function su(sig: string, version: number, body: number[] | Uint8Array): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b.write(sig, 0, 'latin1');
  b[2] = b.length;
  b[3] = version;
  b.set(body, 4);
  return b;
}
function both32(v: number): number[] {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(v, 0);
  b.writeUInt32BE(v, 4);
  return [...b];
}
const SP = su('SP', 1, [0xbe, 0xef, 0]);
const ER = su('ER', 1, [10, 0, 0, 1, ...Buffer.from('RRIP_1991A')]);
const px = (mode: number): Buffer => su('PX', 1, [...both32(mode), ...both32(1), ...both32(0), ...both32(0)]);
const nm = (flags: number, name: string): Buffer => su('NM', 1, [flags, ...Buffer.from(name)]);
const ce = (lba: number, offset: number, length: number): Buffer => su('CE', 1, [...both32(lba), ...both32(offset), ...both32(length)]);

/**
 * An image: system area, primary descriptor (sector 16), terminator (17), then `sectors` as given
 * (the root directory at `rootLba`).
 */
function craftIso(sectors: Map<number, Uint8Array>, rootLba: number, rootLength: number, total = 0): Buffer {
  let n = Math.max(total, 18);
  for (const [k, v] of sectors) n = Math.max(n, k + Math.ceil(v.length / SECTOR_SIZE));
  const img = Buffer.alloc(n * SECTOR_SIZE);
  const pvd = img.subarray(16 * SECTOR_SIZE, 17 * SECTOR_SIZE);
  pvd[0] = 1;
  pvd.write('CD001', 1, 'latin1');
  pvd[6] = 1;
  pvd.write('CRAFTED'.padEnd(32), 40, 'latin1');
  pvd.set(both32(img.length / SECTOR_SIZE), 80);
  pvd.writeUInt16LE(SECTOR_SIZE, 128);
  pvd.writeUInt16BE(SECTOR_SIZE, 130);
  dirRecord({ name: '\0', lba: rootLba, length: rootLength, flags: 2 }).copy(pvd, 156);
  const term = img.subarray(17 * SECTOR_SIZE);
  term[0] = 255;
  term.write('CD001', 1, 'latin1');
  term[6] = 1;
  for (const [k, v] of sectors) img.set(v, k * SECTOR_SIZE);
  return img;
}

/** The same base used by tests and the fuzzer: multi-extent, Rock Ridge with CE, NM pieces and SL. */
function craftedRockRidge(): Buffer {
  const data = Buffer.from('A'.repeat(2048) + 'B'.repeat(2048) + 'C'.repeat(100));
  const slBody = (flags: number, comps: [number, string][]): number[] => [flags, ...comps.flatMap(([f, s]) => [f, Buffer.byteLength(s), ...Buffer.from(s)])];
  const root = dirExtent([
    { name: '\0', lba: 18, length: 2048, flags: 2, su: Buffer.concat([SP, ce(21, 0, ER.length), px(0o040755)]) },
    { name: '\x01', lba: 18, length: 2048, flags: 2 },
    // BIG: three records, the middle extent stored last on the image.
    { name: 'BIG.;1', lba: 22, length: 2048, flags: 0x80, su: nm(0, 'big') },
    { name: 'BIG.;1', lba: 23, length: 2048, flags: 0x80 },
    { name: 'BIG.;1', lba: 24, length: 100, flags: 0 },
    { name: 'D', lba: 19, length: 2048, flags: 2, su: Buffer.concat([nm(1, 'a-dir'), nm(1, '-with-'), nm(0, 'a-long-name'), px(0o040700)]) },
    // A name continued in a continuation area.
    { name: 'LONG.;1', lba: 25, length: 3, su: Buffer.concat([nm(1, 'n'.repeat(100)), ce(21, 256, 64), px(0o100644)]) },
    // A symlink whose target spans two SL entries, a component continued across them.
    {
      name: 'SL.;1',
      lba: 0,
      length: 0,
      su: Buffer.concat([
        px(0o120777),
        su('SL', 1, slBody(1, [[8, ''], [0, 'usr'], [1, 'sha']])),
        su('SL', 1, slBody(0, [[0, 're'], [4, ''], [2, ''], [0, 'x']])),
      ]),
    },
  ]);
  const d = dirExtent([
    { name: '\0', lba: 19, length: 2048, flags: 2 },
    { name: '\x01', lba: 18, length: 2048, flags: 2 },
    { name: 'F.;1', lba: 25, length: 3 },
  ]);
  const ceArea = Buffer.alloc(SECTOR_SIZE);
  ER.copy(ceArea, 0);
  Buffer.concat([nm(0, 'x'.repeat(40))]).copy(ceArea, 256);
  return craftIso(
    new Map<number, Uint8Array>([
      [18, root],
      [19, d],
      [21, ceArea],
      [22, data.subarray(0, 2048)],
      [23, data.subarray(2048, 4096)],
      [24, data.subarray(4096)],
      [25, Buffer.from('abc')],
    ]),
    18,
    2048,
    26,
  );
}

test('hand-made image: multi-extent file, NM pieces, NM continued in a CE area, SL components', () => {
  const img = craftedRockRidge();
  const iso = openIso(new BufferSource(img), 'crafted.iso');
  assert.equal(iso.names, 'rock-ridge');
  const byPath = entryMap(iso);
  const big = byPath.get('/big')!;
  assert.equal(big.size, 4196);
  assert.deepEqual(big.extents, [
    { offset: 22 * SECTOR_SIZE, length: 2048 },
    { offset: 23 * SECTOR_SIZE, length: 2048 },
    { offset: 24 * SECTOR_SIZE, length: 100 },
  ]);
  assert.equal(Buffer.concat([...iso.readFile(big)]).toString(), 'A'.repeat(2048) + 'B'.repeat(2048) + 'C'.repeat(100));
  assert.deepEqual(iso.locate(23 * SECTOR_SIZE + 5), { kind: 'file', path: '/big', offsetInFile: 2048 + 5 });
  assert.deepEqual(iso.locate(24 * SECTOR_SIZE + 99), { kind: 'file', path: '/big', offsetInFile: 4195 });
  assert.deepEqual(iso.locate(24 * SECTOR_SIZE + 100), { kind: 'unallocated' });
  const bigRecord = big.recordOffset;
  assert.deepEqual(iso.locate(bigRecord + 40), { kind: 'dirrecord', dir: '/', entryName: 'big', tree: 'iso9660' });
  assert.deepEqual(iso.locate(21 * SECTOR_SIZE), { kind: 'continuation-area' });
  assert.deepEqual(iso.locate(21 * SECTOR_SIZE + 300), { kind: 'continuation-area' });
  assert.deepEqual(iso.locate(21 * SECTOR_SIZE + 400), { kind: 'unallocated' });

  assert.deepEqual(byPath.get('/a-dir-with-a-long-name')?.mode, 0o040700);
  assert.equal(byPath.get('/a-dir-with-a-long-name/F')?.size, 3, 'no Rock Ridge name: the ISO name');
  assert.ok(byPath.has('/' + 'n'.repeat(100) + 'x'.repeat(40)));
  assert.equal(byPath.get('/SL')?.type, 'symlink');
  assert.equal(byPath.get('/SL')?.target, '/usr/share/.././x', 'ROOT, "sha"+"re" glued by CONTINUE, PARENT, CURRENT');
  assert.equal(byPath.get('/')?.mode, 0o040755);
});

/** The crafted image with one change to the root directory sector. */
function withRoot(records: Rec[], more: [number, Uint8Array][] = []): Buffer {
  const img = craftedRockRidge();
  Buffer.alloc(SECTOR_SIZE).copy(img, 18 * SECTOR_SIZE);
  dirExtent(records).copy(img, 18 * SECTOR_SIZE);
  for (const [k, v] of more) img.set(v, k * SECTOR_SIZE);
  return img;
}
const DOTS: Rec[] = [
  { name: '\0', lba: 18, length: 2048, flags: 2 },
  { name: '\x01', lba: 18, length: 2048, flags: 2 },
];
const ROOT = 18 * SECTOR_SIZE;
const open = (img: Uint8Array, limits?: Partial<IsoLimits>): Iso => openIso(new BufferSource(img), 'bad.iso', limits);
const list = (img: Uint8Array, limits?: Partial<IsoLimits>): IsoEntry[] => [...open(img, limits).entries()];

test('hand-made image: empty directories sharing block 0 are not a loop; extended attribute records are skipped', () => {
  const img = withRoot([
    ...DOTS,
    { name: 'E1', lba: 0, length: 0, flags: 2 },
    { name: 'E2', lba: 0, length: 0, flags: 2 },
    { name: 'EAR.;1', lba: 24, length: 3, ear: 1 }, // data one block after the extent's start
  ]);
  img.write('xyz', 25 * SECTOR_SIZE, 'latin1');
  const byPath = entryMap(open(img));
  assert.deepEqual(byPath.get('/E1')?.extents, []);
  assert.equal(byPath.get('/E2')?.type, 'dir');
  const ear = byPath.get('/EAR')!;
  assert.deepEqual(ear.extents, [{ offset: 25 * SECTOR_SIZE, length: 3 }]);
  assert.equal(Buffer.concat([...open(img).readFile(ear)]).toString(), 'xyz');
});

test('a sparse image of 5 GiB read through a file descriptor: offsets past 4 GiB, nothing read whole', (t) => {
  const far = 2_700_000; // block 2.7 M: byte offset 5.15 GiB, past what 32-bit arithmetic holds
  const img = withRoot([
    ...DOTS,
    { name: 'FAR.;1', lba: 22, length: 2048, flags: 0x80 },
    { name: 'FAR.;1', lba: far, length: 5 },
  ]);
  const path = join(tempDir(t), 'sparse.iso');
  writeFileSync(path, img);
  const fd = openSync(path, 'r+');
  try {
    writeSync(fd, 'hello', far * SECTOR_SIZE);
    ftruncateSync(fd, (far + 1) * SECTOR_SIZE);
  } finally {
    closeSync(fd);
  }
  const iso = openFile(t, path);
  assert.equal(iso.size, (far + 1) * SECTOR_SIZE);
  const file = entryMap(iso).get('/FAR')!;
  assert.equal(file.size, 2048 + 5);
  assert.deepEqual(file.extents[1], { offset: far * SECTOR_SIZE, length: 5 });
  assert.equal(Buffer.concat([...iso.readFile(file)]).toString(), 'A'.repeat(2048) + 'hello');
  assert.deepEqual(iso.locate(far * SECTOR_SIZE + 4), { kind: 'file', path: '/FAR', offsetInFile: 2052 });
  assert.deepEqual(iso.locate(far * SECTOR_SIZE + 5), { kind: 'unallocated' });
  assert.deepEqual(iso.locate(2 ** 32 + 1), { kind: 'unallocated' });
  assert.equal(withIsoFile(path, (i) => [...i.entries()].length), 2);
  assert.throws(() => withIsoFile(join(dirname(path), 'missing.iso'), () => 0), (err: unknown) => err instanceof NixSealError && err.code === 'EIO' && /no such file/.test(err.message));
});

test('corrupt images: EFORMAT naming the offset, never a hang or a TypeError', () => {
  // A directory whose record points back at the root.
  assertEformat(() => list(withRoot([...DOTS, { name: 'LOOP', lba: 18, length: 2048, flags: 2 }])), ROOT + 68, /directory loop/);
  // Two names for one directory.
  assertEformat(
    () => list(withRoot([...DOTS, { name: 'A', lba: 19, length: 2048, flags: 2 }, { name: 'B', lba: 19, length: 2048, flags: 2 }])),
    ROOT + 68 + 34,
    /directory loop/,
  );
  // A multi-extent file whose last record is missing, or interrupted by another name.
  assertEformat(() => list(withRoot([...DOTS, { name: 'M', lba: 22, length: 2048, flags: 0x80 }])), ROOT + 68, /multi-extent file without its final record/);
  assertEformat(
    () => list(withRoot([...DOTS, { name: 'M', lba: 22, length: 2048, flags: 0x80 }, { name: 'N', lba: 23, length: 1 }])),
    ROOT + 68,
    /multi-extent/,
  );
  // An extent past the end of the image: the record is blamed.
  assertEformat(() => list(withRoot([...DOTS, { name: 'F', lba: 25, length: 4096 }])), ROOT + 68, /extends beyond the end of the image/);
  assertEformat(() => list(withRoot([...DOTS, { name: 'F', lba: 0xffffffff, length: 1 }])), ROOT + 68, /extends beyond/);
  // A record claiming more bytes than its sector holds.
  const crossing = withRoot([...DOTS, { name: 'FILE', lba: 25, length: 3 }]);
  crossing.writeUInt32LE(100, 16 * SECTOR_SIZE + 156 + DR_FIELD.dataLength); // the root's size, in the descriptor
  assertEformat(() => list(crossing), ROOT + 68, /crosses the end of its sector or extent/);
  // Too short, and an empty name.
  const short = withRoot(DOTS);
  short[ROOT + 68] = 10;
  assertEformat(() => list(short), ROOT + 68, /less than 34/);
  // A continuation area that continues to itself.
  const ceLoop = withRoot([{ ...DOTS[0]!, su: Buffer.concat([SP, ce(21, 0, ER.length), px(0o040755)]) }, DOTS[1]!, { name: 'F', lba: 25, length: 3, su: ce(21, 512, 28) }], [
    [21, (() => { const b = Buffer.alloc(SECTOR_SIZE); ER.copy(b); ce(21, 512, 28).copy(b, 512); return b; })()],
  ]);
  assertEformat(() => list(ceLoop), 21 * SECTOR_SIZE + 512, /more than 32 continuation areas/);
  // A continuation area crossing its block.
  const ceCross = withRoot([{ ...DOTS[0]!, su: Buffer.concat([SP, ce(21, 0, ER.length)]) }, DOTS[1]!, { name: 'F', lba: 25, length: 3, su: ce(21, 2040, 28) }]);
  assertEformat(() => list(ceCross), undefined, /crosses its logical block/);
  // A System Use entry of length 0 (a reader that trusts it loops forever).
  const zeroLen = withRoot([{ ...DOTS[0]!, su: Buffer.concat([SP, ce(21, 0, ER.length)]) }, DOTS[1]!, { name: 'F', lba: 25, length: 3, su: Buffer.from('NM\x00\x01') }]);
  assertEformat(() => list(zeroLen), undefined, /System Use entry "NM" of 0 bytes/);
  // Names that would escape the directory.
  for (const bad of ['..', '.', 'a/b']) {
    const img = withRoot([{ ...DOTS[0]!, su: Buffer.concat([SP, ce(21, 0, ER.length)]) }, DOTS[1]!, { name: 'F', lba: 25, length: 3, su: nm(0, bad) }]);
    assertEformat(() => list(img), undefined, /unusable file name/);
  }
  // Budgets.
  assertEformat(() => list(craftedRockRidge(), { maxEntries: 3 }), undefined, /more than 3 directory records/);
  assertEformat(() => list(craftedRockRidge(), { maxDepth: 0 }), undefined, /nested more than 0 deep/);
  // Interleaved files are refused.
  assertEformat(() => list(withRoot([...DOTS, { name: 'I', lba: 22, length: 100, unit: 1 }])), ROOT + 68, /interleaved/);
  // Volume descriptors.
  const noCd = craftedRockRidge();
  noCd.write('XXXXX', 16 * SECTOR_SIZE + 1, 'latin1');
  assertEformat(() => open(noCd), 16 * SECTOR_SIZE, /not an ISO 9660 image/);
  const noTerm = craftedRockRidge();
  noTerm[17 * SECTOR_SIZE] = 2;
  assertEformat(() => open(noTerm), undefined, /volume descriptor/);
  const blockSize = craftedRockRidge();
  blockSize.writeUInt16LE(3, 16 * SECTOR_SIZE + 128);
  assertEformat(() => open(blockSize), 16 * SECTOR_SIZE + 128, /logical block size 3/);
  assertEformat(() => open(craftedRockRidge().subarray(0, 17 * SECTOR_SIZE)), undefined, /ends before the volume descriptor set terminator/);
  assertEformat(() => open(Buffer.alloc(100)), undefined, /too small/);
  // Directories overlapping one another (each its own start, so no loop): without a bound on the
  // bytes read, n directories of the image's size cost n times the image.
  const big = Buffer.concat([craftedRockRidge(), Buffer.alloc(200 * SECTOR_SIZE)]);
  dirExtent([...DOTS, ...Array.from({ length: 40 }, (_, k): Rec => ({ name: `D${k}`, lba: 19 + k, length: (200 - k) * SECTOR_SIZE, flags: 2 }))]).copy(big, ROOT);
  for (let k = 19; k < 60; k++) dirExtent(DOTS).copy(big, k * SECTOR_SIZE);
  const src = new CountingSource(big);
  assertEformat(() => [...openIso(src, 'bad.iso').entries()], undefined, /directory extents add up to more than the image/);
  // The bound is on bytes read, not time: at most about the image once over, not once per directory.
  assert.ok(src.bytesRead <= 2 * big.length, `read ${src.bytesRead} bytes of a ${big.length}-byte image`);
  // Truncated after the descriptors: the root directory is gone.
  assertEformat(() => list(craftedRockRidge().subarray(0, 18 * SECTOR_SIZE + 100)), 16 * SECTOR_SIZE + 156, /root directory/);
});

// -----------------------------------------------------------------------------------------------
// Fuzzing

/** Opens, lists, reads and locates; returns the error code and offset, or "ok". Throws anything else. */
function exercise(bytes: Uint8Array, probes: number[]): { outcome: 'ok'; entries: number } | { outcome: 'EFORMAT'; offset: number; message: string } {
  try {
    const iso = openIso(new BufferSource(bytes), 'fuzz.iso');
    let entries = 0;
    for (const e of iso.entries()) {
      entries++;
      let got = 0;
      for (const chunk of iso.readFile(e)) got += chunk.length;
      assert.equal(got, e.extents.reduce((s, x) => s + x.length, 0));
      for (const x of e.extents) assert.ok(x.offset >= 0 && x.offset + x.length <= bytes.length);
    }
    for (const p of probes) if (p < bytes.length) iso.locate(p);
    return { outcome: 'ok', entries };
  } catch (err) {
    if (!(err instanceof NixSealError) || err.code !== 'EFORMAT') throw err;
    const offset = err.details.offset;
    assert.ok(typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0, err.message);
    assert.ok(offset <= bytes.length, `the blamed offset ${offset} is outside the ${bytes.length}-byte image: ${err.message}`);
    assert.ok(err.message.endsWith(` at offset ${offset}`), err.message);
    assert.equal(err.details.path, 'fuzz.iso');
    return { outcome: 'EFORMAT', offset, message: err.message };
  }
}

interface Mutation {
  edits: { at: number; value: number; width: 1 | 2 | 4 }[];
  length?: number | undefined;
}

function mutate(base: Buffer, m: Mutation): Buffer {
  const out = Buffer.from(base);
  for (const e of m.edits) {
    if (e.at + e.width > out.length) continue;
    if (e.width === 1) out[e.at] = e.value & 0xff;
    else if (e.width === 2) out.writeUInt16LE(e.value & 0xffff, e.at);
    else out.writeUInt32LE(e.value >>> 0, e.at);
  }
  if (m.length === undefined) return out;
  if (m.length <= out.length) return out.subarray(0, m.length);
  return Buffer.concat([out, Buffer.alloc(m.length - out.length)]);
}

/**
 * Mutations aimed at the structures: anywhere among the descriptors, directories, continuation
 * areas and boot catalog, and at the fields of the image's directory records in particular, with
 * values that are other directories' blocks (the way to make loops and overlaps).
 */
function mutations(base: Buffer, hot: [number, number]): fc.Arbitrary<Mutation> {
  const size = base.length;
  const iso = openIso(new BufferSource(base), 'base.iso');
  const entries = [...iso.entries()];
  const records = entries.map((e) => e.recordOffset);
  // Truncation points: just around the starts of structures.
  const cuts = [...records, SYSTEM_AREA_SIZE, ...iso.volumeDescriptors.map((v) => v.offset)];
  if (iso.bootCatalog) cuts.push(iso.bootCatalog.offset, ...iso.bootCatalog.entries.map((e) => e.entryOffset));
  const dirBlocks = entries.filter((e) => e.type === 'dir').map((e) => Math.floor(e.extents[0]!.offset / SECTOR_SIZE));
  const fields = [DR_FIELD.length, DR_FIELD.extAttrLength, DR_FIELD.extent, DR_FIELD.dataLength, DR_FIELD.flags, DR_FIELD.fileUnitSize, DR_FIELD.nameLength, DR_FIELD.name, 34, 35, 36, 40];
  const at = fc.oneof(
    { weight: 6, arbitrary: fc.integer({ min: hot[0], max: hot[1] - 1 }) },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...records), fc.constantFrom(...fields)).map(([r, f]) => r + f) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: size - 1 }) },
  );
  const value = fc.oneof(
    fc.constantFrom(0, 1, 2, 0x22, 0x44, 0x7f, 0x80, 0x82, 0x88, 0x90, 0x91, 0xfe, 0xff, 0xffff, 0xffffffff, size >>> 11, (size >>> 11) + 1, 16, 17, ...dirBlocks),
    fc.integer({ min: 0, max: 0xff }),
    fc.integer({ min: 0, max: 0xffffffff }),
  );
  return fc.record(
    {
      edits: fc.array(fc.record({ at, value, width: fc.constantFrom<1 | 2 | 4>(1, 1, 1, 2, 4) }), { minLength: 1, maxLength: 6 }),
      length: fc.oneof(
        { weight: 8, arbitrary: fc.constant(undefined) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: size + 3 * SECTOR_SIZE }) },
        { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...cuts), fc.integer({ min: -2, max: 40 })).map(([c, d]) => Math.max(0, c + d)) },
      ),
    },
    { requiredKeys: ['edits'] },
  );
}

/** ISO_FUZZ_RUNS scales the runs (a longer campaign); FC_SEED replays one (test/support/property.ts). */
const FUZZ_SCALE = Number(process.env.ISO_FUZZ_RUNS ?? 1);

function fuzz(t: TestContext, base: Buffer, hot: [number, number], numRuns: number): void {
  const probes = [0, SYSTEM_AREA_SIZE, hot[0], hot[0] + 777, (hot[0] + hot[1]) >> 1, hot[1] - 1, base.length - 1];
  assert.equal(exercise(base, probes).outcome, 'ok');
  const outcomes = new Map<string, number>();
  let slowest = 0;
  fc.assert(
    fc.property(mutations(base, hot), (m) => {
      const bytes = mutate(base, m);
      const t0 = performance.now();
      const r = exercise(bytes, [...probes, ...m.edits.map((e) => e.at)]);
      const ms = performance.now() - t0; // reported, not asserted: a loaded machine is slow
      slowest = Math.max(slowest, ms);
      const key = r.outcome === 'ok' ? 'ok' : r.message.replace(/^Cannot read fuzz.iso: /, '').replace(/\d+/g, 'N');
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    }),
    seeded({ numRuns: Math.round(numRuns * FUZZ_SCALE) }),
  );
  // Most mutants should get somewhere: a fuzzer stopped at the first check tests nothing.
  const ok = outcomes.get('ok') ?? 0;
  t.diagnostic(`${ok} of ${numRuns * FUZZ_SCALE} mutants opened; ${outcomes.size - 1} distinct errors; slowest ${slowest.toFixed(1)} ms`);
  if (process.env.ISO_FUZZ_VERBOSE) for (const [k, v] of [...outcomes].sort((a, b) => b[1] - a[1])) t.diagnostic(`${v} ${k}`);
  assert.ok(ok > numRuns * FUZZ_SCALE * 0.1, 'at least 10% of the mutants are still readable');
  assert.ok(outcomes.size > 10, 'many different errors');
}

test('fuzz: mutated hand-made images either open or fail with EFORMAT', (t) => {
  fuzz(t, craftedRockRidge(), [16 * SECTOR_SIZE, 22 * SECTOR_SIZE], 3000);
});

test('fuzz: mutated and truncated xorriso images either open or fail with EFORMAT', (t) => {
  if (!requireTools(t, 'xorriso')) return;
  const dir = tempDir(t);
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'a/b'), { recursive: true });
  mkdirSync(join(tree, 'boot'));
  writeFileSync(join(tree, 'a/b/f'), 'f');
  writeFileSync(join(tree, 'boot/boot.img'), Buffer.alloc(2048, 0x90));
  writeFileSync(join(tree, 'n'.repeat(230)), 'x');
  writeFileSync(join(tree, 'ü'), 'u');
  symlinkSync('a/b/f', join(tree, 'l'));
  symlinkSync(LONG_TARGET, join(tree, 'lt'));
  const path = mkiso(join(dir, 'small.iso'), tree, ['-R', '-J', '-no-pad', '-b', 'boot/boot.img', '-no-emul-boot']);
  const base = readFileSync(path);
  const iso = openIso(new BufferSource(base), 'small.iso');
  const firstData = Math.min(...[...iso.entries()].filter((e) => e.type === 'file').flatMap((e) => e.extents.map((x) => x.offset)));
  fuzz(t, base, [16 * SECTOR_SIZE, firstData], 3000);
});

// The corpus pins regressions; it is not an oracle. Its recorded outcomes and offsets are what
// nix-seal answered when each input was found (checked by hand), so a change that blames another,
// equally right offset fails here and updates MANIFEST.json on purpose (test/fuzz-corpus/README.md).
test('fuzz corpus: every kept input gives its recorded outcome', () => {
  const manifest = JSON.parse(readFileSync(join(CORPUS, 'MANIFEST.json'), 'utf8')) as Record<string, { outcome: 'ok' | 'EFORMAT'; offset?: number; why: string }>;
  const files = readdirSync(CORPUS).filter((f) => f.endsWith('.iso.gz'));
  assert.deepEqual(files.sort(), Object.keys(manifest).sort());
  for (const f of files) {
    const bytes = gunzipSync(readFileSync(join(CORPUS, f)));
    const want = manifest[f]!;
    const got = exercise(bytes, [0, SYSTEM_AREA_SIZE, bytes.length - 1, ...Array.from({ length: 64 }, (_, i) => Math.floor((bytes.length * i) / 64))]);
    assert.equal(got.outcome, want.outcome, `${f}: ${JSON.stringify(got)}`);
    if (got.outcome === 'EFORMAT' && want.offset !== undefined) assert.equal(got.offset, want.offset, `${f}: ${got.message}`);
  }
});
