/**
 * The sniffer on hand-made headers: each format is recognised from a minimal valid header, and
 * each near miss (the magic right, one structural field wrong) is not. Random bytes, and random
 * bytes behind a strong format's magic, are never recognised (fast-check). The read budget is
 * checked with a counting source. Real images from the real tools: test/sniff-e2e.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { crc32 } from '../formats/crc32.js';
import { MIN_IMAGE_SIZE, sniffFile, sniffSource, sniffStorePath, type ImageFormat, type SniffSource } from './sniff.js';
import { seeded } from '../../test/support/property.js';
import { fileTempDir } from '../../test/support/temp.js';

const dir = fileTempDir('nix-seal-sniff-');

const ascii = (b: Uint8Array, at: number, s: string): void => b.set(Buffer.from(s, 'latin1'), at);
const flip = (b: Uint8Array, at: number): void => void (b[at] = b[at]! ^ 1);
const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** A counting source over bytes. */
function source(bytes: Uint8Array): SniffSource & { reads: number; bytesRead: number } {
  return {
    size: bytes.length,
    reads: 0,
    bytesRead: 0,
    read(offset, length) {
      assert.ok(offset >= 0 && offset + length <= bytes.length, `read ${length} at ${offset} stays inside ${bytes.length} bytes`);
      this.reads++;
      this.bytesRead += length;
      return bytes.slice(offset, offset + length);
    },
  };
}
const sniff = (b: Uint8Array): ImageFormat | undefined => sniffSource(source(b))?.format;

// --- minimal valid images --------------------------------------------------------------------

function iso(): Uint8Array {
  const b = new Uint8Array(32768 + 3 * 2048);
  const pvd = 32768;
  b[pvd] = 1;
  ascii(b, pvd + 1, 'CD001');
  b[pvd + 6] = 1;
  ascii(b, pvd + 40, 'NIXOS_ISO'.padEnd(32, ' '));
  dv(b).setUint32(pvd + 80, 35, true);
  dv(b).setUint32(pvd + 84, 35, false);
  dv(b).setUint16(pvd + 128, 2048, true);
  dv(b).setUint16(pvd + 130, 2048, false);
  b[pvd + 156] = 34;
  b[pvd + 881] = 1;
  b[pvd + 2048] = 255;
  ascii(b, pvd + 2049, 'CD001');
  b[pvd + 2054] = 1;
  return b;
}

function udf(): Uint8Array {
  const b = new Uint8Array(32768 + 4 * 2048);
  ['BEA01', 'NSR03', 'TEA01'].forEach((id, i) => {
    ascii(b, 32768 + i * 2048 + 1, id);
    b[32768 + i * 2048 + 6] = 1;
  });
  return b;
}

function mbrDisk(): Uint8Array {
  const b = new Uint8Array(1 << 20);
  const e = 446;
  b[e] = 0x80;
  b[e + 4] = 0x83;
  dv(b).setUint32(e + 8, 2048, true);
  dv(b).setUint32(e + 12, 4096, true);
  b[510] = 0x55;
  b[511] = 0xaa;
  return b;
}

function gptDisk(sector = 512): Uint8Array {
  const b = new Uint8Array(1 << 20);
  // protective MBR
  b[446 + 4] = 0xee;
  dv(b).setUint32(446 + 8, 1, true);
  dv(b).setUint32(446 + 12, (1 << 20) / sector - 1, true);
  b[510] = 0x55;
  b[511] = 0xaa;
  const h = sector;
  ascii(b, h, 'EFI PART');
  dv(b).setUint32(h + 8, 0x00010000, true);
  dv(b).setUint32(h + 12, 92, true);
  dv(b).setUint32(h + 24, 1, true);
  dv(b).setUint32(h + 80, 128, true);
  dv(b).setUint32(h + 16, crc32(b.subarray(h, h + 92)), true);
  return b;
}

function qcow2(): Uint8Array {
  const b = new Uint8Array(4096);
  dv(b).setUint32(0, 0x514649fb, false);
  dv(b).setUint32(4, 3, false);
  dv(b).setUint32(20, 16, false);
  dv(b).setBigUint64(24, 1n << 30n, false);
  return b;
}

function vhdFooter(type = 3): Uint8Array {
  const f = new Uint8Array(512);
  ascii(f, 0, 'conectix');
  dv(f).setUint32(8, 2, false);
  dv(f).setUint32(12, 0x00010000, false);
  dv(f).setUint32(60, type, false);
  let sum = 0;
  for (const x of f) sum += x;
  dv(f).setUint32(64, ~sum >>> 0, false);
  return f;
}

function fixedVhd(): Uint8Array {
  const b = new Uint8Array(64 * 1024 + 512);
  b.set(vhdFooter(2), 64 * 1024);
  return b;
}

function vmdk(): Uint8Array {
  const b = new Uint8Array(4096);
  dv(b).setUint32(0, 0x564d444b, true);
  dv(b).setUint32(4, 1, true);
  dv(b).setBigUint64(12, 2048n, true);
  dv(b).setBigUint64(20, 128n, true);
  return b;
}

function vhdx(): Uint8Array {
  const b = new Uint8Array(1 << 20);
  ascii(b, 0, 'vhdxfile');
  ascii(b, 64 * 1024, 'head');
  return b;
}

function squashfs(): Uint8Array {
  const b = new Uint8Array(4096);
  ascii(b, 0, 'hsqs');
  dv(b).setUint32(4, 3, true);
  dv(b).setUint32(12, 131072, true);
  dv(b).setUint16(20, 4, true); // xz
  dv(b).setUint16(22, 17, true);
  dv(b).setUint16(28, 4, true);
  dv(b).setUint16(30, 0, true);
  dv(b).setBigUint64(40, 4096n, true);
  return b;
}

function erofs(): Uint8Array {
  const b = new Uint8Array(8192);
  dv(b).setUint32(1024, 0xe0f5e1e2, true);
  b[1024 + 12] = 12;
  dv(b).setUint32(1024 + 36, 2, true);
  return b;
}

function ext(compat = 0, incompat = 0x2, roCompat = 0x3): Uint8Array {
  const b = new Uint8Array(8192);
  const sb = 1024;
  dv(b).setUint32(sb, 128, true);
  dv(b).setUint32(sb + 4, 1024, true);
  dv(b).setUint32(sb + 24, 0, true);
  dv(b).setUint32(sb + 32, 8192, true);
  dv(b).setUint32(sb + 40, 128, true);
  dv(b).setUint16(sb + 56, 0xef53, true);
  dv(b).setUint32(sb + 76, 1, true);
  dv(b).setUint32(sb + 92, compat, true);
  dv(b).setUint32(sb + 96, incompat, true);
  dv(b).setUint32(sb + 100, roCompat, true);
  return b;
}

function cpioNewc(magic = '070701'): Uint8Array {
  const name = 'init';
  const fields = [1, 0o100755, 0, 0, 1, 0, 0, 0, 0, 0, 0, name.length + 1, 0];
  const header = magic + fields.map((f) => f.toString(16).padStart(8, '0')).join('');
  return Buffer.concat([Buffer.from(header + name + '\0', 'latin1'), Buffer.alloc(512)]);
}

function cpioOdc(): Uint8Array {
  const o = (n: number, w: number): string => n.toString(8).padStart(w, '0');
  const name = 'init';
  const header = '070707' + o(0, 6) + o(1, 6) + o(0o100755, 6) + o(0, 6) + o(0, 6) + o(1, 6) + o(0, 6) + o(0, 11) + o(name.length + 1, 6) + o(0, 11);
  return Buffer.concat([Buffer.from(header + name + '\0', 'latin1'), Buffer.alloc(512)]);
}

function tar(): Uint8Array {
  const b = new Uint8Array(10240);
  ascii(b, 0, 'hello.txt');
  ascii(b, 100, '0000644\0');
  ascii(b, 124, '00000000000\0');
  b[156] = 0x30;
  ascii(b, 257, 'ustar\x0000');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i]!;
  ascii(b, 148, sum.toString(8).padStart(6, '0') + '\0 ');
  return b;
}

const gzip = (): Uint8Array => Uint8Array.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, ...new Array(20).fill(0)]);

function xz(checkType = 1): Uint8Array {
  const b = new Uint8Array(64);
  b.set([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 0x00, checkType]);
  dv(b).setUint32(8, crc32(b.subarray(6, 8)), true);
  return b;
}

/** A zstd frame: FHD with single segment and a 1-byte content size, then a raw last block. */
const zstd = (fhd = 0x20): Uint8Array => Uint8Array.from([0x28, 0xb5, 0x2f, 0xfd, fhd, 5, 0x29, 0, 0, ...Buffer.from('hello'), ...new Array(16).fill(0)]);

const bzip2 = (): Uint8Array => Uint8Array.from([...Buffer.from('BZh9'), 0x31, 0x41, 0x59, 0x26, 0x53, 0x59, ...new Array(32).fill(0)]);

/** An lz4 frame: FLG 0x64 (version 1, independent blocks, content checksum), BD 0x40, header checksum. */
const lz4 = (): Uint8Array => Uint8Array.from([0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7, 5, 0, 0, 0x80, ...Buffer.from('hello'), 0, 0, 0, 0, 0, 0, 0, 0]);

const VALID: [ImageFormat, () => Uint8Array][] = [
  ['iso9660', iso],
  ['udf', udf],
  ['mbr', mbrDisk],
  ['gpt', () => gptDisk(512)],
  ['gpt', () => gptDisk(4096)],
  ['qcow2', qcow2],
  ['vmdk', vmdk],
  ['vmdk', () => Buffer.from('# Disk DescriptorFile\nversion=1\n' + ' '.repeat(64))],
  ['vhd', fixedVhd],
  ['vhd', () => Buffer.concat([vhdFooter(3), Buffer.alloc(4096)])],
  ['vhdx', vhdx],
  ['squashfs', squashfs],
  ['erofs', erofs],
  ['ext2', () => ext()],
  ['ext3', () => ext(0x4)],
  ['ext4', () => ext(0x4, 0x2 | 0x40)],
  ['ext4', () => ext(0x4, 0x2, 0x400)],
  ['cpio-newc', () => cpioNewc()],
  ['cpio-crc', () => cpioNewc('070702')],
  ['cpio-odc', cpioOdc],
  ['tar', tar],
  ['gzip', gzip],
  ['xz', () => xz()],
  ['zstd', () => zstd()],
  ['bzip2', bzip2],
  ['lz4', lz4],
  ['lz4', () => Uint8Array.from([0x02, 0x21, 0x4c, 0x18, 0x10, 0, 0, 0, ...new Array(16).fill(0)])],
];

test('each format is recognised from a minimal valid header', () => {
  for (const [format, make] of VALID) assert.equal(sniff(make()), format, `${format} from ${make.toString().slice(0, 40)}`);
});

test('a hybrid ISO (an MBR in its system area) is ISO 9660; a UDF bridge image too', () => {
  const hybrid = iso();
  hybrid.set(mbrDisk().subarray(0, 512), 0);
  assert.equal(sniff(mbrDisk().subarray(0, 512 * 4)), 'mbr');
  assert.equal(sniff(hybrid), 'iso9660');
  const bridge = new Uint8Array(32768 + 6 * 2048);
  bridge.set(iso().subarray(32768, 32768 + 2 * 2048), 32768); // PVD + terminator
  bridge.set(udf().subarray(32768, 32768 + 3 * 2048), 32768 + 2 * 2048);
  assert.equal(sniff(bridge), 'iso9660');
});

/** [what, valid image, how to break it]: the magic stays, the structure does not. */
const NEAR_MISSES: [string, () => Uint8Array, (b: Uint8Array) => void][] = [
  ['ISO: PVD version 2', iso, (b) => (b[32768 + 6] = 2)],
  ['ISO: both-endian block counts differ', iso, (b) => dv(b).setUint32(32768 + 84, 36, false)],
  ['ISO: block size 4096', iso, (b) => (dv(b).setUint16(32768 + 128, 4096, true), dv(b).setUint16(32768 + 130, 4096, false))],
  ['ISO: root record length 33', iso, (b) => (b[32768 + 156] = 33)],
  ['ISO: file structure version 0', iso, (b) => (b[32768 + 881] = 0)],
  ['UDF: no NSR', udf, (b) => ascii(b, 34816 + 1, 'NSR09')],
  ['UDF: NSR before BEA', udf, (b) => (ascii(b, 32768 + 1, 'NSR03'), ascii(b, 34816 + 1, 'BEA01'))],
  ['MBR: boot flag 0x7f', mbrDisk, (b) => (b[446] = 0x7f)],
  ['MBR: partition at sector 0', mbrDisk, (b) => dv(b).setUint32(446 + 8, 0, true)],
  ['MBR: no partition', mbrDisk, (b) => (b[446 + 4] = 0)],
  ['MBR: protective, without a GPT header', () => gptDisk(), (b) => (b[512] = 0)],
  ['GPT: header CRC wrong', () => gptDisk(), (b) => flip(b, 512 + 16)],
  ['GPT: revision 2.0', () => gptDisk(), (b) => dv(b).setUint32(512 + 8, 0x00020000, true)],
  ['qcow2: version 4', qcow2, (b) => dv(b).setUint32(4, 4, false)],
  ['qcow2: 8-bit clusters', qcow2, (b) => dv(b).setUint32(20, 8, false)],
  ['vmdk: version 9', vmdk, (b) => dv(b).setUint32(4, 9, true)],
  ['vmdk: grain 100', vmdk, (b) => dv(b).setBigUint64(20, 100n, true)],
  ['VHD: footer checksum wrong', fixedVhd, (b) => flip(b, 64 * 1024 + 64)],
  ['VHD: disk type 5', fixedVhd, (b) => (b[64 * 1024 + 63] = 5)],
  ['VHDX: no header signature', vhdx, (b) => (b[64 * 1024] = 0)],
  ['squashfs: version 3', squashfs, (b) => dv(b).setUint16(28, 3, true)],
  ['squashfs: block size does not match its log', squashfs, (b) => dv(b).setUint32(12, 65536, true)],
  ['squashfs: compressor 7', squashfs, (b) => dv(b).setUint16(20, 7, true)],
  ['squashfs: bytes used beyond the file', squashfs, (b) => dv(b).setBigUint64(40, 1n << 40n, true)],
  ['erofs: 256-byte blocks', erofs, (b) => (b[1024 + 12] = 8)],
  ['erofs: more blocks than the file', erofs, (b) => dv(b).setUint32(1024 + 36, 1000, true)],
  ['ext: 128 KiB blocks', () => ext(), (b) => dv(b).setUint32(1024 + 24, 7, true)],
  ['ext: revision 2', () => ext(), (b) => dv(b).setUint32(1024 + 76, 2, true)],
  ['ext: no inodes', () => ext(), (b) => dv(b).setUint32(1024, 0, true)],
  ['cpio newc: a non-hex field', () => cpioNewc(), (b) => (b[20] = 0x67)],
  ['cpio newc: check not zero', () => cpioNewc(), (b) => (b[109] = 0x31)],
  ['cpio newc: name not NUL-terminated', () => cpioNewc(), (b) => (b[114] = 0x41)],
  ['cpio odc: an 8 in a field', cpioOdc, (b) => (b[10] = 0x38)],
  ['tar: checksum wrong', tar, (b) => (b[0] = 0x48)],
  ['tar: no name', tar, (b) => (b[0] = 0)],
  ['gzip: reserved flag', gzip, (b) => (b[3] = 0x20)],
  ['gzip: method 7', gzip, (b) => (b[2] = 7)],
  ['xz: flags CRC wrong', () => xz(), (b) => flip(b, 8)],
  ['xz: check type 0x10', () => xz(0x10), (b) => void b],
  ['zstd: reserved bit', () => zstd(0x28), (b) => void b],
  ['zstd: reserved block type', () => zstd(), (b) => (b[6] = 0x07)],
  ['bzip2: block size 0', bzip2, (b) => (b[3] = 0x30)],
  ['bzip2: no block magic', bzip2, (b) => (b[4] = 0)],
  ['lz4: header checksum wrong', lz4, (b) => flip(b, 6)],
  ['lz4: version 2', lz4, (b) => (b[4] = 0xa4)],
  ['lz4 legacy: empty first block', lz4, (b) => b.set([0x02, 0x21, 0x4c, 0x18, 0, 0, 0, 0])],
];

test('near misses (the magic right, the structure broken) are not images', () => {
  for (const [what, make, breakIt] of NEAR_MISSES) {
    const b = make();
    breakIt(b);
    assert.equal(sniffSource(source(b)), undefined, what);
  }
});

test('property: random bytes are never an image', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 40_000 }), (b) => sniffSource(source(b)) === undefined),
    seeded({ numRuns: 300 }),
  );
});

/** Formats whose check after the magic is at least 32 bits strong: random bytes behind the magic never pass (not lz4: its descriptor check is ~17 bits, near misses test it). */
const STRONG_MAGIC: [string, number, Uint8Array][] = [
  ['hsqs', 0, Buffer.from('hsqs')],
  ['qcow2', 0, Uint8Array.of(0x51, 0x46, 0x49, 0xfb)],
  ['conectix', 0, Buffer.from('conectix')],
  ['EFI PART', 512, Buffer.from('EFI PART')],
  ['xz', 0, Uint8Array.of(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)],
  ['ustar', 257, Buffer.from('ustar\x0000')],
  ['newc', 0, Buffer.from('070701')],
  ['ext', 1080, Uint8Array.of(0x53, 0xef)],
  ['CD001', 32769, Buffer.from('CD001')],
];

test('property: random bytes behind a magic number are not that image', () => {
  for (const [, at, magic] of STRONG_MAGIC) {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: at + 4096, maxLength: at + 8192 }), (b) => {
        b.set(magic, at);
        const d = sniffSource(source(b));
        return d === undefined;
      }),
      seeded({ numRuns: 40 }),
    );
  }
});

test('read budget: one read for an executable, two for an ISO, at most three and 41 KiB for anything', () => {
  const elf = new Uint8Array(1 << 20);
  elf.set([0x7f, 0x45, 0x4c, 0x46]);
  const s1 = source(elf);
  assert.equal(sniffSource(s1), undefined);
  assert.equal(s1.reads, 1);
  const s2 = source(iso());
  assert.equal(sniffSource(s2)?.format, 'iso9660');
  assert.equal(s2.reads, 2);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 200_000 }), (b) => {
      const s = source(b);
      sniffSource(s);
      return s.reads <= 3 && s.bytesRead <= 8192 + 32768 + 512;
    }),
    seeded({ numRuns: 100 }),
  );
  const tiny = source(new Uint8Array(MIN_IMAGE_SIZE - 1));
  assert.equal(sniffSource(tiny), undefined);
  assert.equal(tiny.reads, 0);
});

// --- store paths on disk ---------------------------------------------------------------------

let n = 0;
function storePath(files: Record<string, Uint8Array | string | { link: string }>): string {
  const root = join(dir, `${'a'.repeat(32)}-sp${n++}`);
  mkdirSync(root);
  for (const [rel, content] of Object.entries(files)) {
    const p = join(root, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    if (typeof content === 'object' && 'link' in content) symlinkSync(content.link, p);
    else writeFileSync(p, content);
  }
  return root;
}

test('sniffStorePath: a file, and directories of images (nix-support/ ignored, symlinks inside)', () => {
  const single = join(dir, 'single.iso');
  writeFileSync(single, iso());
  assert.deepEqual(
    { ...sniffStorePath(single), reason: undefined },
    { image: true, kind: 'file', files: [{ file: '', detection: sniffFile(single)! }], reason: undefined },
  );
  const isoDir = storePath({ 'iso/nixos.iso': iso(), 'nix-support/hydra-build-products': 'file iso /nix/store/x/iso/nixos.iso\n', 'nix-support/system': 'x86_64-linux\n' });
  const s = sniffStorePath(isoDir);
  assert.equal(s.image, true, s.reason);
  assert.deepEqual(s.files.map((f) => [f.file, f.detection.format]), [['iso/nixos.iso', 'iso9660']]);
  assert.match(s.reason, /^iso\/nixos\.iso is an image: ISO 9660 primary volume descriptor/);

  const nextName = `${'a'.repeat(32)}-sp${n}`; // the name storePath() gives the next one
  const many = storePath({ 'disk.qcow2': qcow2(), 'b/root.squashfs': squashfs(), 'b/initrd': cpioNewc(), 'latest.iso': { link: 'b/../x.iso' }, 'x.iso': iso(), 'abs.iso': { link: `/nix/store/${nextName}/x.iso` }, dirlink: { link: 'b' } });
  const m = sniffStorePath(many);
  assert.equal(m.image, true, m.reason);
  assert.deepEqual(m.files.map((f) => f.file), ['b/initrd', 'b/root.squashfs', 'disk.qcow2', 'x.iso']);
  assert.match(m.reason, /^4 image files: b\/initrd \(cpio-newc\), b\/root\.squashfs \(squashfs\), disk\.qcow2 \(qcow2\), and 1 more$/);
});

test('sniffStorePath: what makes a directory not an image', () => {
  const cases: [Record<string, Uint8Array | string | { link: string }>, RegExp][] = [
    [{ 'iso/nixos.iso': iso(), 'iso/README': 'boot it\n' }, /^iso\/README is not an image$/],
    [{ 'nix-support/hydra-build-products': 'x' }, /^has no files outside nix-support\/$/],
    [{ 'a.iso': iso(), 'b.iso': { link: '/nix/store/zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-other/x.iso' } }, /^b\.iso is a symlink to \/nix\/store\/z+-other\/x\.iso, outside the store path$/],
    [{ 'a.iso': iso(), 'b.iso': { link: '../../etc/passwd' } }, /^b\.iso is a symlink to \.\.\/\.\.\/etc\/passwd, outside the store path$/],
    [{ 'a.iso': iso(), 'b.iso': { link: 'missing.iso' } }, /^b\.iso is a dangling symlink$/],
    [{ 'a.iso': iso(), 'l1': { link: 'l2' }, 'l2': { link: 'l1' } }, /^l1 is a symlink loop/],
    [{ 'a.iso': iso(), 'nix-support/notes': 'text', 'b.iso': { link: 'nix-support/notes' } }, /^b\.iso points to nix-support\/notes, which is not an image$/],
    [{ 'a.iso': iso(), 'tiny': 'x' }, /^tiny is not an image$/],
  ];
  for (const [files, reason] of cases) {
    const s = sniffStorePath(storePath(files));
    assert.equal(s.image, false, JSON.stringify(Object.keys(files)));
    assert.deepEqual(s.files, []);
    assert.match(s.reason, reason);
  }
  const big = storePath(Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`${i}.iso`, iso()])));
  assert.equal(sniffStorePath(big).image, true);
  assert.deepEqual({ ...sniffStorePath(big, { maxFiles: 4 }), files: [] }, { image: false, kind: 'directory', files: [], reason: 'has more than 4 entries' });
  const deep = storePath({ 'a/b/c/d/x.iso': iso() });
  assert.equal(sniffStorePath(deep).image, true);
  assert.deepEqual(sniffStorePath(deep, { maxDepth: 3 }), { image: false, kind: 'directory', files: [], reason: 'a/b/c/d is nested deeper than 3 directories' });
  const link = join(dir, 'link');
  symlinkSync(big, link);
  assert.deepEqual(sniffStorePath(link), { image: false, kind: 'symlink', files: [], reason: 'is a symlink' });
  const text = join(dir, 'text');
  writeFileSync(text, '#!/bin/sh\necho hello\n');
  assert.deepEqual(sniffStorePath(text), { image: false, kind: 'file', files: [], reason: 'is not an image' });
});

test('errors name the path: missing path, unreadable file', () => {
  assert.throws(() => sniffStorePath(join(dir, 'nope')), (e: Error & { code?: string }) => e.code === 'EIO' && e.message === `Cannot sniff ${join(dir, 'nope')}: no such file or directory`);
  assert.throws(() => sniffFile(dir), (e: Error & { code?: string }) => e.code === 'EIO' && e.message === `Cannot sniff ${dir}: not a regular file`);
});
