import * as fs from 'node:fs';
import { describeSystemError, NixSealError } from '../errors.js';
import { narHashAndSize } from '../formats/nar.js';
import { fileWithBytes, type GraphSource } from '../sources/source.js';

const isSymlink = (p: string): boolean => fs.lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink() === true;

/** One line of `nix-seal hash`, one object of `nix-seal hash --json`. */
export interface HashResult {
  /** The path as given on the command line. */
  path: string;
  /** `sha256:<nix32>` of the NAR: what `nix-hash --type sha256 --base32 PATH` prints, with the prefix Nix registers. */
  narHash: string;
  /** Bytes of the NAR: `nix-store --dump PATH | wc -c`. */
  narSize: number;
}

/**
 * narHash and narSize of each path on disk (any path, not only store paths), as Nix would register
 * it. Like nix-hash, a symlink given as PATH is hashed as the symlink itself (`PATH/` follows it).
 */
export async function hashCommand(paths: readonly string[], store?: () => GraphSource): Promise<HashResult[]> {
  const out: HashResult[] = [];
  let source: GraphSource | undefined;
  try {
    for (const p of paths) {
      let file = p;
      // With --store, a store path not on disk is read from the source (an image's copy, a cache's verified NAR).
      if (store !== undefined && !fs.existsSync(p) && !isSymlink(p)) file = fileWithBytes((source ??= store()), p);
      try {
        fs.lstatSync(file);
      } catch (err) {
        throw new NixSealError('EIO', `Cannot hash ${p}: ${describeSystemError(err)}`, { path: p, cause: err });
      }
      const { narHash, narSize } = await narHashAndSize(file);
      out.push({ path: p, narHash, narSize });
    }
  } finally {
    source?.close?.();
  }
  return out;
}
