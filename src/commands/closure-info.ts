import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Analysis } from '../analysis.js';
import { checkOutputDir, checkOutputFile, ensureOutputDir, writeFileAtomic, writeFilesAtomic } from '../emit/atomic-write.js';
import { closureInfoTexts, type SealsJson } from '../emit/closure-info.js';
import { usageError, type Warning } from '../errors.js';
import { maskCount } from '../graph/closure.js';
import { withHashesFromDisk, withSizesFromDisk } from '../sources/hashes-from-disk.js';
import { itemAt } from '../checked-index.js';

export interface ClosureInfoOptions {
  /** -o DIR: write store-paths, registration, total-nar-size and seals.json into DIR (created if missing, not its parent). */
  out?: string | undefined;
  /** --registration-only FILE: write only the registration, to FILE; '-' = return it for stdout. */
  registrationOnly?: string | undefined;
  /** --verbose notes. */
  log?: ((msg: string) => void) | undefined;
}

/** `nix-seal closure-info --json`. */
export interface ClosureInfoResult {
  roots: string[];
  /** The directory written (-o), absolute; null with --registration-only. */
  outDir: string | null;
  /** Files written, absolute, in the order above; empty when the registration went to stdout. */
  files: string[];
  /** Paths in the registration (the sealed closure). */
  count: number;
  /** The content of total-nar-size. */
  totalNarSize: number;
  /** Paths whose narHash/narSize the source lacked and that were computed from disk. */
  hashedFromDisk: number;
  seals: SealsJson['seals'];
  warnings: Warning[];
  /** Only with `--registration-only -`: the registration text, for stdout. */
  registration?: string;
}

export const CLOSURE_INFO_FILES = ['store-paths', 'registration', 'total-nar-size', 'seals.json'] as const;

/** Usage errors (exit 2), checkable before the analysis: exactly one of -o and --registration-only. */
export function checkClosureInfoOptions(opts: ClosureInfoOptions): void {
  if (opts.out === undefined && opts.registrationOnly === undefined) {
    throw usageError('closure-info: say where to write: -o DIR, or --registration-only FILE');
  }
  if (opts.out !== undefined && opts.registrationOnly !== undefined) {
    throw usageError('closure-info: -o and --registration-only exclude each other');
  }
  if (opts.out === '' || opts.registrationOnly === '') throw usageError('closure-info: the output path is empty');
}

/**
 * closure-info: the registration of the sealed closure (and closureInfo's other files). `a` must
 * come from analyze() with `hashes: true`; narHash/narSize the source lacks are computed from disk.
 * Writes atomically: on any error nothing is left behind (not even DIR, if it was created here).
 */
export async function closureInfoCommand(a: Analysis, opts: ClosureInfoOptions): Promise<ClosureInfoResult> {
  checkClosureInfoOptions(opts);
  // Fail on a bad output location before hashing anything.
  const dir = opts.out === undefined ? undefined : path.resolve(opts.out);
  const file = opts.registrationOnly === undefined || opts.registrationOnly === '-' ? undefined : path.resolve(opts.registrationOnly);
  if (dir !== undefined) await checkOutputDir(dir);
  if (file !== undefined) await checkOutputFile(file);

  const { kept } = a.closure;
  const hashed = await withHashesFromDisk(a.graph, a.source, kept, opts.log);
  let g = hashed.graph;
  const hashedFromDisk = hashed.hashed;
  // Sizes of erased paths only feed seals.json's erasedNarSize: filled when on disk, else null.
  if (dir !== undefined && a.closure.seals.length > 0) {
    const erased = new Uint8Array(g.paths.length);
    for (const s of a.closure.seals) for (const e of s.erased) erased[e] = 1;
    g = await withSizesFromDisk(g, a.source, erased);
  }
  const t = closureInfoTexts(g, a.closure);
  const base = {
    roots: a.roots.map((r) => itemAt(g.paths, r)),
    count: maskCount(kept),
    totalNarSize: t.totalNarSize,
    hashedFromDisk,
    seals: t.seals.seals,
    warnings: a.warnings,
  };

  if (dir === undefined) {
    if (file === undefined) return { ...base, outDir: null, files: [], registration: t.registration };
    await writeFileAtomic(file, t.registration);
    return { ...base, outDir: null, files: [file] };
  }

  const created = await ensureOutputDir(dir);
  const contents: Record<(typeof CLOSURE_INFO_FILES)[number], string> = {
    'store-paths': t.storePaths,
    registration: t.registration,
    'total-nar-size': `${t.totalNarSize}\n`,
    'seals.json': JSON.stringify(t.seals, null, 2) + '\n',
  };
  const files = CLOSURE_INFO_FILES.map((name) => ({ path: path.join(dir, name), data: contents[name] }));
  try {
    await writeFilesAtomic(files);
  } catch (err) {
    if (created) await fs.rmdir(dir).catch(() => {});
    throw err;
  }
  return { ...base, outDir: dir, files: files.map((f) => f.path) };
}
