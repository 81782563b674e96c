/**
 * Is this file a self-contained image? The sniffer behind `--seal-images`, `suggest` and the
 * audit's "opaque" files: it names the format of disk, filesystem, archive and compressed images
 * from their headers, the way a kernel or a loader would recognise them, not from file names.
 *
 * A magic number alone is not enough: hashes, compiled code and random data contain any four
 * bytes sooner or later, and a false "image" would erase real runtime references. So every
 * format is accepted only when the structure around its magic is consistent too (a checksum when
 * the format has one, version and size fields in their valid ranges, reserved bits clear), and a
 * near miss (the magic with a broken structure) is "not an image". Those checks are the format
 * modules' detections (src/formats/*, the same the readers use); this module is the policy: which
 * bytes to read, in which order to ask, which format wins when two match, and which store paths
 * (files, directories of images) count as images.
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
import { FdSource, type ByteSource } from '../formats/byte-source.js';
import { detectBzip2, detectGzip, detectLz4, detectXz, detectZstd } from '../formats/compressed-stream.js';
import { detectCpio } from '../formats/cpio.js';
import { HEAD_SIZE, isImage, type Detection, type ImageFormat, type Verdict } from '../formats/detection.js';
import { detectErofs } from '../formats/erofs.js';
import { isExecutableHeader } from '../formats/executable.js';
import { detectExt } from '../formats/ext4.js';
import { DETECT_DESCRIPTORS, detectIso9660, SECTOR_SIZE, SYSTEM_AREA_SIZE } from '../formats/iso9660.js';
import { detectGpt, detectMbr } from '../formats/partitions.js';
import { detectQcow2 } from '../formats/qcow2.js';
import { detectSquashfs } from '../formats/squashfs.js';
import { detectTar } from '../formats/tar.js';
import { detectUdf } from '../formats/udf.js';
import { detectVhd, VHD_FOOTER_SIZE } from '../formats/vhd.js';
import { detectVhdx, hasVhdxIdentifier, VHDX_HEADER_OFFSET, VHDX_HEADER_SIGNATURE_SIZE } from '../formats/vhdx.js';
import { detectVmdk } from '../formats/vmdk.js';

export type { Detection, ImageFormat };

/** Random access to the bytes of a file or image. */
export type SniffSource = ByteSource;

/** Files smaller than this are not images of any format here (the smallest, an empty xz stream, is 32 bytes). */
export const MIN_IMAGE_SIZE = 16;
/** ISO 9660 and UDF volume descriptors start at sector 16; 16 descriptors are read. */
const VRS_START = SYSTEM_AREA_SIZE;
const VRS_LENGTH = DETECT_DESCRIPTORS * SECTOR_SIZE;

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
  if (size >= VRS_START + SECTOR_SIZE) {
    const vrs = src.read(VRS_START, Math.min(VRS_LENGTH, size - VRS_START));
    // ISO 9660 wins over UDF in a "bridge" image that has both: nix-seal reads the ISO.
    const iso = detectIso9660(vrs, VRS_START);
    const optical = isImage(iso) ? iso : detectUdf(vrs, VRS_START);
    if (optical !== undefined) return optical;
  }
  if (fromHead !== undefined) return fromHead;
  // A fixed VHD is raw data with a footer: only the end tells, so it is asked last.
  if (size >= HEAD_SIZE + VHD_FOOTER_SIZE && size % VHD_FOOTER_SIZE === 0) {
    const footerAt = size - VHD_FOOTER_SIZE;
    return detectVhd(src.read(footerAt, VHD_FOOTER_SIZE), footerAt);
  }
  return undefined;
}

/** Executables and scripts are never ISO, UDF or fixed VHD images: they cost one read. */
function mayBeImage(head: Uint8Array): boolean {
  return !isExecutableHeader(head);
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
  const [only] = files;
  return files.length === 1 && only ? `${only.file} is an image: ${only.detection.why}` : `${files.length} image files: ${shown.join(', ')}${more}`;
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
// Formats recognised from the first 8 KiB (the detections are the format modules')

/** A format's detection; a near miss (the magic, a broken structure) is not an image. */
type HeadSniffer = (head: Uint8Array, size: number, src: SniffSource) => Verdict;

/**
 * In order: containers, then partition tables, filesystems, archives and compressed streams. An
 * MBR comes last: a filesystem or container may carry a 55 AA boot sector, and a protective MBR
 * is only a GPT's.
 */
const HEAD_SNIFFERS: HeadSniffer[] = [
  detectQcow2,
  vhdx,
  detectVmdk,
  (head) => detectVhd(head, 0), // a dynamic VHD keeps a copy of its footer at the start
  detectGpt,
  detectSquashfs,
  detectErofs,
  detectExt,
  detectCpio,
  detectTar,
  detectGzip,
  detectXz,
  detectZstd,
  detectBzip2,
  detectLz4,
  detectMbr,
];

function sniffHead(head: Uint8Array, size: number, src: SniffSource): Detection | undefined {
  for (const sniff of HEAD_SNIFFERS) {
    const d = sniff(head, size, src);
    if (isImage(d)) return d;
  }
  return undefined;
}

/** VHDX's second signature is 64 KiB in: read only when the head has its file type identifier. */
function vhdx(head: Uint8Array, size: number, src: SniffSource): Detection | undefined {
  if (!hasVhdxIdentifier(head, size)) return undefined;
  return detectVhdx(head, size, src.read(VHDX_HEADER_OFFSET, VHDX_HEADER_SIGNATURE_SIZE));
}
