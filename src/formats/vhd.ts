/**
 * VHD (Virtual PC / Hyper-V) disk images: detection only. nix-seal does not read inside them, so
 * a VHD seal is reported as an opaque image ("nix-seal cannot look inside it").
 *
 * A VHD is recognised by its 512-byte footer: at the end of a fixed VHD, and copied at the start
 * of a dynamic or differencing one.
 */
import { u8At } from '../checked-index.js';
import { be32, magicBytes, startsWith } from './bytes.js';
import type { Detection } from './detection.js';

export const VHD_FOOTER_SIZE = 512;
const COOKIE = magicBytes('conectix');
const FOOTER = { cookie: 0, version: 12, diskType: 60, checksum: 64 } as const;
const VERSION_1_0 = 0x00010000;
const DISK_TYPES = ['', '', 'fixed', 'dynamic', 'differencing'];

/**
 * A VHD footer at the start of `bytes`, which are at file offset `offset`: "conectix", version
 * 1.0, a known disk type, and its one's-complement checksum.
 */
export function detectVhd(bytes: Uint8Array, offset: number): Detection | undefined {
  if (!isVhdFooter(bytes)) return undefined;
  const type = DISK_TYPES[be32(bytes, FOOTER.diskType)] ?? 'unknown';
  const where = offset === 0 ? `footer copy (${type}) at the start` : `footer (${type}) at the end`;
  return { format: 'vhd', offset, why: `VHD ${where}, checksum valid` };
}

function isVhdFooter(f: Uint8Array): boolean {
  if (f.length < VHD_FOOTER_SIZE || !startsWith(f, FOOTER.cookie, COOKIE) || be32(f, FOOTER.version) !== VERSION_1_0) return false;
  const type = be32(f, FOOTER.diskType);
  if (type !== 2 && type !== 3 && type !== 4) return false;
  let sum = 0;
  for (let i = 0; i < VHD_FOOTER_SIZE; i++) if (i < FOOTER.checksum || i >= FOOTER.checksum + 4) sum += u8At(f, i);
  return (~sum >>> 0) === be32(f, FOOTER.checksum);
}
