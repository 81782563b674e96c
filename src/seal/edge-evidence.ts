/**
 * Where a reference sits: for an edge A → B of a reference chain, every occurrence of B's hash in
 * A's bytes (file names and symlink targets included, as Nix scans), down to the file inside an
 * image when A's file is one. What `why --precise` prints, like `nix why-depends --precise`.
 */
import { prepareDecoders } from '../formats/decompress.js';
import path from 'node:path';
import { edgeKey } from '../graph/why.js';
import { HashPartSet } from '../scan/reference-scanner.js';
import { scanPathHits } from '../scan/scan-path.js';
import { hashPartOf, type StorePath } from '../store/store-path.js';
import { StorePathInspector, type Evidence } from './inspect.js';
import { itemAt } from '../checked-index.js';

export interface EdgeEvidence {
  from: string;
  to: string;
  /** Occurrences of `to`'s hash in `from` (all of them counted). */
  hits: number;
  /** The first `maxEvidence` of them, located. */
  evidence: Evidence[];
}

/** Bytes of context each side of a hash: enough to show the store dir and ~24 bytes beyond it. */
export const contextFor = (storeDir: string): number => Math.min(storeDir.length + 1 + 24, 512);

export interface EdgeEvidenceOptions {
  maxEvidence?: number;
  context?: number;
}

/**
 * Evidence for the edges of several chains, each distinct edge scanned once. `realStoreDir` is where
 * the files are on disk, `storeDir` the store the paths are named in.
 */
export async function edgeEvidence(
  chains: readonly (readonly string[])[],
  storeDir: string,
  realStoreDir: string,
  opts: EdgeEvidenceOptions = {},
): Promise<Map<string, EdgeEvidence>> {
  await prepareDecoders();
  const out = new Map<string, EdgeEvidence>();
  // Edges grouped by their source: one scan of A finds the hashes of all its successors at once.
  const bySource = new Map<string, Set<string>>();
  for (const chain of chains) {
    for (let i = 0; i + 1 < chain.length; i++) {
      const from = itemAt(chain, i);
      const set = bySource.get(from) ?? new Set<string>();
      set.add(itemAt(chain, i + 1));
      bySource.set(from, set);
    }
  }
  const max = opts.maxEvidence ?? 5;
  for (const [from, targets] of bySource) {
    const byHash = new Map<string, EdgeEvidence>();
    for (const to of targets) {
      const e: EdgeEvidence = { from, to, hits: 0, evidence: [] };
      byHash.set(hashPartOf(to as StorePath), e);
      out.set(edgeKey(from, to), e);
    }
    const insp = new StorePathInspector(path.join(realStoreDir, path.posix.basename(from)), from, storeDir);
    try {
      for await (const hit of scanPathHits(insp.fsPath, new HashPartSet(byHash.keys()), { context: opts.context ?? contextFor(storeDir) })) {
        const e = byHash.get(hit.hash)!;
        e.hits++;
        if (e.evidence.length < max) {
          const { opaque: _opaque, ...ev } = insp.locate(hit);
          e.evidence.push(ev);
        }
      }
    } finally {
      insp.close();
    }
  }
  return out;
}
