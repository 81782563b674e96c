/**
 * VHDX (Hyper-V) disk images: detection only. nix-seal does not read inside them, so a VHDX seal
 * is reported as an opaque image ("nix-seal cannot look inside it").
 *
 * Recognised from two signatures 64 KiB apart: the caller reads the second only when the first
 * is there (`hasVhdxIdentifier`), which keeps a sniff to one read for every other file.
 */
import { magicBytes, startsWith } from './bytes.js';
import type { Detection } from './detection.js';

const FILE_TYPE_IDENTIFIER = magicBytes('vhdxfile');
const HEADER_SIGNATURE = magicBytes('head');
/** The first header, whose signature confirms the file type identifier. */
export const VHDX_HEADER_OFFSET = 64 * 1024;
export const VHDX_HEADER_SIGNATURE_SIZE = HEADER_SIGNATURE.length;
/** The header region alone is 1 MiB: a smaller file is no VHDX. */
const MIN_SIZE = 1024 * 1024;

/** Whether the file (of `size` bytes, starting with `head`) may be a VHDX: read its header signature next. */
export function hasVhdxIdentifier(head: Uint8Array, size: number): boolean {
  return startsWith(head, 0, FILE_TYPE_IDENTIFIER) && size >= MIN_SIZE;
}

/** VHDX: the file type identifier "vhdxfile" in `head`, and the first header's "head" signature (`header`, read at VHDX_HEADER_OFFSET). */
export function detectVhdx(head: Uint8Array, size: number, header: Uint8Array): Detection | undefined {
  if (!hasVhdxIdentifier(head, size) || !startsWith(header, 0, HEADER_SIGNATURE)) return undefined;
  return { format: 'vhdx', offset: 0, why: `VHDX file type identifier and header signature at ${VHDX_HEADER_OFFSET}` };
}
