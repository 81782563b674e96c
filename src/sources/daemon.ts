import { execFileSync } from 'node:child_process';
import { NixSealError } from '../errors.js';
import { idOf, type RefGraph } from '../graph/ref-graph.js';
import type { StorePath } from '../store/store-path.js';
import { parsePathInfoJson } from './json-sources.js';
import type { GraphSource } from './source.js';

/**
 * The store as the `nix` command sees it: through the daemon for a non-root user of a multi-user
 * install (who cannot open the database), or whatever NIX_REMOTE says. One call of
 * `nix path-info --json --recursive` returns the closure with hashes, sizes and references.
 */
export class DaemonSource implements GraphSource {
  readonly description = 'the nix command (nix path-info --json --recursive)';
  constructor(
    readonly storeDir: string,
    readonly realStoreDir: string = storeDir,
  ) {}

  loadClosure(roots: readonly StorePath[]): RefGraph {
    let out: string;
    try {
      out = execFileSync('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '--json', '--recursive', ...roots], {
        encoding: 'utf8',
        maxBuffer: 1 << 30,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      const e = err as { code?: string; stderr?: string };
      if (e.code === 'ENOENT') {
        throw new NixSealError('EDAEMON', 'Cannot query the Nix store: the nix command is not on PATH', { cause: err });
      }
      const msg = (e.stderr ?? '').trim().split('\n').pop() ?? '';
      const invalid = /path '([^']+)' is not valid/.exec(msg)?.[1];
      if (invalid !== undefined) {
        throw new NixSealError('EINVALIDPATH', `Cannot use ${invalid}: path is not valid in the Nix store`, { path: invalid });
      }
      throw new NixSealError('EDAEMON', `Cannot query the Nix store with nix path-info: ${msg.replace(/^error: /, '')}`, { cause: err });
    }
    const g = parsePathInfoJson(out, 'nix path-info output');
    for (const r of roots) {
      if (idOf(g, r) === undefined) {
        throw new NixSealError('EINVALIDPATH', `Cannot use ${r}: path is not valid in the Nix store`, { path: r });
      }
    }
    return g;
  }
}
