import type { Warning } from './errors.js';
import { reach, sealedClosure, type SealedClosure } from './graph/closure.js';
import { asPathId, idOf, type PathId, type RefGraph } from './graph/ref-graph.js';
import { NixSealError, usageError } from './errors.js';
import type * as ImageDetection from './seal/detect.js';
import type { DetectedImage } from './seal/detect.js';
import { compileSealRules, markSeals, readSealsFile, unmarkSeals, type SealPattern } from './seal/seal-rules.js';
import { loadSourceModules, openSource } from './sources/open-source.js';
import { storeDirWithBytes, type GraphSource } from './sources/source.js';
import { resolveToStorePath } from './store/resolve-path.js';
import type { StorePath } from './store/store-path.js';
import { parseStoreSpec, type StoreSpec } from './store/store-url.js';

export interface AnalysisOptions {
  /** A --store value or a parsed spec; default: the local store from the environment. */
  store?: string | StoreSpec;
  /** Roots as the user wrote them: store paths, paths inside them, or symlinks such as ./result. */
  roots: readonly string[];
  /** --seal patterns. */
  seals?: readonly string[];
  /** --seals-from files. */
  sealsFrom?: readonly string[];
  /** --seal-images: also seal every path of the closure whose bytes are a self-contained image. */
  sealImages?: boolean;
  /** --no-seal patterns: exceptions to every seal, declared or detected. */
  noSeals?: readonly string[];
  env?: NodeJS.ProcessEnv;
  /** An already opened source (otherwise `store` is opened). */
  source?: GraphSource;
  /** Load narHash and deriver too (closure-info needs them). */
  hashes?: boolean;
  /** Progress and source notes (--verbose). */
  log?: (msg: string) => void;
}

/** A sealed closure with everything needed to print or explain it. */
export interface Analysis {
  readonly source: GraphSource;
  readonly graph: RefGraph;
  readonly roots: PathId[];
  readonly seals: Uint8Array;
  readonly closure: SealedClosure;
  readonly warnings: Warning[];
  /** With sealImages: the images found (before --no-seal exceptions), with why each is one. */
  readonly detected: DetectedImage[];
}

/**
 * --seal-images' detection (seal/detect) brings every format module with it, a large share of a
 * plain closure's start-up: prepareAnalysis loads it only when asked, and the library's index
 * registers it (useImageDetection) so that the synchronous analyze() has it.
 */
let imageDetection: typeof ImageDetection | undefined;

/** Makes the already imported seal/detect module available to analyze(). */
export function useImageDetection(m: typeof ImageDetection): void {
  imageDetection = m;
}

/**
 * Loads what an analysis with these options needs that is loaded asynchronously: the module of the
 * store's source when it is an image or a binary cache (left out of a plain closure's start-up);
 * for an image, whose copies are read while its source opens, the decoders that start
 * asynchronously (libzstd as WebAssembly); for --seal-images, the image detection. Await it before
 * openSource or analyze(); analyzeStore does.
 */
export async function prepareAnalysis(opts: Pick<AnalysisOptions, 'store' | 'env' | 'sealImages'>): Promise<void> {
  const spec = typeof opts.store === 'object' ? opts.store : parseStoreSpec(opts.store, opts.env);
  await loadSourceModules(spec);
  if (spec.kind === 'image') await (await import('./formats/decompress.js')).prepareDecoders();
  if (opts.sealImages) imageDetection ??= await import('./seal/detect.js');
}

/** analyze() after prepareAnalysis(): what the CLI calls. */
export async function analyzeStore(opts: AnalysisOptions): Promise<Analysis> {
  await prepareAnalysis(opts);
  return analyze(opts);
}

/**
 * Opens the store, loads the roots' closure, applies the seals. The library's main entry. The
 * caller closes `source` of the result (`a.source.close?.()`) when done; a source opened here is
 * closed here if the analysis fails.
 */
export function analyze(opts: AnalysisOptions): Analysis {
  const spec = typeof opts.store === 'object' ? opts.store : parseStoreSpec(opts.store, opts.env);
  // Only an image has roots of its own: say so before opening any store.
  if (opts.roots.length === 0 && (opts.source ? opts.source.defaultRoots === undefined : spec.kind !== 'image')) {
    throw usageError('Cannot compute a closure: no ROOT given (only --store image:FILE has default roots)');
  }
  if (opts.source !== undefined) return analyzeIn(opts.source, opts);
  const source = openSource(spec, opts.log);
  try {
    return analyzeIn(source, opts);
  } catch (err) {
    source.close?.();
    throw err;
  }
}

function analyzeIn(source: GraphSource, opts: AnalysisOptions): Analysis {
  let rootPaths = [...new Set(opts.roots.map((r) => resolveToStorePath(r, source.storeDir)))];
  if (rootPaths.length === 0 && source.defaultRoots !== undefined) rootPaths = [...source.defaultRoots];
  const patterns: SealPattern[] = [
    ...(opts.seals ?? []).map((pattern) => ({ pattern, origin: '--seal' })),
    ...(opts.sealsFrom ?? []).flatMap((f) => readSealsFile(f)),
  ];
  const rules = compileSealRules(patterns, source.storeDir);
  const graph = source.loadClosure(rootPaths, { hashes: opts.hashes ?? false });
  const roots = rootPaths.map((p) => idOf(graph, p)!);
  const full = reach(graph, roots);
  const { seals, warnings } = markSeals(graph, full, rules);
  // Only paths that refer to others are sniffed; an image's copies or a cache's NARs are put on disk first.
  const detection = opts.sealImages ? (imageDetection ?? notLoaded()) : undefined;
  const detected = detection
    ? detection.detectImages(graph, full, storeDirWithBytes(source, graph.paths.filter((_, id) => full[id] && detection.hasForeignReferences(graph, asPathId(id)))))
    : [];
  for (const d of detected) seals[d.id] = 1;
  if (opts.noSeals !== undefined && opts.noSeals.length > 0) {
    const exceptions = compileSealRules(
      opts.noSeals.map((pattern) => ({ pattern, origin: '--no-seal' })),
      source.storeDir,
    );
    warnings.push(...unmarkSeals(graph, full, seals, exceptions));
  }
  if (opts.sealImages && detected.length === 0) warnings.push({ code: 'WNOIMAGE', message: '--seal-images found no image with references in the closure' });
  return { source, graph, roots, seals, closure: sealedClosure(graph, roots, seals, full), warnings, detected };
}

/** Resolves one more path (a `why` target) against an analysis' store. */
export function resolveInAnalysis(a: Analysis, arg: string): { path: StorePath; id: PathId | undefined } {
  const path = resolveToStorePath(arg, a.source.storeDir);
  return { path, id: idOf(a.graph, path) };
}

function notLoaded(): never {
  throw new NixSealError('EINTERNAL', 'Cannot detect images: seal/detect is not loaded (call analyzeStore, or import from the package\'s index)');
}
