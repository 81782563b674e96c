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
}

export interface LoadOptions {
  /** Also load narHash and deriver (closure-info needs them; closures and explanations do not). */
  hashes?: boolean;
}
