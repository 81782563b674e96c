import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import { fuzzCorpus, replayCorpus } from '../support/fuzz-corpus.js';
import { requireTools, skipOrFail } from '../support/tools.js';
import { treeArbitraries, writeTree } from '../support/random-tree.js';
import { hostileProperties, nixHashOf, viewNarHash } from '../support/view-tree.js';
import { BufferSource, FdSource } from '../../src/formats/byte-source.js';
import { crc32 } from '../../src/formats/crc32.js';
import { openImageView, readerFor } from '../../src/formats/image-readers.js';
import { partitionTableReader, readPartitionTable } from '../../src/formats/partitions.js';
import { tempDir } from '../support/temp.js';

interface SfdiskPart {
  node: string;
  start: number;
  size: number;
  type: string;
  uuid?: string;
  name?: string;
}

function sfdiskJson(disk: string): { label: string; sectorsize?: number; partitions: SfdiskPart[] } {
  return JSON.parse(execFileSync('sfdisk', ['-J', disk], { encoding: 'utf8' })).partitiontable;
}

function blankDisk(dir: string, name: string, bytes: number): string {
  const p = join(dir, name);
  writeFileSync(p, Buffer.alloc(0));
  execFileSync('truncate', ['-s', String(bytes), p]);
  return p;
}

/** The partitions as sfdisk lists them (extended containers left out, as the view does). */
function expectedFromSfdisk(disk: string): Array<{ path: string; offset: number; length: number }> {
  const pt = sfdiskJson(disk);
  const ss = pt.sectorsize ?? 512;
  return pt.partitions
    .filter((p) => !['5', 'f', '85'].includes(p.type))
    .map((p) => ({ path: `partition ${Number(/(\d+)$/.exec(p.node)![1])}`, offset: p.start * ss, length: p.size * ss }));
}

function viewParts(disk: string) {
  const bytes = readFileSync(disk);
  const src = new BufferSource(bytes);
  assert.equal(readerFor(src), partitionTableReader);
  const view = partitionTableReader.open(src, disk);
  return {
    view,
    parts: [...view.entries()].filter((e) => e.path !== '').map((e) => ({ path: e.path, offset: e.window!.offset, length: e.window!.length })),
  };
}

test('MBR made by sfdisk: primaries, an extended partition and logical ones, as sfdisk -J lists them', (t) => {
  if (!requireTools(t, 'sfdisk')) return;
  const dir = tempDir(t);
  const disk = blankDisk(dir, 'mbr.img', 64 << 20);
  execFileSync('sfdisk', ['-q', disk], { input: 'label: dos\n,8M,83\n,4M,c\n,40M,5\n,6M,83\n,5M,82\n,,83\n' });
  const { view, parts } = viewParts(disk);
  assert.equal(view.kind, 'mbr');
  assert.deepEqual(parts, expectedFromSfdisk(disk));
  assert.deepEqual(
    parts.map((p) => p.path),
    ['partition 1', 'partition 2', 'partition 4', 'partition 5', 'partition 6'], // sfdisk made 3 the extended one
  );
  const p5 = parts[3]!;
  assert.deepEqual(view.locate(p5.offset + 3), { path: 'partition 5', offsetInFile: 3, what: 'data of partition 5' });
  assert.equal(view.locate(450).what, 'master boot record (partition table)');
  assert.equal(view.locate(10).what, 'master boot record (boot code)');
  const ext = sfdiskJson(disk).partitions.find((p) => p.type === '5')!;
  assert.equal(view.locate(ext.start * 512 + 450).what, 'extended boot record of partition 5');
  assert.equal(view.locate(600).what, 'unpartitioned space');
});

test('GPT made by sgdisk (512-byte sectors): partitions as sfdisk -J lists them, names and types', (t) => {
  if (!requireTools(t, 'sgdisk', 'sfdisk')) return;
  const dir = tempDir(t);
  const disk = blankDisk(dir, 'gpt.img', 32 << 20);
  execFileSync('sgdisk', ['-n', '1:2048:+4M', '-t', '1:ef00', '-c', '1:ESP', '-n', '3:0:+8M', '-t', '3:8300', '-c', '3:nixos root', disk], { stdio: 'ignore' });
  const { view, parts } = viewParts(disk);
  assert.equal(view.kind, 'gpt');
  assert.deepEqual(parts, expectedFromSfdisk(disk));
  const t0 = readPartitionTable(new BufferSource(readFileSync(disk)), disk);
  const sf = sfdiskJson(disk).partitions;
  assert.deepEqual(
    t0.partitions.map((p) => [p.name, p.type.toUpperCase(), p.guid!.toUpperCase()]),
    sf.map((p) => [p.name, p.type, p.uuid]),
  );
  assert.equal(view.locate(512).what, 'GPT header');
  assert.equal(view.locate(1024 + 5).what, 'GPT partition entries');
  assert.equal(view.locate((32 << 20) - 512).what, 'GPT header (backup)');
  assert.equal(view.locate((32 << 20) - 512 - 100).what, 'GPT partition entries (backup)');
});

test('GPT with 4096-byte sectors (sfdisk on a 4096-byte-sector loop device)', (t) => {
  if (!requireTools(t, 'sfdisk', 'losetup')) return;
  const dir = tempDir(t);
  const disk = blankDisk(dir, 'gpt4k.img', 32 << 20);
  let loop: string;
  try {
    loop = execFileSync('losetup', ['--sector-size', '4096', '-f', '--show', disk], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    // Loop devices need root and a kernel that lends them; a CI runner must.
    skipOrFail(t, `no loop device: ${(err as Error).message.split('\n')[0]}`);
    return;
  }
  let json: string;
  try {
    execFileSync('sfdisk', ['-q', '--no-reread', loop], { input: 'label: gpt\n,2M\n,3M\n', stdio: ['pipe', 'ignore', 'ignore'] });
    json = execFileSync('sfdisk', ['-J', loop], { encoding: 'utf8' });
  } finally {
    execFileSync('losetup', ['-d', loop]);
  }
  const bytes = readFileSync(disk);
  assert.equal(bytes.subarray(4096, 4104).toString('latin1'), 'EFI PART');
  const t0 = readPartitionTable(new BufferSource(bytes), disk);
  assert.equal(t0.sectorSize, 4096);
  const pt = JSON.parse(json).partitiontable as { sectorsize: number; partitions: SfdiskPart[] };
  assert.equal(pt.sectorsize, 4096);
  assert.deepEqual(
    t0.partitions.map((p) => [p.offset, p.length, p.guid!.toUpperCase()]),
    pt.partitions.map((p) => [p.start * 4096, p.size * 4096, p.uuid]),
  );
});

test('GPT: a corrupt primary header falls back to the backup; both corrupt is EFORMAT with the offset', (t) => {
  if (!requireTools(t, 'sgdisk')) return;
  const dir = tempDir(t);
  const disk = blankDisk(dir, 'gpt.img', 8 << 20);
  execFileSync('sgdisk', ['-n', '1:0:+2M', '-n', '2:0:0', disk], { stdio: 'ignore' });
  const good = readFileSync(disk);
  const want = readPartitionTable(new BufferSource(good), 'x').partitions;
  const bad = Buffer.from(good);
  flip(bad, 512 + 60); // inside the header: its CRC fails
  const t1 = readPartitionTable(new BufferSource(bad), 'x');
  assert.equal(t1.usedBackup, true);
  assert.deepEqual(t1.partitions, want);
  assert.match(partitionTableReader.open(new BufferSource(bad), 'x').description, /backup used/);
  // Entries array corrupt: the primary fails its entries CRC, the backup's own array is intact.
  const badArr = Buffer.from(good);
  flip(badArr, 1024 + 40);
  assert.equal(readPartitionTable(new BufferSource(badArr), 'x').usedBackup, true);
  // Primary gone entirely (zeroed): found from the protective MBR and the last sector.
  const gone = Buffer.from(good);
  gone.fill(0, 512, 1024);
  assert.deepEqual(readPartitionTable(new BufferSource(gone), 'x').partitions, want);
  const both = Buffer.from(bad);
  flip(both, good.length - 512 + 60);
  assert.throws(
    () => readPartitionTable(new BufferSource(both), 'd.img'),
    (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && e.details.offset === 512 + 16 && /^Cannot read d\.img: the GPT header's CRC32 does not match at offset 528$/.test(e.message),
  );
});

function flip(b: Buffer, at: number): void {
  b.writeUInt8(b.readUInt8(at) ^ 1, at);
}

/** A minimal MBR with `slots` = [type, start, count] (512-byte sectors). */
function mbr(slots: Array<[number, number, number]>, size = 1 << 20): Buffer {
  const b = Buffer.alloc(size);
  slots.forEach(([type, start, count], i) => {
    const at = 446 + 16 * i;
    b[at + 4] = type;
    b.writeUInt32LE(start, at + 8);
    b.writeUInt32LE(count, at + 12);
  });
  b.writeUInt16LE(0xaa55, 510);
  return b;
}

test('near misses: not a partition table, or a corrupt one named with its offset', () => {
  const reader = partitionTableReader;
  assert.equal(reader.detect(new BufferSource(Buffer.alloc(4096))), false, 'zeros');
  const noSlots = mbr([]);
  assert.equal(reader.detect(new BufferSource(noSlots)), false, '55 AA but no partitions');
  const badStatus = mbr([[0x83, 2048, 100]]);
  badStatus[446] = 0x12;
  assert.equal(reader.detect(new BufferSource(badStatus)), false, 'a status byte neither 0 nor 0x80');
  const fat = mbr([[0x83, 2048, 100]]);
  fat.write('FAT16   ', 54, 'latin1');
  assert.equal(reader.detect(new BufferSource(fat)), false, 'a FAT boot sector');
  const err = (b: Buffer, re: RegExp, offset: number): void =>
    assert.throws(
      () => reader.open(new BufferSource(b), 'd'),
      (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && re.test(e.message) && e.details.offset === offset,
    );
  err(mbr([[0x83, 2000, 100]]), /partition 1 \(sectors 2000–2099\) extends past the end of the 2048-sector disk/, 446 + 8);
  err(mbr([[0x83, 100, 100], [0x83, 150, 100]]), /partitions 1 and 2 overlap/, 446);
  err(mbr([[0x83, 0, 100]]), /starts at sector 0/, 446 + 8);
  // An extended partition whose EBR points at itself.
  const loop = mbr([[0x05, 100, 200]]);
  loop.writeUInt16LE(0xaa55, 100 * 512 + 510);
  const ebr = 100 * 512 + 446;
  loop[ebr + 4] = 0x83;
  loop.writeUInt32LE(10, ebr + 8);
  loop.writeUInt32LE(10, ebr + 12);
  loop[ebr + 16 + 4] = 0x05;
  loop.writeUInt32LE(0, ebr + 16 + 8);
  loop.writeUInt32LE(50, ebr + 16 + 12);
  err(loop, /the extended boot records loop \(sector 100 again\)/, 100 * 512);
  // GPT: a header whose CRC is right but whose entry count is absurd.
  const g = Buffer.alloc(1 << 20);
  g.write('EFI PART', 512, 'latin1');
  g.writeUInt32LE(92, 512 + 12);
  g.writeUInt32LE(1, 512 + 24);
  g.writeUInt32LE(34, 512 + 40);
  g.writeUInt32LE(2000, 512 + 48);
  g.writeUInt32LE(2, 512 + 72);
  g.writeUInt32LE(1e6, 512 + 80);
  g.writeUInt32LE(128, 512 + 84);
  g.writeUInt32LE(crc32(g.subarray(512, 604)), 512 + 16);
  err(g, /declares 1000000 partition entries/, 512 + 80);
});

test('hostile input: random bytes, mutated tables and every truncation fail only with NixSealError', (t) => {
  if (!requireTools(t, 'sfdisk')) return;
  const dir = tempDir(t);
  const disk = blankDisk(dir, 'mbr.img', 1 << 20);
  execFileSync('sfdisk', ['-q', disk], { input: 'label: dos\n,100K,83\n,300K,5\n,50K,83\n,50K,83\n' });
  // Only the tables matter: keep the first 64 KiB plus the EBRs (all in the first 512 KiB).
  hostileProperties(partitionTableReader, readFileSync(disk).subarray(0, 512 << 10), 150, 300);
  const gdisk = blankDisk(dir, 'gpt.img', 256 << 10);
  execFileSync('sfdisk', ['-q', gdisk], { input: 'label: gpt\nfirst-lba: 34\n,20K\n,20K\n' });
  hostileProperties(partitionTableReader, readFileSync(gdisk), 150, 300);
});

test('a partition holds an ISO: opened through fileSource, its tree hashes as nix-hash of the original', (t) => {
  if (!requireTools(t, 'sgdisk', 'xorriso', 'nix-hash')) return;
  const dir = tempDir(t);
  const { dir: dirArb } = treeArbitraries(3000);
  const [tree] = fc.sample(dirArb, { numRuns: 1, seed: 11 });
  const root = join(dir, 'tree');
  writeTree(root, tree!);
  const iso = join(dir, 'in.iso');
  execFileSync('xorriso', ['-as', 'mkisofs', '-R', '-o', iso, root], { stdio: 'ignore', env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  const isoSize = readFileSync(iso).length;
  const disk = blankDisk(dir, 'disk.img', isoSize + (4 << 20));
  execFileSync('sgdisk', ['-n', `1:2048:+${Math.ceil(isoSize / 512)}`, disk], { stdio: 'ignore' });
  execFileSync('dd', [`if=${iso}`, `of=${disk}`, 'bs=512', 'seek=2048', 'conv=notrunc'], { stdio: 'ignore' });
  const fd = openSync(disk, 'r');
  t.after(() => closeSync(fd));
  const outer = openImageView(new FdSource(fd, disk), disk)!;
  assert.equal(outer.kind, 'gpt');
  const part = [...outer.entries()].find((e) => e.path === 'partition 1')!;
  const inner = openImageView(outer.fileSource(part)!, 'partition 1')!;
  assert.equal(inner.kind, 'iso9660');
  assert.equal(viewNarHash(inner), nixHashOf(root));
});

test('a hybrid ISO (xorriso --protective-msdos-label) is read as the ISO; a bare ext4 is no partition table', (t) => {
  if (!requireTools(t, 'xorriso', 'mkfs.ext4')) return;
  const dir = tempDir(t);
  const root = join(dir, 'tree');
  writeTree(root, { kind: 'dir', entries: { a: { kind: 'file', data: Buffer.from('x'), exec: false } } });
  const iso = join(dir, 'h.iso');
  execFileSync('xorriso', ['-as', 'mkisofs', '-R', '--protective-msdos-label', '-o', iso, root], { stdio: 'ignore' });
  const bytes = readFileSync(iso);
  assert.equal(partitionTableReader.detect(new BufferSource(bytes)), true, 'the MBR is there');
  assert.equal(openImageView(new BufferSource(bytes), iso)!.kind, 'iso9660');
  const ext = blankDisk(dir, 'e.img', 4 << 20);
  execFileSync('mkfs.ext4', ['-q', '-F', ext], { stdio: 'ignore' });
  assert.equal(partitionTableReader.detect(new BufferSource(readFileSync(ext))), false);
});

test('fuzz: seeded mutations of the kept partitions seeds end in entries or a NixSealError, never a hang', () => {
  const kinds = fuzzCorpus(partitionTableReader, 'partitions');
  // The mutations reach the parsers: several kinds of error, not one refusal at the header.
  assert.ok(kinds.size >= 3, [...kinds.keys()].join('\n'));
});

test('partitions fuzz corpus replays: each kept image ends as recorded (offsets are regression pins, not an oracle)', () => {
  replayCorpus(partitionTableReader, 'partitions');
});
