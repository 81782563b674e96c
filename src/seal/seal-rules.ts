import { createRequire } from 'node:module';
import type Picomatch from 'picomatch';
import { usageError, type Warning, type WarningCode } from '../errors.js';
import { readUserFile } from '../io/user-file.js';
import type { PathMask } from '../graph/closure.js';
import { idOf, type RefGraph } from '../graph/ref-graph.js';
import { resolveToStorePath } from '../store/resolve-path.js';
import { nameOf, type StorePath } from '../store/store-path.js';
import { itemAt } from '../checked-index.js';

/** A seal as the user wrote it, and where: `--seal` or `FILE line N`. */
export interface SealPattern {
  readonly pattern: string;
  readonly origin: string;
}

/** A pattern with `/` names a path (resolved like a root); any other is a glob over store path names. */
export type SealRule =
  | { readonly kind: 'path'; readonly pattern: SealPattern; readonly path: StorePath }
  | { readonly kind: 'glob'; readonly pattern: SealPattern; readonly matches: (name: string) => boolean };

/** Reads `--seals-from FILE`: one pattern a line, `#` starts a comment, blank lines ignored. */
export function readSealsFile(file: string): SealPattern[] {
  const out: SealPattern[] = [];
  readUserFile(file)
    .split('\n')
    .forEach((raw, i) => {
      const line = raw.replace(/(^|\s)#.*$/, '').trim();
      if (line !== '') out.push({ pattern: line, origin: `${file} line ${i + 1}` });
    });
  return out;
}

export function compileSealRules(patterns: readonly SealPattern[], storeDir: string): SealRule[] {
  return patterns.map((p) => {
    if (p.pattern.includes('/')) return { kind: 'path', pattern: p, path: resolveToStorePath(p.pattern, storeDir) };
    if (p.pattern.trim() === '') throw usageError(`seal pattern from ${p.origin} is empty`);
    // picomatch (six modules) is loaded only when a glob is given: a closure without seals is
    // start-up bound, and most seals name paths.
    const picomatch = createRequire(import.meta.url)('picomatch') as typeof Picomatch;
    return { kind: 'glob', pattern: p, matches: picomatch(p.pattern, { dot: true }) };
  });
}

/**
 * Marks the seals among the paths of `candidates` (the full closure). A rule that marks nothing is
 * reported as a warning, not an error: a glob like '*.iso' is often shared between configurations.
 */
export function markSeals(
  g: RefGraph,
  candidates: PathMask,
  rules: readonly SealRule[],
  as: { code: WarningCode; noun: string; verb: string } = { code: 'WSEALNOTHING', noun: 'seal', verb: 'seals' },
): { seals: PathMask; warnings: Warning[] } {
  const seals = new Uint8Array(g.paths.length);
  const warnings: Warning[] = [];
  for (const rule of rules) {
    let hit = 0;
    if (rule.kind === 'path') {
      const id = idOf(g, rule.path);
      if (id !== undefined && candidates[id]) {
        seals[id] = 1;
        hit = 1;
      }
    } else {
      for (let i = 0; i < g.paths.length; i++) {
        if (candidates[i] && rule.matches(nameOf(itemAt(g.paths, i)))) {
          seals[i] = 1;
          hit++;
        }
      }
    }
    if (hit === 0) {
      const what = rule.kind === 'path' ? `${rule.path} is not in the closure` : 'it matches no path in the closure';
      warnings.push({ code: as.code, message: `${as.noun} '${rule.pattern.pattern}' (${rule.pattern.origin}) ${as.verb} nothing: ${what}` });
    }
  }
  return { seals, warnings };
}

/**
 * `--no-seal`: clears the seals the rules match, whether declared or detected. A rule that matches
 * no path of the closure is a warning, as for seals.
 */
export function unmarkSeals(g: RefGraph, candidates: PathMask, seals: PathMask, rules: readonly SealRule[]): Warning[] {
  const { seals: exceptions, warnings } = markSeals(g, candidates, rules, { code: 'WUNSEALNOTHING', noun: 'exception', verb: 'unseals' });
  for (let i = 0; i < g.paths.length; i++) if (exceptions[i]) seals[i] = 0;
  return warnings;
}
