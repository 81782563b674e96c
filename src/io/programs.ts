/** Finding the external programs nix-seal runs (compressors, decompressors). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NixSealError } from '../errors.js';

/**
 * Where program `name` is: NIX_SEAL_<NAME> (for builds with no PATH, see nix/), then PATH, then
 * /usr/bin and /bin. EIO when none of them is executable; callers say what they needed it for.
 */
export function findProgram(name: string): string {
  const override = process.env[`NIX_SEAL_${name.toUpperCase()}`];
  if (override) return override;
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/bin', '/bin'];
  for (const d of dirs) {
    const p = path.join(d, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  throw new NixSealError('EIO', `Cannot run ${name}: the ${name} program is not installed`, { path: name });
}
