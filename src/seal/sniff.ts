/**
 * Is this file a self-contained image? The sniffer behind `--seal-images`, `suggest` and the
 * audit's "opaque" files: it names the format of disk, filesystem, archive and compressed images
 * from their headers, the way a kernel or a loader would recognise them, not from file names.
 *
 * A magic number alone is not enough: hashes, compiled code and random data contain any four
 * bytes sooner or later, and a false "image" would erase real runtime references. So every
 * format is accepted only when the structure around its magic is consistent too (a checksum when
 * the format has one, version and size fields in their valid ranges, reserved bits clear), and a
 * near miss (the magic with a broken structure) is "not an image".
 *
 * Speed: a closure of thousands of paths is sniffed on every `--seal-images` run, so a file costs
 * one read of its first 8 KiB in the common case; a second read (32 KiB at 32 KiB, where ISO 9660
 * and UDF keep their volume descriptors) only when the head matched nothing and the file is big
 * enough; a third (the last 512 bytes: a fixed VHD's footer) only when both matched nothing and
 * the size fits. File reads go into one preallocated buffer.
 */
import { closeSync, fstatSync, lstatSync, openSync, readdirSync, readlinkSync, constants as fsConstants, type Dirent } from 'node:fs';
import path from 'node:path';
import { describeSystemError, errnoCode, NixSealError } from '../errors.js';
import { crc32 } from '../formats/crc32.js';
import { FdSource, type ByteSource } from '../formats/byte-source.js';

export type ImageFormat =
  | 'iso9660'
  | 'udf'
  | 'mbr'
  | 'gpt'
  | 'qcow2'
  | 'vmdk'
  | 'vhd'
  | 'vhdx'
  | 'squashfs'
  | 'erofs'
  | 'ext2'
  | 'ext3'
  | 'ext4'
  | 'cpio-newc'
  | 'cpio-crc'
  | 'cpio-odc'
  | 'tar'
  | 'gzip'
  | 'xz'
  | 'zstd'
  | 'bzip2'
  | 'lz4';

/** A recognised image: its format, the offset of the structure that identified it, and why. */
export interface Detection {
  format: ImageFormat;
  offset: number;
  why: string;
}

/** Random access to the bytes of a file or image. */
export type SniffSource = ByteSource;

/** Files smaller than this are not images of any format here (the smallest, an empty xz stream, is 32 bytes). */
export const MIN_IMAGE_SIZE = 16;
const HEAD_SIZE = 8192;
const SECTOR = 2048;
/** ISO 9660 and UDF volume descriptors start at sector 16; 16 descriptors are read. */
const VRS_START = 16 * SECTOR;
const VRS_LENGTH = 16 * SECTOR;
const VHD_FOOTER_SIZE = 512;

/** The format of the image in `src`, or undefined when it is none this sniffer knows. */
export function sniffSource(src: SniffSource): Detection | undefined {
  const size = src.size;
  if (size < MIN_IMAGE_SIZE) return undefined;
  const head = src.read(0, Math.min(size, HEAD_SIZE));
  const fromHead = sniffHead(head, size, src);
  if (fromHead !== undefined && fromHead.format !== 'mbr') return fromHead;
  // ISO 9660 wins over the MBR of a hybrid ISO (isohybrid, xorriso -isohybrid-mbr): nix-seal can
  // read the ISO, and what the disk's partitions hold is the ISO's own data.
  if (fromHead === undefined && !mayBeImage(head)) return undefined;
  if (size >= VRS_START + SECTOR) {
    const vrs = src.read(VRS_START, Math.min(VRS_LENGTH, size - VRS_START));
    const optical = sniffVolumeRecognition(vrs);
    if (optical !== undefined) return optical;
  }
  if (fromHead !== undefined) return fromHead;
  if (size >= HEAD_SIZE + VHD_FOOTER_SIZE && size % VHD_FOOTER_SIZE === 0) {
    const footer = src.read(size - VHD_FOOTER_SIZE, VHD_FOOTER_SIZE);
    if (isVhdFooter(footer)) return { format: 'vhd', offset: size - VHD_FOOTER_SIZE, why: `VHD footer (${vhdDiskType(footer)}) at the end, checksum valid` };
  }
  return undefined;
}

/** Executables and scripts are never ISO, UDF or fixed VHD images: they cost one read. */
function mayBeImage(head: Uint8Array): boolean {
  return !(startsWith(head, 0, ELF) || startsWith(head, 0, SHEBANG));
}

/** The format of the image file at `fsPath` (symlinks followed), or undefined. */
export function sniffFile(fsPath: string): Detection | undefined {
  let fd: number;
  try {
    fd = openSync(fsPath, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (err) {
    throw new NixSealError('EIO', `Cannot sniff ${fsPath}: ${describeSystemError(err)}`, { path: fsPath, cause: err });
  }
  try {
    let size: number;
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new NixSealError('EIO', `Cannot sniff ${fsPath}: not a regular file`, { path: fsPath });
      size = st.size;
    } catch (err) {
      if (err instanceof NixSealError) throw err;
      throw new NixSealError('EIO', `Cannot sniff ${fsPath}: ${describeSystemError(err)}`, { path: fsPath, cause: err });
    }
    return sniffSource(new SharedBufferFile(fd, fsPath, size));
  } finally {
    closeSync(fd);
  }
}

/** One sniffed image file of a store path. */
export interface SniffedFile {
  /** Relative to the store path; '' when the store path is itself the file. */
  file: string;
  detection: Detection;
}

/** Is a whole store path an image (a file that is one, or a directory of nothing but images)? */
export interface PathSniff {
  image: boolean;
  kind: 'file' | 'directory' | 'symlink';
  /** The image files found; complete only when `image`. */
  files: SniffedFile[];
  /** In words, for `suggest` and warnings: why it is, or the first reason it is not. */
  reason: string;
}

export interface SniffLimits {
  /** A directory with more entries (files, symlinks, subdirectories) than this is not treated as an image. Default 1000. */
  maxFiles?: number;
  /** Nor one nested deeper than this many directories. Default 32. */
  maxDepth?: number;
}

const DEFAULT_MAX_FILES = 1000;
const DEFAULT_MAX_DEPTH = 32;
const MAX_SYMLINK_HOPS = 8;

/**
 * Sniffs a store path on disk. A directory is an image when every regular file in it (outside a
 * top-level `nix-support/`, which holds build metadata such as hydra-build-products) is an image,
 * there is at least one, and every symlink stays inside the store path and ends at an image or a
 * directory. The walk stops at the first file that is not an image, so a package of executables
 * costs one read.
 */
export function sniffStorePath(fsPath: string, limits: SniffLimits = {}): PathSniff {
  const maxFiles = limits.maxFiles ?? DEFAULT_MAX_FILES;
  const maxDepth = limits.maxDepth ?? DEFAULT_MAX_DEPTH;
  const st = lstatOrFail(fsPath);
  if (st.isSymbolicLink()) return { image: false, kind: 'symlink', files: [], reason: 'is a symlink' };
  if (st.isFile()) {
    const d = sniffFile(fsPath);
    return d === undefined
      ? { image: false, kind: 'file', files: [], reason: 'is not an image' }
      : { image: true, kind: 'file', files: [{ file: '', detection: d }], reason: `is an image: ${d.why}` };
  }
  if (!st.isDirectory()) return { image: false, kind: 'file', files: [], reason: 'is not a regular file, directory or symlink' };

  const files: SniffedFile[] = [];
  const imageFiles = new Set<string>();
  const symlinks: string[] = [];
  let entries = 0;
  const notImage = (reason: string): PathSniff => ({ image: false, kind: 'directory', files: [], reason });

  // Depth-first in byte order, like a NAR, so the result does not depend on the file system.
  const walk = (dir: string, rel: string, depth: number): string | undefined => {
    for (const e of readDirSorted(dir)) {
      const r = rel === '' ? e.name : `${rel}/${e.name}`;
      if (rel === '' && e.name === 'nix-support' && e.isDirectory()) continue;
      if (++entries > maxFiles) return `has more than ${maxFiles} entries`;
      if (e.isDirectory()) {
        if (depth >= maxDepth) return `${r} is nested deeper than ${maxDepth} directories`;
        const why = walk(path.join(dir, e.name), r, depth + 1);
        if (why !== undefined) return why;
        continue;
      }
      if (e.isSymbolicLink()) symlinks.push(r);
      else if (e.isFile()) {
        const d = sniffFile(path.join(dir, e.name));
        if (d === undefined) return `${r} is not an image`;
        files.push({ file: r, detection: d });
        imageFiles.add(r);
      } else return `${r} is not a regular file, directory or symlink`;
    }
    return undefined;
  };
  const why = walk(fsPath, '', 0);
  if (why !== undefined) return notImage(why);
  if (files.length === 0) return notImage('has no files outside nix-support/');
  for (const link of symlinks) {
    const problem = checkSymlink(fsPath, link, imageFiles);
    if (problem !== undefined) return notImage(problem);
  }
  return { image: true, kind: 'directory', files, reason: describeImages(files) };
}

/** Why the symlink `link` (relative to the store path) breaks self-containment, or undefined. */
function checkSymlink(root: string, link: string, imageFiles: Set<string>): string | undefined {
  const base = path.basename(root);
  let current = link;
  for (let hop = 0; hop < MAX_SYMLINK_HOPS; hop++) {
    const target = readLinkOrFail(path.join(root, current));
    let resolved: string;
    if (path.posix.isAbsolute(target)) {
      // An absolute link into the store path itself names it by its store path: …/<base>/rest.
      const marker = `/${base}`;
      const at = target.indexOf(`${marker}/`);
      if (at < 0 && !target.endsWith(marker)) return `${link} is a symlink to ${target}, outside the store path`;
      resolved = at < 0 ? '' : path.posix.normalize(target.slice(at + marker.length + 1));
    } else {
      resolved = path.posix.normalize(path.posix.join(path.posix.dirname(current), target));
    }
    if (resolved === '..' || resolved.startsWith('../')) return `${link} is a symlink to ${target}, outside the store path`;
    if (resolved === '.' || resolved === '') return undefined;
    const fsTarget = path.join(root, resolved);
    let st;
    try {
      st = lstatSync(fsTarget);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return `${link} is a dangling symlink`;
      throw new NixSealError('EIO', `Cannot sniff ${fsTarget}: ${describeSystemError(err)}`, { path: fsTarget, cause: err });
    }
    if (st.isDirectory()) return undefined;
    if (st.isFile()) {
      if (imageFiles.has(resolved)) return undefined;
      // A file the walk skipped (in nix-support/): it must be an image too.
      return sniffFile(fsTarget) === undefined ? `${link} points to ${resolved}, which is not an image` : undefined;
    }
    if (!st.isSymbolicLink()) return `${link} points to ${resolved}, which is not a regular file or directory`;
    current = resolved;
  }
  return `${link} is a symlink loop (more than ${MAX_SYMLINK_HOPS} hops)`;
}

function describeImages(files: SniffedFile[]): string {
  const shown = files.slice(0, 3).map((f) => `${f.file} (${f.detection.format})`);
  const more = files.length > 3 ? `, and ${files.length - 3} more` : '';
  return files.length === 1 ? `${files[0]!.file} is an image: ${files[0]!.detection.why}` : `${files.length} image files: ${shown.join(', ')}${more}`;
}

// ---------------------------------------------------------------------------------------------
// Reading

/**
 * A file read into one preallocated buffer. The sniffer keeps at most three reads alive at a
 * time (head, volume descriptors, footer), each placed after the previous one; each sniff makes a
 * new SharedBufferFile, which starts at the beginning of the buffer again.
 */
class SharedBufferFile extends FdSource {
  private static readonly buffer = Buffer.allocUnsafe(64 * 1024);
  private used = 0;
  override read(offset: number, length: number): Uint8Array {
    this.checkRange(offset, length);
    const shared = SharedBufferFile.buffer;
    const fits = this.used + length <= shared.length;
    const out = fits ? shared.subarray(this.used, this.used + length) : Buffer.allocUnsafe(length);
    if (fits) this.used += length;
    this.readInto(out, offset);
    return out;
  }
}

function lstatOrFail(p: string) {
  try {
    return lstatSync(p);
  } catch (err) {
    throw new NixSealError('EIO', `Cannot sniff ${p}: ${describeSystemError(err)}`, { path: p, cause: err });
  }
}

function readDirSorted(dir: string): Dirent[] {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    throw new NixSealError('EIO', `Cannot sniff ${dir}: ${describeSystemError(err)}`, { path: dir, cause: err });
  }
  return entries.length < 2 ? entries : entries.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
}

function readLinkOrFail(p: string): string {
  try {
    return readlinkSync(p, 'utf8');
  } catch (err) {
    throw new NixSealError('EIO', `Cannot sniff ${p}: ${describeSystemError(err)}`, { path: p, cause: err });
  }
}

// ---------------------------------------------------------------------------------------------
// Byte helpers

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
const ELF = ascii('\x7fELF');
const SHEBANG = ascii('#!');
// Magic numbers, made once (sniffing runs for thousands of files).
const VHDX_MAGIC = ascii('vhdxfile');
const VHDX_HEADER = ascii('head');
const VMDK_DESCRIPTOR = ascii('# Disk DescriptorFile');
const VHD_COOKIE = ascii('conectix');
const GPT_SIGNATURE = ascii('EFI PART');
const SQUASHFS_MAGIC = ascii('hsqs');
const USTAR = ascii('ustar');
const GNU_TAR = ascii('ustar  \0');
const XZ_MAGIC = Uint8Array.of(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00);
const BZIP2_MAGIC = ascii('BZh');
const BZIP2_BLOCK = Uint8Array.of(0x31, 0x41, 0x59, 0x26, 0x53, 0x59);
const BZIP2_END = Uint8Array.of(0x17, 0x72, 0x45, 0x38, 0x50, 0x90);

function startsWith(b: Uint8Array, at: number, magic: Uint8Array): boolean {
  if (at + magic.length > b.length) return false;
  for (let i = 0; i < magic.length; i++) if (b[at + i] !== magic[i]) return false;
  return true;
}
const u8 = (b: Uint8Array, at: number): number => b[at]!;
const le16 = (b: Uint8Array, at: number): number => b[at]! | (b[at + 1]! << 8);
const be16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;
const le32 = (b: Uint8Array, at: number): number => (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
const be32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
/** 64-bit little-endian as a double (exact below 2^53, which is all a file size needs). */
const le64 = (b: Uint8Array, at: number): number => le32(b, at) + le32(b, at + 4) * 2 ** 32;
const be64 = (b: Uint8Array, at: number): number => be32(b, at) * 2 ** 32 + be32(b, at + 4);
const latin1 = (b: Uint8Array, at: number, n: number): string => String.fromCharCode(...b.subarray(at, at + n));

/** An archive entry's name for a message: up to 64 bytes, up to a NUL, non-printables as '.'. */
function entryName(b: Uint8Array, at: number, n: number): string {
  let out = '';
  for (let i = at; i < Math.min(at + Math.min(n, 64), b.length) && b[i] !== 0; i++) out += b[i]! >= 0x20 && b[i]! < 0x7f ? String.fromCharCode(b[i]!) : '.';
  return out;
}

function allMatch(b: Uint8Array, at: number, n: number, ok: (c: number) => boolean): boolean {
  if (at + n > b.length) return false;
  for (let i = at; i < at + n; i++) if (!ok(b[i]!)) return false;
  return true;
}
const isHex = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
const isOctal = (c: number): boolean => c >= 0x30 && c <= 0x37;
const isPowerOfTwo = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

// ---------------------------------------------------------------------------------------------
// Formats recognised from the first 8 KiB

type HeadSniffer = (head: Uint8Array, size: number, src: SniffSource) => Detection | undefined;

/** In order: containers, then partition tables, filesystems, archives and compressed streams. */
const HEAD_SNIFFERS: HeadSniffer[] = [qcow2, vhdx, vmdk, vhdAtStart, gpt, squashfs, erofs, ext, cpio, tar, gzip, xz, zstd, bzip2, lz4, mbr];

function sniffHead(head: Uint8Array, size: number, src: SniffSource): Detection | undefined {
  for (const sniff of HEAD_SNIFFERS) {
    const d = sniff(head, size, src);
    if (d !== undefined) return d;
  }
  return undefined;
}

/** qcow2 (QEMU): "QFI\xfb", version 2 or 3, cluster bits 9…21. */
function qcow2(h: Uint8Array): Detection | undefined {
  if (h.length < 32 || be32(h, 0) !== 0x514649fb) return undefined;
  const version = be32(h, 4);
  const clusterBits = be32(h, 20);
  if ((version !== 2 && version !== 3) || clusterBits < 9 || clusterBits > 21) return undefined;
  return { format: 'qcow2', offset: 0, why: `qcow2 version ${version} header, ${2 ** clusterBits}-byte clusters, virtual size ${be64(h, 24)}` };
}

/** VHDX: the file type identifier "vhdxfile", and the first header's "head" signature at 64 KiB. */
function vhdx(h: Uint8Array, size: number, src: SniffSource): Detection | undefined {
  if (!startsWith(h, 0, VHDX_MAGIC) || size < 1024 * 1024) return undefined;
  if (!startsWith(src.read(64 * 1024, 4), 0, VHDX_HEADER)) return undefined;
  return { format: 'vhdx', offset: 0, why: 'VHDX file type identifier and header signature at 65536' };
}

/** VMDK: a hosted sparse extent ("KDMV", version 1…3, power-of-two grain) or a text descriptor. */
function vmdk(h: Uint8Array): Detection | undefined {
  if (h.length >= 28 && le32(h, 0) === 0x564d444b) {
    const version = le32(h, 4);
    const grain = le64(h, 20);
    if (version < 1 || version > 3 || grain < 1 || !isPowerOfTwo(grain)) return undefined;
    return { format: 'vmdk', offset: 0, why: `VMDK sparse extent header version ${version}, capacity ${le64(h, 12)} sectors` };
  }
  if (startsWith(h, 0, VMDK_DESCRIPTOR)) return { format: 'vmdk', offset: 0, why: 'VMDK text descriptor' };
  return undefined;
}

/** A dynamic VHD keeps a copy of its footer at the start. */
function vhdAtStart(h: Uint8Array): Detection | undefined {
  if (!isVhdFooter(h)) return undefined;
  return { format: 'vhd', offset: 0, why: `VHD footer copy (${vhdDiskType(h)}) at the start, checksum valid` };
}

/** A VHD footer: "conectix", version 1.0, a known disk type, and its one's-complement checksum. */
function isVhdFooter(f: Uint8Array): boolean {
  if (f.length < VHD_FOOTER_SIZE || !startsWith(f, 0, VHD_COOKIE) || be32(f, 12) !== 0x00010000) return false;
  const type = be32(f, 60);
  if (type !== 2 && type !== 3 && type !== 4) return false;
  let sum = 0;
  for (let i = 0; i < VHD_FOOTER_SIZE; i++) if (i < 64 || i >= 68) sum += f[i]!;
  return (~sum >>> 0) === be32(f, 64);
}
function vhdDiskType(f: Uint8Array): string {
  return ['', '', 'fixed', 'dynamic', 'differencing'][be32(f, 60)] ?? 'unknown';
}

/** GPT: "EFI PART" in LBA 1 (512- or 4096-byte sectors), revision 1.0, and its header CRC32. */
function gpt(h: Uint8Array): Detection | undefined {
  for (const sector of [512, 4096]) {
    const at = sector;
    if (!startsWith(h, at, GPT_SIGNATURE) || at + 92 > h.length) continue;
    const headerSize = le32(h, at + 12);
    if (le32(h, at + 8) !== 0x00010000 || headerSize < 92 || headerSize > sector || at + headerSize > h.length) continue;
    if (le64(h, at + 24) !== 1) continue; // the primary header says it is at LBA 1
    const header = Uint8Array.from(h.subarray(at, at + headerSize));
    header.fill(0, 16, 20);
    if (crc32(header) !== le32(h, at + 16)) continue;
    return { format: 'gpt', offset: at, why: `GPT header at ${at} (${sector}-byte sectors, ${le32(h, at + 80)} partition entries), CRC32 valid` };
  }
  return undefined;
}

const SQUASHFS_COMPRESSORS = ['', 'gzip', 'lzma', 'lzo', 'xz', 'lz4', 'zstd'];

/** squashfs 4.0: "hsqs", version 4.0, block size 4 KiB…1 MiB matching its log, a known compressor. */
function squashfs(h: Uint8Array, size: number): Detection | undefined {
  if (h.length < 96 || !startsWith(h, 0, SQUASHFS_MAGIC)) return undefined;
  const blockSize = le32(h, 12);
  const blockLog = le16(h, 22);
  const compressor = SQUASHFS_COMPRESSORS[le16(h, 20)];
  const bytesUsed = le64(h, 40);
  if (le16(h, 28) !== 4 || le16(h, 30) !== 0 || blockLog < 12 || blockLog > 20 || blockSize !== 2 ** blockLog) return undefined;
  if (!compressor || bytesUsed < 96 || bytesUsed > size) return undefined;
  return { format: 'squashfs', offset: 0, why: `squashfs 4.0 superblock, ${compressor}, ${blockSize / 1024} KiB blocks, ${le32(h, 4)} inodes` };
}

/** EROFS: magic 0xE0F5E1E2 at 1024, block size 512 B…64 KiB, its blocks within the file. */
function erofs(h: Uint8Array, size: number): Detection | undefined {
  const sb = 1024;
  if (h.length < sb + 64 || le32(h, sb) !== 0xe0f5e1e2) return undefined;
  const bits = u8(h, sb + 12);
  const blocks = le32(h, sb + 36);
  if (bits < 9 || bits > 16 || blocks < 1 || blocks * 2 ** bits > size + 2 ** bits) return undefined;
  return { format: 'erofs', offset: sb, why: `EROFS superblock at 1024, ${2 ** bits}-byte blocks, ${blocks} blocks` };
}

const EXT_COMPAT_HAS_JOURNAL = 0x4;
const EXT4_INCOMPAT = { extents: 0x40, '64bit': 0x80, flex_bg: 0x200, inline_data: 0x8000 } as const;
const EXT4_RO_COMPAT = { huge_file: 0x8, gdt_csum: 0x10, dir_nlink: 0x20, extra_isize: 0x40, metadata_csum: 0x400 } as const;

/**
 * ext2/3/4: magic 0xEF53 at 1080 with a consistent superblock. Which of the three is decided as
 * the kernel's ext4 driver would describe it: ext4-only features make ext4, a journal ext3.
 */
function ext(h: Uint8Array): Detection | undefined {
  const sb = 1024;
  if (h.length < sb + 256 || le16(h, sb + 56) !== 0xef53) return undefined;
  const logBlock = le32(h, sb + 24);
  if (le32(h, sb) === 0 || le32(h, sb + 4) === 0 || logBlock > 6 || le32(h, sb + 76) > 1) return undefined;
  const blockSize = 1024 << logBlock;
  const blocksPerGroup = le32(h, sb + 32);
  if (blocksPerGroup === 0 || blocksPerGroup > 8 * blockSize || le32(h, sb + 40) === 0) return undefined;
  const compat = le32(h, sb + 92);
  const incompat = le32(h, sb + 96);
  const roCompat = le32(h, sb + 100);
  const ext4Features = [
    ...Object.entries(EXT4_INCOMPAT).filter(([, bit]) => incompat & bit),
    ...Object.entries(EXT4_RO_COMPAT).filter(([, bit]) => roCompat & bit),
  ].map(([name]) => name);
  const format = ext4Features.length > 0 ? 'ext4' : compat & EXT_COMPAT_HAS_JOURNAL ? 'ext3' : 'ext2';
  const features = format === 'ext4' ? `; ${ext4Features.join(', ')}` : format === 'ext3' ? '; has_journal' : '';
  return { format, offset: sb, why: `${format} superblock at 1024 (${blockSize}-byte blocks${features})` };
}

/** cpio: "new ASCII" (070701), its CRC variant (070702) or the portable "odc" format (070707). */
function cpio(h: Uint8Array): Detection | undefined {
  const magic = latin1(h, 0, 6);
  if (magic === '070701' || magic === '070702') {
    const NEWC_HEADER = 110;
    if (!allMatch(h, 6, 104, isHex)) return undefined;
    const field = (i: number): number => parseInt(latin1(h, 6 + 8 * i, 8), 16);
    const nameSize = field(11);
    if (nameSize < 1 || nameSize > 4096 || (magic === '070701' && field(12) !== 0)) return undefined;
    const nul = NEWC_HEADER + nameSize - 1;
    if (nul < h.length && h[nul] !== 0) return undefined;
    const format = magic === '070701' ? 'cpio-newc' : 'cpio-crc';
    return { format, offset: 0, why: `cpio ${magic === '070701' ? 'newc' : 'crc'} header, first entry "${entryName(h, NEWC_HEADER, nameSize - 1)}"` };
  }
  if (magic === '070707') {
    const ODC_HEADER = 76;
    if (!allMatch(h, 6, 70, isOctal)) return undefined;
    const nameSize = parseInt(latin1(h, 59, 6), 8);
    if (nameSize < 1 || nameSize > 4096) return undefined;
    const nul = ODC_HEADER + nameSize - 1;
    if (nul < h.length && h[nul] !== 0) return undefined;
    return { format: 'cpio-odc', offset: 0, why: `cpio odc header, first entry "${entryName(h, ODC_HEADER, nameSize - 1)}"` };
  }
  return undefined;
}

/** tar: a POSIX ustar (or GNU) header whose checksum matches. */
function tar(h: Uint8Array): Detection | undefined {
  if (h.length < 512 || !startsWith(h, 257, USTAR) || h[0] === 0) return undefined;
  const field = latin1(h, 148, 8).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (!/^[0-7]{1,7}$/.test(field)) return undefined;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  const stored = parseInt(field, 8);
  if (stored !== unsigned && stored !== signed) return undefined;
  const gnu = startsWith(h, 257, GNU_TAR);
  return { format: 'tar', offset: 0, why: `${gnu ? 'GNU' : 'ustar'} tar header, checksum valid, first entry "${entryName(h, 0, 100)}"` };
}

/** gzip: 1f 8b, deflate, reserved flag bits clear, a known XFL and OS byte. */
function gzip(h: Uint8Array): Detection | undefined {
  if (h.length < 18 || h[0] !== 0x1f || h[1] !== 0x8b || h[2] !== 8) return undefined;
  const flags = u8(h, 3);
  const xfl = u8(h, 8);
  const os = u8(h, 9);
  if (flags & 0xe0 || (xfl !== 0 && xfl !== 2 && xfl !== 4) || (os > 13 && os !== 255)) return undefined;
  return { format: 'gzip', offset: 0, why: 'gzip member header (deflate, reserved flags clear)' };
}

/** xz: the stream header magic, and its stream flags' CRC32. */
function xz(h: Uint8Array): Detection | undefined {
  if (h.length < 32 || !startsWith(h, 0, XZ_MAGIC)) return undefined;
  if (h[6] !== 0 || h[7]! > 0x0f || crc32(h.subarray(6, 8)) !== le32(h, 8)) return undefined;
  return { format: 'xz', offset: 0, why: 'xz stream header, flags CRC32 valid' };
}

/** zstd: a frame (magic 0xFD2FB528) with a valid frame header and a first block of a real type. */
function zstd(h: Uint8Array): Detection | undefined {
  if (h.length < 9 || le32(h, 0) !== 0xfd2fb528) return undefined;
  const fhd = u8(h, 4);
  if (fhd & 0x08) return undefined; // reserved bit
  const singleSegment = (fhd >> 5) & 1;
  const fcsFlag = fhd >> 6;
  const dictBytes = [0, 1, 2, 4][fhd & 3]!;
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  if (!singleSegment && u8(h, 5) >> 3 > 31 - 10) return undefined; // window log beyond 31
  const block = 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
  if (block + 3 > h.length || ((h[block]! >> 1) & 3) === 3) return undefined; // block type 3 is reserved
  return { format: 'zstd', offset: 0, why: 'zstd frame header, first block valid' };
}

/** bzip2: "BZh", a block size 1…9, then a block's or the end-of-stream's 48-bit magic. */
function bzip2(h: Uint8Array): Detection | undefined {
  if (h.length < 10 || !startsWith(h, 0, BZIP2_MAGIC) || h[3]! < 0x31 || h[3]! > 0x39) return undefined;
  const block = startsWith(h, 4, BZIP2_BLOCK);
  const end = startsWith(h, 4, BZIP2_END);
  if (!block && !end) return undefined;
  return { format: 'bzip2', offset: 0, why: `bzip2 stream, ${String.fromCharCode(h[3]!)}00k blocks, ${block ? 'block' : 'end-of-stream'} magic` };
}

/** lz4: a frame (magic 0x184D2204) whose descriptor checksum (xxHash32) matches, or the legacy format. */
function lz4(h: Uint8Array): Detection | undefined {
  if (h.length < 7) return undefined;
  if (le32(h, 0) === 0x184d2204) {
    const flg = u8(h, 4);
    const bd = u8(h, 5);
    if (flg >> 6 !== 1 || flg & 0x02 || bd & 0x8f || ((bd >> 4) & 7) < 4) return undefined;
    const descriptorEnd = 6 + (flg & 0x08 ? 8 : 0) + (flg & 0x01 ? 4 : 0);
    if (descriptorEnd >= h.length || ((xxh32(h.subarray(4, descriptorEnd)) >>> 8) & 0xff) !== h[descriptorEnd]) return undefined;
    return { format: 'lz4', offset: 0, why: 'lz4 frame header, descriptor checksum valid' };
  }
  if (le32(h, 0) === 0x184c2102) {
    const first = le32(h, 4);
    if (first === 0 || first > 8 * 1024 * 1024 + 32 * 1024 + 16) return undefined; // LZ4_compressBound(8 MiB)
    return { format: 'lz4', offset: 0, why: 'lz4 legacy frame, first block size valid' };
  }
  return undefined;
}

/** xxHash32 with seed 0, for inputs shorter than 16 bytes (an lz4 frame descriptor is at most 14). */
function xxh32(input: Uint8Array): number {
  const P1 = 2654435761;
  const P2 = 2246822519;
  const P3 = 3266489917;
  const P4 = 668265263;
  const P5 = 374761393;
  const rotl = (x: number, r: number): number => (x << r) | (x >>> (32 - r));
  let h = (P5 + input.length) | 0;
  let i = 0;
  for (; i + 4 <= input.length; i += 4) h = Math.imul(rotl((h + Math.imul(le32(input, i), P3)) | 0, 17), P4);
  for (; i < input.length; i++) h = Math.imul(rotl((h + Math.imul(input[i]!, P5)) | 0, 11), P1);
  h ^= h >>> 15;
  h = Math.imul(h, P2);
  h ^= h >>> 13;
  h = Math.imul(h, P3);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * MBR: the 0x55AA signature and a partition table that makes sense: boot flags 0x00 or 0x80, at
 * least one partition, each starting after sector 0 and inside 2 TiB. A protective MBR (type 0xEE)
 * without a valid GPT header is not accepted: the GPT sniffer ran first.
 */
function mbr(h: Uint8Array): Detection | undefined {
  if (h.length < 512 || h[510] !== 0x55 || h[511] !== 0xaa) return undefined;
  let partitions = 0;
  for (let i = 0; i < 4; i++) {
    const e = 446 + 16 * i;
    const status = u8(h, e);
    const type = u8(h, e + 4);
    if (status !== 0 && status !== 0x80) return undefined;
    if (type === 0) continue;
    const start = le32(h, e + 8);
    const count = le32(h, e + 12);
    if (type === 0xee || start === 0 || count === 0 || start + count > 2 ** 32) return undefined;
    partitions++;
  }
  if (partitions === 0) return undefined;
  return { format: 'mbr', offset: 0, why: `MBR partition table with ${partitions} partition${partitions === 1 ? '' : 's'}` };
}

// ---------------------------------------------------------------------------------------------
// Optical images: the volume recognition sequence from 32 KiB

/**
 * ISO 9660 (a valid primary volume descriptor) or else UDF (BEA01, then NSR02 or NSR03). A UDF
 * "bridge" image has both and is reported as ISO 9660, which nix-seal can read.
 */
function sniffVolumeRecognition(vrs: Uint8Array): Detection | undefined {
  let beaSeen = false;
  let udf: Detection | undefined;
  for (let at = 0; at + SECTOR <= vrs.length; at += SECTOR) {
    const id = latin1(vrs, at + 1, 5);
    const version = u8(vrs, at + 6);
    if (id === 'CD001') {
      const type = u8(vrs, at);
      if (type === 1) {
        const pvd = primaryVolumeDescriptor(vrs, at);
        if (pvd !== undefined) return { format: 'iso9660', offset: VRS_START + at, why: pvd };
      }
      if (type === 255) continue; // set terminator; UDF descriptors may follow
    } else if (id === 'BEA01' && version === 1) beaSeen = true;
    else if ((id === 'NSR02' || id === 'NSR03') && version === 1 && beaSeen && udf === undefined) {
      udf = { format: 'udf', offset: VRS_START + at, why: `UDF volume recognition sequence (BEA01, ${id} at ${VRS_START + at})` };
    } else if (id === 'TEA01') break;
  }
  return udf;
}

/** Why the descriptor at `at` is a valid ISO 9660 PVD (both-endian fields agree), or undefined. */
function primaryVolumeDescriptor(d: Uint8Array, at: number): string | undefined {
  if (u8(d, at + 6) !== 1 || u8(d, at + 881) !== 1) return undefined;
  const blockSize = le16(d, at + 128);
  const blocks = le32(d, at + 80);
  if (blockSize !== be16(d, at + 130) || ![512, 1024, 2048].includes(blockSize)) return undefined;
  if (blocks === 0 || blocks !== be32(d, at + 84) || u8(d, at + 156) !== 34) return undefined;
  const label = entryName(d, at + 40, 32).trim();
  return `ISO 9660 primary volume descriptor at ${VRS_START + at} (${label ? `volume "${label}", ` : ''}${blocks} blocks of ${blockSize} bytes)`;
}
