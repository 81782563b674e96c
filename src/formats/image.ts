/**
 * What every image reader offers (ISO 9660, squashfs, and each format added after them): a tree
 * of entries whose contents can be streamed (to hash a copy as a NAR), a way to say what holds a
 * byte of the image (evidence), and random access to a file inside it when the format allows (to
 * open an image nested in it). Types only: the registry of readers is in image-readers.ts.
 */
import { itemAt } from '../checked-index.js';
import type { ByteSource } from './byte-source.js';

/** An entry inside an image, whatever the format. */
/** The POSIX file-type bits of a mode, as ext4, EROFS, cpio and Rock Ridge record them. */
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

/** An entry's type from its POSIX mode: directories, regular files, symlinks, and the rest special. */
export function entryTypeOfMode(mode: number): InnerEntry['type'] {
  const fmt = mode & S_IFMT;
  return fmt === S_IFDIR ? 'dir' : fmt === S_IFREG ? 'file' : fmt === S_IFLNK ? 'symlink' : 'special';
}

export interface InnerEntry {
  /** Path inside the image without a leading '/', '' for the root. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'special';
  /** Files: bytes of data. Others: whatever the format records (not used). */
  size: number;
  /**
   * Files: the owner-executable bit (S_IXUSR), the one permission a NAR records. A format that
   * records no permissions (ISO 9660 without Rock Ridge, FAT) gives what it would show mounted.
   */
  executable?: boolean;
  /** Symlinks: the target, as stored. */
  target?: string;
  /** Where the entry is named in the image (an ISO directory record), when the format says. */
  recordOffset?: number;
  /**
   * The file's bytes as one contiguous, uncompressed range of the image (ISO files are; squashfs
   * files are compressed blocks): evidence offsets inside it map straight to the outer image.
   */
  window?: { offset: number; length: number };
}

/** Who holds a byte of an image, in words, and the file inside when it is file data. */
export interface InnerOwner {
  /** The entry holding the byte or naming the record (a path inside the image), if any. */
  path?: string;
  /** When the byte is a file's data and the format lets us say where: the offset in that file. */
  offsetInFile?: number;
  /** e.g. "data of boot/grub/grub.cfg", "directory record of nix/store/…-bash", "squashfs directory table". */
  what: string;
}

export interface ImageView {
  /** The format, e.g. 'iso9660', 'squashfs'. */
  readonly kind: string;
  /** For messages: "ISO 9660 (Rock Ridge, Joliet, El Torito)", "squashfs (xz)". */
  readonly description: string;
  /** Every entry, the root ('') first, parents before their children. */
  entries(): Iterable<InnerEntry>;
  /** A regular file's contents, in chunks, exactly `entry.size` bytes in all. */
  read(entry: InnerEntry): Iterable<Uint8Array>;
  /**
   * Random access to a regular file's bytes, for opening an image stored in it; undefined when the
   * format cannot seek inside the file cheaply (compressed data).
   */
  fileSource(entry: InnerEntry): ByteSource | undefined;
  locate(offset: number): InnerOwner;
  /** The image's own bytes. */
  readonly source: ByteSource;
}

/** A format nix-seal can look inside: detection by structure, and the reader. */
export interface ImageReader {
  readonly kind: string;
  /** Cheap check of the structure at the start of `src` (a few small reads). */
  detect(src: ByteSource): boolean;
  /** Opens the image; a corrupt one throws NixSealError EFORMAT with the offset. */
  open(src: ByteSource, name: string): ImageView;
}

/** A whole (small) file of an image in memory. */
export function readWhole(view: ImageView, entry: InnerEntry): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const c of view.read(entry)) parts.push(c);
  return parts.length === 1 ? itemAt(parts, 0) : Buffer.concat(parts);
}
