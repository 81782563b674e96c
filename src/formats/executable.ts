/**
 * Executables and scripts, recognised from their first bytes: ELF objects and `#!` scripts. Not
 * images; the sniffer uses this to stop after one read for the bulk of a closure's files.
 */
import { magicBytes, startsWith } from './bytes.js';

const ELF = magicBytes('\x7fELF');
const SHEBANG = magicBytes('#!');

/** Whether `head` starts an ELF file or a script. */
export function isExecutableHeader(head: Uint8Array): boolean {
  return startsWith(head, 0, ELF) || startsWith(head, 0, SHEBANG);
}
