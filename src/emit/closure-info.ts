/**
 * The files of nixpkgs' `closureInfo { rootPaths }`, for a sealed closure:
 *
 *   store-paths     one path a line
 *   registration    per path: path, narHash (sha256:<nix32>), narSize, empty deriver line,
 *                   reference count, references; what `nix-store --load-db` reads
 *   total-nar-size  the decimal sum of narSize
 *
 * plus `seals.json`, the record of what each seal erased. Paths are in `nix-store -qR` order
 * (dependencies first); nixpkgs' closureInfo lists them by path instead, which --load-db does
 * not mind. A kept path's references are listed only when kept: a seal's erased references are
 * dropped, so the registration is closed under references and a store loaded from it answers
 * `nix-store -qR` with the sealed closure.
 */
import { NixSealError } from '../errors.js';
import { narSizeOf, topoOrder, type PathMask, type SealedClosure } from '../graph/closure.js';
import { referencesOf, type PathId, type RefGraph } from '../graph/ref-graph.js';
import { formatHashNix32, parseHash } from '../store/hash.js';
import { f64At, itemAt } from '../checked-index.js';

/** `seals.json`: what each reached seal erased from the closure (what unsafeDiscardReferences would lose). */
export interface SealsJson {
  seals: { path: string; erased: string[]; erasedNarSize: number | null }[];
}

/** The narHash of `id` as closureInfo writes it: `sha256:<nix32>`, whatever encoding the source used. */
export function registrationHash(g: RefGraph, id: PathId): string {
  const text = g.narHash[id];
  if (text === undefined) {
    throw new NixSealError('EPARSE', `Cannot write the registration of ${g.paths[id]}: its narHash is unknown`, { path: itemAt(g.paths, id) });
  }
  return formatHashNix32(parseHash(text, 'sha256'));
}

function registrationSize(g: RefGraph, id: PathId): number {
  const n = f64At(g.narSize, id);
  if (Number.isNaN(n)) {
    throw new NixSealError('EPARSE', `Cannot write the registration of ${g.paths[id]}: its narSize is unknown`, { path: itemAt(g.paths, id) });
  }
  return n;
}

/**
 * Registration text for `order` (normally topoOrder over `kept`), references restricted to `kept`.
 * Every path in `order` needs a known narHash and narSize (see sources/hashes-from-disk.ts).
 */
export function formatRegistration(g: RefGraph, order: readonly PathId[], kept: PathMask): string {
  const parts: string[] = [];
  for (const id of order) {
    const refs = referencesOf(g, id);
    let kRefs = '';
    let count = 0;
    for (const r of refs) {
      if (!kept[r]) continue;
      kRefs += g.paths[r] + '\n';
      count++;
    }
    parts.push(`${g.paths[id]}\n${registrationHash(g, id)}\n${registrationSize(g, id)}\n\n${count}\n${kRefs}`);
  }
  return parts.join('');
}

export function storePathsText(g: RefGraph, order: readonly PathId[]): string {
  let out = '';
  for (const id of order) out += g.paths[id] + '\n';
  return out;
}

/** Sum of narSize over `ids`; every size must be known. Exact: sums stay far below 2^53. */
export function totalNarSize(g: RefGraph, ids: readonly PathId[]): number {
  let s = 0;
  for (const id of ids) s += registrationSize(g, id);
  return s;
}

export function sealsJson(g: RefGraph, closure: SealedClosure): SealsJson {
  return {
    seals: closure.seals.map((s) => {
      const size = narSizeOf(g, s.erased);
      return { path: itemAt(g.paths, s.seal), erased: s.erased.map((e) => itemAt(g.paths, e)), erasedNarSize: Number.isNaN(size) ? null : size };
    }),
  };
}

/** Everything closure-info writes, as text, for the sealed closure `closure` of graph `g`. */
export interface ClosureInfoTexts {
  order: PathId[];
  storePaths: string;
  registration: string;
  totalNarSize: number;
  seals: SealsJson;
}

export function closureInfoTexts(g: RefGraph, closure: SealedClosure): ClosureInfoTexts {
  const order = topoOrder(g, closure.kept);
  return {
    order,
    storePaths: storePathsText(g, order),
    registration: formatRegistration(g, order, closure.kept),
    totalNarSize: totalNarSize(g, order),
    seals: sealsJson(g, closure),
  };
}

/** The registration of a sealed closure, in `nix-store -qR` order (every kept path's narHash and narSize known). */
export function registrationText(g: RefGraph, kept: PathMask): string {
  return formatRegistration(g, topoOrder(g, kept), kept);
}
