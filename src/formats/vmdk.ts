/**
 * VMDK (VMware) disk images: detection only. nix-seal does not read inside them, so a VMDK seal
 * is reported as an opaque image ("nix-seal cannot look inside it").
 */
import { le32, le64, isPowerOfTwo, magicBytes, startsWith } from './bytes.js';
import type { Detection } from './detection.js';

/** "KDMV" read as a little-endian u32: a hosted sparse extent header. */
const SPARSE_MAGIC = 0x564d444b;
const SPARSE = { magic: 0, version: 4, capacity: 12, grainSize: 20 } as const;
const SPARSE_HEADER_MIN = 28;
const DESCRIPTOR = magicBytes('# Disk DescriptorFile');

/** VMDK: a hosted sparse extent ("KDMV", version 1…3, power-of-two grain) or a text descriptor. */
export function detectVmdk(head: Uint8Array): Detection | undefined {
  if (head.length >= SPARSE_HEADER_MIN && le32(head, SPARSE.magic) === SPARSE_MAGIC) {
    const version = le32(head, SPARSE.version);
    const grain = le64(head, SPARSE.grainSize);
    if (version < 1 || version > 3 || grain < 1 || !isPowerOfTwo(grain)) return undefined;
    return { format: 'vmdk', offset: 0, why: `VMDK sparse extent header version ${version}, capacity ${le64(head, SPARSE.capacity)} sectors` };
  }
  if (startsWith(head, 0, DESCRIPTOR)) return { format: 'vmdk', offset: 0, why: 'VMDK text descriptor' };
  return undefined;
}
