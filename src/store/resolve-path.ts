import * as fs from 'node:fs';
import * as path from 'node:path';
import { errnoCode, NixSealError } from '../errors.js';
import { isInStore, toStorePath, type StorePath } from './store-path.js';

/**
 * Like Nix's followLinksToStore: make the argument absolute (lexically, without resolving
 * symlinks), then while it is outside the store and a symlink, replace it by its target. Returns
 * the path inside the store (`/nix/store/…-qemu/bin/qemu`). A path inside the store need not
 * exist on disk (file sources describe stores that are elsewhere).
 */
export function followLinksToStore(arg: string, storeDir: string): string {
  let p = path.resolve(arg);
  for (let hops = 0; !isInStore(p, storeDir); hops++) {
    let target: string;
    try {
      target = fs.readlinkSync(p);
    } catch (err) {
      const code = errnoCode(err);
      const why =
        code === 'ENOENT'
          ? `no such file, and not in the Nix store ${storeDir}`
          : code === 'EINVAL'
            ? `not in the Nix store ${storeDir}`
            : `cannot read it (${code})`;
      throw new NixSealError('ENOTINSTORE', `Cannot use '${arg}': ${why}`, { path: arg, cause: err });
    }
    if (hops > 40) throw new NixSealError('ENOTINSTORE', `Cannot use '${arg}': too many levels of symbolic links`, { path: arg });
    p = path.resolve(path.dirname(p), target);
  }
  return p;
}

/**
 * Resolves a user's argument to the store path it names, like Nix's followLinksToStorePath:
 * `./result`, `/run/current-system/sw/bin/x` and `/nix/store/…-qemu/bin/qemu` all work.
 */
export function resolveToStorePath(arg: string, storeDir: string): StorePath {
  const p = followLinksToStore(arg, storeDir);
  // A resolved argument is named as typed and as resolved: "'./result' (→ /nix/store/…)".
  return toStorePath(p, storeDir, p !== path.resolve(arg) ? { label: `'${arg}' (→ ${p})`, path: arg } : undefined);
}
