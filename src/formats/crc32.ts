/**
 * CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as xz headers, GPT headers and gzip use:
 * zlib's, through node:zlib (Node ≥ 20.15, the oldest Node nix-seal supports). Its own module so
 * that the image sniffer can check headers without loading the decompressors.
 */
import { crc32 as zlibCrc32 } from 'node:zlib';

/** CRC-32 of `data`. */
export function crc32(data: Uint8Array): number {
  return zlibCrc32(data);
}
