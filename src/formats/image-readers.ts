/**
 * The image formats nix-seal can look inside, in the order they are tried: a hybrid ISO (MBR and
 * ISO 9660) is read as the ISO, so ISO 9660 comes before the partition tables. A new format adds
 * its ImageReader here.
 */
import type { ByteSource } from './byte-source.js';
import { compressedStreamReader } from './compressed-stream.js';
import { cpioReader } from './cpio.js';
import type { ImageReader, ImageView } from './image.js';
import { erofsReader } from './erofs.js';
import { ext4Reader } from './ext4.js';
import { fatReader } from './fat.js';
import { iso9660Reader } from './iso9660.js';
import { partitionTableReader } from './partitions.js';
import { qcow2Reader } from './qcow2.js';
import { squashfsReader } from './squashfs.js';
import { tarReader } from './tar.js';

// Strong structure first (magic plus checked fields), the weakest magic (gzip's 3 bytes) last. A
// hybrid ISO is read as the ISO, a partitioned disk as its partitions (FAT's detection wants a BPB,
// which an MBR lacks).
export const IMAGE_READERS: readonly ImageReader[] = [
  squashfsReader,
  iso9660Reader,
  qcow2Reader,
  partitionTableReader,
  ext4Reader,
  erofsReader,
  fatReader,
  tarReader,
  cpioReader,
  compressedStreamReader,
];

/** The reader whose detection accepts `src`, if any. */
export function readerFor(src: ByteSource): ImageReader | undefined {
  for (const r of IMAGE_READERS) if (r.detect(src)) return r;
  return undefined;
}

/**
 * Opens the image in `src` if a reader recognises it; undefined for anything else. A corrupt or
 * unsupported image of a known format throws the reader's NixSealError (EFORMAT).
 */
export function openImageView(src: ByteSource, name: string): ImageView | undefined {
  return readerFor(src)?.open(src, name);
}
