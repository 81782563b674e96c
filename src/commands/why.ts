import type { Analysis } from '../analysis.js';
import { withBytesOf } from '../sources/source.js';
import { resolveInAnalysis } from '../analysis.js';
import { allChains, shortestChain } from '../graph/why.js';
import type { EdgeEvidence } from '../seal/edge-evidence.js';
import { NixSealError } from '../errors.js';
import type { PathId } from '../graph/ref-graph.js';
import { asPathId } from '../graph/ref-graph.js';
import { baseNameOf, nameOf, type StorePath } from '../store/store-path.js';
import { itemAt } from '../checked-index.js';

export interface WhyResult {
  root: string;
  target: string;
  /** kept: in the sealed closure; erased: only reachable through seals; absent: not in the closure at all. */
  status: 'kept' | 'erased' | 'absent';
  /** Shortest chain root → target in the sealed closure (kept), or through a seal (erased). */
  chain: string[];
  /** For an erased target: each seal that cut it off, with the shortest chain through that seal. */
  erasedBy: { seal: string; chain: string[] }[];
  /** With --all: every chain up to the limit, shortest first. */
  chains?: string[][];
  /** Paths that are seals, so renderers can mark them. */
  seals: string[];
  /** With --precise: for each distinct edge of the chains above, where the reference sits. */
  edges?: EdgeEvidence[];
}

/** Every chain of a result (the one printed, those through each seal, and --all's). */
export function chainsOf(r: WhyResult): string[][] {
  return [r.chain, ...r.erasedBy.map((e) => e.chain), ...(r.chains ?? [])].filter((c) => c.length > 1);
}

/** Adds --precise's evidence to a result: one scan per distinct path with outgoing edges. */
export async function addPrecision(r: WhyResult, a: Analysis, opts: { maxEvidence?: number } = {}): Promise<WhyResult> {
  const { edgeEvidence } = await import('../seal/edge-evidence.js');
  const chains = chainsOf(r);
  const referrers = [...new Set(chains.flatMap((c) => c.slice(0, -1)))] as StorePath[];
  // From an image, or a binary cache, the bytes of each edge's referrer are put on disk first.
  const b = withBytesOf(a, referrers);
  const edges = await edgeEvidence(chains, b.graph.storeDir, b.source.realStoreDir, opts);
  return { ...r, edges: [...edges.values()] };
}

export function whyResult(a: Analysis, targetArg: string, all?: { limit: number }): WhyResult {
  const g = a.graph;
  const root = itemAt(a.roots, 0);
  const target = targetArg.includes('/') ? resolveInAnalysis(a, targetArg) : byName(a, targetArg);
  const names = (ids: number[]): string[] => ids.map((i) => itemAt(g.paths, i));
  const base = { root: itemAt(g.paths, root), target: target.path, erasedBy: [], chain: [] };
  const t = target.id;
  if (t === undefined || !a.closure.full[t]) return { ...base, status: 'absent', seals: [] };
  const sealsOnChains = new Set<string>();
  const mark = (chain: number[]): string[] => {
    for (const id of chain) if (a.seals[id]) sealsOnChains.add(itemAt(g.paths, id));
    return names(chain);
  };
  if (a.closure.kept[t]) {
    const chain = shortestChain(g, root, t, a.seals)!;
    return {
      ...base,
      status: 'kept',
      chain: mark(chain),
      ...(all ? { chains: allChains(g, root, t, all.limit, a.seals).map(mark) } : {}),
      seals: [...sealsOnChains],
    };
  }
  const erasedBy = a.closure.seals
    .filter((s) => s.erased.includes(t))
    .map((s) => {
      // root → seal inside the sealed closure, then seal → target through what the seal erased.
      const toSeal = shortestChain(g, root, s.seal, a.seals)!;
      const fromSeal = shortestChain(g, s.seal, t, undefined)!;
      return { seal: itemAt(g.paths, s.seal), chain: mark([...toSeal, ...fromSeal.slice(1)]) };
    });
  erasedBy.sort((x, y) => x.chain.length - y.chain.length);
  return {
    ...base,
    status: 'erased',
    chain: erasedBy[0]?.chain ?? [],
    erasedBy,
    ...(all ? { chains: allChains(g, root, t, all.limit).map(mark) } : {}),
    seals: [...sealsOnChains],
  };
}

/**
 * A TARGET without '/': the path of the full closure whose name (`bash-5.2`) or basename
 * (`<hash>-bash-5.2`) it is, as `nix why-depends` users type it. None or several is an error that
 * says which paths come close, or lists the candidates.
 */
function byName(a: Analysis, arg: string): { path: string; id: PathId } {
  const g = a.graph;
  const root = itemAt(g.paths, itemAt(a.roots, 0));
  const hits: PathId[] = [];
  const near: string[] = [];
  for (let i = 0; i < g.paths.length; i++) {
    if (!a.closure.full[i]) continue;
    const p = itemAt(g.paths, i);
    if (nameOf(p) === arg || baseNameOf(p) === arg) hits.push(asPathId(i));
    else if (nameOf(p).includes(arg)) near.push(nameOf(p));
  }
  const [only] = hits;
  if (hits.length === 1 && only !== undefined) return { path: itemAt(g.paths, only), id: only };
  if (hits.length === 0) {
    throw new NixSealError('ENOTFOUND', `Cannot find '${arg}' in the closure of ${root}: no path has that name`, {
      hint:
        near.length > 0
          ? `names in the closure that contain it: ${near.slice(0, 8).join(', ')}${near.length > 8 ? ', …' : ''}`
          : 'give a store path, a name (bash-5.2) or a basename (<hash>-bash-5.2) of a path in the closure (nix-seal closure ROOT lists them)',
    });
  }
  const list = hits.map((i) => itemAt(g.paths, i));
  throw new NixSealError('ENOTFOUND', `Cannot pick '${arg}': ${list.length} paths of the closure of ${root} have that name: ${list.join(', ')}`, {
    hint: 'give the store path (or its <hash>-name basename) of the one you mean',
  });
}
