import * as path from 'node:path';
import { NixSealError } from '../errors.js';
import { isNix32Char } from './nix32.js';

/** An absolute store path `<storeDir>/<hash>-<name>`, checked for shape. Branded so raw strings don't slip in. */
export type StorePath = string & { readonly __brand: 'StorePath' };

export const DEFAULT_STORE_DIR = '/nix/store';
export const HASH_PART_LENGTH = 32;

/** Characters Nix allows in a store path name (checkName in Nix's path.cc). */
const NAME_RE = /^[A-Za-z0-9+\-._?=]+$/;

/** Why `baseName` is not a valid store path base name, or undefined when it is. */
export function storeBaseNameProblem(baseName: string): string | undefined {
  if (baseName.length < HASH_PART_LENGTH + 2) return 'too short to be a store path';
  for (let i = 0; i < HASH_PART_LENGTH; i++) {
    if (!isNix32Char(baseName.charCodeAt(i))) return 'its hash part is not nix32';
  }
  if (baseName[HASH_PART_LENGTH] !== '-') return "no '-' after the hash part";
  const name = baseName.slice(HASH_PART_LENGTH + 1);
  if (name.length > 211) return 'its name is longer than 211 characters';
  if (name.startsWith('.')) return "its name starts with '.'";
  if (!NAME_RE.test(name)) return 'its name has characters Nix does not allow';
  return undefined;
}

/** How an error names the user's argument: `'./result' (→ /nix/store/…)` when it was resolved. */
export interface ShownAs {
  label: string;
  path: string;
}

/** Parses a string that must be exactly a store path in `storeDir`. */
export function parseStorePath(text: string, storeDir: string, shown: ShownAs = { label: `'${text}'`, path: text }): StorePath {
  const problem = storePathProblem(text, storeDir);
  if (problem) throw new NixSealError(problem.code, `Cannot use ${shown.label}: ${problem.why}`, { path: shown.path });
  return text as StorePath;
}

/** Why `text` is not exactly a store path in `storeDir`, or undefined when it is one. */
export function storePathProblem(text: string, storeDir: string): { code: 'ENOTINSTORE' | 'EBADSTOREPATH'; why: string } | undefined {
  if (path.posix.dirname(text) !== storeDir) return { code: 'ENOTINSTORE', why: `not in the Nix store ${storeDir}` };
  const why = storeBaseNameProblem(path.posix.basename(text));
  return why === undefined ? undefined : { code: 'EBADSTOREPATH', why };
}

/** `<hash>-<name>` of a store path. */
export function baseNameOf(p: StorePath): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** The 32 nix32 characters that identify a store path (what reference scanning looks for). */
export function hashPartOf(p: StorePath): string {
  return baseNameOf(p).slice(0, HASH_PART_LENGTH);
}

/** The name after `<hash>-` (what seal globs match). */
export function nameOf(p: StorePath): string {
  return baseNameOf(p).slice(HASH_PART_LENGTH + 1);
}

/** Whether `p` (absolute, normalised) lies inside `storeDir` (strictly below it). */
export function isInStore(p: string, storeDir: string): boolean {
  return p.length > storeDir.length + 1 && p.startsWith(storeDir) && p[storeDir.length] === '/';
}

/**
 * The store path that contains `p` (`/nix/store/abc-qemu/bin/qemu` → `/nix/store/abc-qemu`),
 * like Nix's Store::toStorePath.
 */
export function toStorePath(p: string, storeDir: string, shown: ShownAs = { label: `'${p}'`, path: p }): StorePath {
  const normal = path.posix.normalize(p);
  if (!isInStore(normal, storeDir)) {
    throw new NixSealError('ENOTINSTORE', `Cannot use ${shown.label}: not in the Nix store ${storeDir}`, { path: shown.path });
  }
  const slash = normal.indexOf('/', storeDir.length + 1);
  return parseStorePath(slash < 0 ? normal : normal.slice(0, slash), storeDir, shown);
}
