import * as path from 'node:path';
import type { RefGraph } from '../graph/ref-graph.js';
import type { StorePath } from '../store/store-path.js';

/** Where a reference graph comes from. */
export interface GraphSource {
  /** For --verbose: "database /nix/var/nix/db/db.sqlite (read-only)", "registration file x". */
  readonly description: string;
  /** The logical store dir paths are named in. */
  readonly storeDir: string;
  /** Where the store's files really are (differs from storeDir for `local?root=`). */
  readonly realStoreDir: string;
  /**
   * A graph that holds at least the closure of `roots`. Throws EINVALIDPATH when a root is not a
   * valid path of this source.
   */
  loadClosure(roots: readonly StorePath[], opts?: LoadOptions): RefGraph;
  /** The roots to use when the user names none (an image's embedded closure); absent: ROOT is required. */
  readonly defaultRoots?: readonly StorePath[];
  /**
   * For sources whose paths may not be on disk (an image: its copies; a binary cache: its NARs,
   * fetched and verified): makes the files of `paths` readable and returns the directory that
   * holds them, `<dir>/<basename>` for each. Idempotent: asking again for paths already there
   * returns the same directory. A path the source holds no bytes of is left out (the reader then
   * reports it missing). Commands call it through `storeDirWithBytes`, never directly.
   */
  materialize?(paths: readonly string[]): string;
  /**
   * Releases what the source holds open (database handles, descriptors, temporary files). Whoever
   * opened the source calls it when done, also on failure: the CLI, analyze() when it fails, and
   * the commands that open their own (initrd, sbom).
   */
  close?(): void;
}

export interface LoadOptions {
  /** Also load narHash and deriver (closure-info needs them; closures and explanations do not). */
  hashes?: boolean;
}

/**
 * The one way a command gets the bytes of store paths from any source: the directory in which
 * `<dir>/<basename>` holds the files of each of `paths` (the source's realStoreDir when they are
 * on disk there).
 */
export function storeDirWithBytes(source: GraphSource, paths: readonly string[]): string {
  if (paths.length === 0 || source.materialize === undefined) return source.realStoreDir;
  return source.materialize(paths);
}

/**
 * Where the bytes of `file` (a store path or a path inside one, named under the logical store
 * dir) can be read, fetched or extracted by the source when needed; any other path is returned
 * as it is.
 */
export function fileWithBytes(source: GraphSource, file: string): string {
  const abs = path.resolve(file);
  const prefix = source.storeDir.endsWith('/') ? source.storeDir : `${source.storeDir}/`;
  if (!abs.startsWith(prefix)) return file;
  const [base, ...rest] = abs.slice(prefix.length).split('/');
  if (base === undefined || base === '') return file;
  const dir = storeDirWithBytes(source, [`${prefix}${base}`]);
  return path.join(dir, base, ...rest) + (file.endsWith('/') ? '/' : '');
}

/**
 * `a` (an analysis, or anything holding a source) whose source's realStoreDir holds the bytes of
 * `paths`: for commands that pass realStoreDir on to readers (audit, why --precise).
 */
export function withBytesOf<A extends { source: GraphSource }>(a: A, paths: readonly string[]): A {
  const dir = storeDirWithBytes(a.source, paths);
  if (dir === a.source.realStoreDir) return a;
  // The same source, its files elsewhere.
  const source: GraphSource = Object.create(a.source, { realStoreDir: { value: dir } });
  return { ...a, source };
}
