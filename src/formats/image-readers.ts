/**
 * The image formats nix-seal can look inside, in the order they are tried: a hybrid ISO (MBR and
 * ISO 9660) is read as the ISO, so ISO 9660 comes before the partition tables. A new format adds
 * its ImageReader here.
 */
import type { ByteSource } from './byte-source.js';
import type { ImageReader, ImageView } from './image.js';
import { erofsReader } from './erofs.js';
import { ext4Reader } from './ext4.js';
import { fatReader } from './fat.js';
import { iso9660Reader } from './iso9660.js';
import { squashfsReader } from './squashfs.js';

export const IMAGE_READERS: readonly ImageReader[] = [squashfsReader, iso9660Reader, ext4Reader, erofsReader, fatReader];

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
