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
   * For sources whose paths are not on disk (an image): puts the files of `paths` at
   * `<realStoreDir>/<basename>` before a command reads their bytes.
   */
  materialize?(paths: readonly string[]): void;
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
