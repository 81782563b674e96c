/**
 * What a format module's detection returns, and the header bytes detections look at. Every
 * format module exports a pure detection over bytes it is given (no I/O): the sniffer
 * (seal/sniff.ts) decides which bytes to read and in which order to ask, and each reader's
 * `detect` asks the same function, so a format is recognised by one code only.
 */
import type { ByteSource } from './byte-source.js';

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

/**
 * A format's magic with a structure that does not hold (a near miss): not an image for the
 * sniffer, which must not take random data for one, but the format's reader claims the file so
 * that opening it reports the corruption with its offset (a truncated squashfs is a broken
 * squashfs, not plain data). Only magics too long to turn up by chance give near misses.
 */
export interface NearMiss {
  format: ImageFormat;
  offset: number;
  nearMiss: string;
}

/** What a format module's detection says about the bytes it is given. */
export type Verdict = Detection | NearMiss | undefined;

/** Whether a verdict is a recognised image (not a near miss, not nothing). */
export function isImage(v: Verdict): v is Detection {
  return v !== undefined && !('nearMiss' in v);
}

/**
 * The first bytes of a file that header detections look at: every format but ISO 9660/UDF (32
 * KiB in), VHDX's second signature (64 KiB in) and a fixed VHD's footer (at the end) is
 * recognised from them.
 */
export const HEAD_SIZE = 8192;

const heads = new WeakMap<ByteSource, Uint8Array>();

/**
 * The head of `src` (its first HEAD_SIZE bytes, or all of a smaller file), read once per source:
 * the registry of readers asks each reader's `detect` in turn, and they all look at the head.
 */
export function headOf(src: ByteSource): Uint8Array {
  let head = heads.get(src);
  if (head === undefined) {
    // A copy: a source may hand out a view of a buffer it reuses.
    const read = src.read(0, Math.min(src.size, HEAD_SIZE));
    head = new Uint8Array(read.length);
    head.set(read);
    heads.set(src, head);
  }
  return head;
}
