/**
 * UDF (DVD and Blu-ray images): detection only. nix-seal does not read inside UDF, so a UDF seal
 * is reported as an opaque image ("nix-seal cannot look inside it"). A UDF "bridge" image that
 * also carries ISO 9660 descriptors is read as the ISO (the sniffer asks ISO 9660 first).
 */
import { latin1, u8 } from './bytes.js';
import type { Detection } from './detection.js';

/** The volume recognition sequence: 2048-byte descriptors from 32 KiB, as ISO 9660's. */
export const VRS_OFFSET = 32 * 1024;
export const VRS_DESCRIPTOR_SIZE = 2048;
const VSD = { structureType: 0, standardId: 1, version: 6 } as const;

/**
 * UDF: an extended area (BEA01) then an NSR02 or NSR03 descriptor in `vrs`, bytes at file offset
 * `offset` (normally VRS_OFFSET); the sequence ends at TEA01.
 */
export function detectUdf(vrs: Uint8Array, offset: number): Detection | undefined {
  let beaSeen = false;
  for (let at = 0; at + VRS_DESCRIPTOR_SIZE <= vrs.length; at += VRS_DESCRIPTOR_SIZE) {
    const id = latin1(vrs, at + VSD.standardId, 5);
    const version = u8(vrs, at + VSD.version);
    if (id === 'BEA01' && version === 1) beaSeen = true;
    else if ((id === 'NSR02' || id === 'NSR03') && version === 1 && beaSeen) {
      return { format: 'udf', offset: offset + at, why: `UDF volume recognition sequence (BEA01, ${id} at ${offset + at})` };
    } else if (id === 'TEA01') break;
  }
  return undefined;
}
