/**
 * The containment audit: for each seal and each path it erased, is the erasure safe?
 *
 * - contained: the image holds the path (a `…/nix/store/<basename>` tree in an ISO or in a
 *   squashfs inside it, a `<basename>` at the root of a squashfs, or a line of a registration
 *   file inside it);
 * - mentioned: the seal's bytes hold the path's hash, but no image of the seal contains the path:
 *   whatever uses that mention at run time will not find it;
 * - unverified: not found, but the seal has images nix-seal cannot look inside (qcow2, ext4,
 *   tar, compressed files, images too corrupt to read), or the hash sits in such an image nested
 *   in a readable one (an ext4 file inside an ISO): it may be in there;
 * - missing: neither contained nor mentioned: the path was erased only because an erased path
 *   (`via`) refers to it, and that one's copy in the image (if any) would miss it.
 *
 * One scan of each seal's bytes for the hashes of the paths not found inside (at ~2 GB/s), and
 * one walk of each image's directory tree: never a decompression of the images' file data,
 * except registration files.
 */
import path from 'node:path';
import type { Analysis } from '../analysis.js';
import type { PathId } from '../graph/ref-graph.js';
import { HashPartSet } from '../scan/reference-scanner.js';
import { scanPathHits } from '../scan/scan-path.js';
import { hashPartOf, type StorePath } from '../store/store-path.js';
import { contextFor } from './edge-evidence.js';
import { StorePathInspector, type Evidence } from './inspect.js';

export type Verdict = 'contained' | 'mentioned' | 'unverified' | 'missing';
export const VERDICTS: readonly Verdict[] = ['contained', 'mentioned', 'unverified', 'missing'];

export interface ErasedAudit {
  path: string;
  verdict: Verdict;
  /** Where the image holds it (contained), or where its hash sits (mentioned / unverified); at most `maxEvidence`. */
  evidence: Evidence[];
  /** Occurrences of its hash in the seal's bytes (scanned only for paths not contained). */
  hits: number;
  /** missing: the erased paths (or the seal) that refer to it. */
  via?: string[];
}

export interface SealFile {
  file: string;
  nature: 'image' | 'opaque' | 'plain';
  /** image: "ISO 9660 (Rock Ridge, Joliet)"; opaque: why nix-seal cannot look inside. */
  description?: string;
}

export interface SealAudit {
  path: string;
  /** The seal's files that are images, readable or not (plain files are not listed). */
  images: SealFile[];
  erased: ErasedAudit[];
  counts: Record<Verdict, number>;
  /** Nested images that would not open, registration files that would not read. */
  problems: { file: string; why: string }[];
}

export interface AuditResult {
  roots: string[];
  seals: SealAudit[];
  summary: Record<Verdict, number>;
}

export interface AuditOptions {
  /** Evidence items kept per erased path (default 5). */
  maxEvidence?: number;
  /** Bytes of context around a hash (default: the store dir and 24 bytes more). */
  context?: number;
  log?: (msg: string) => void;
}

const zeroCounts = (): Record<Verdict, number> => ({ contained: 0, mentioned: 0, unverified: 0, missing: 0 });

export async function auditAnalysis(a: Analysis, opts: AuditOptions = {}): Promise<AuditResult> {
  const g = a.graph;
  const maxEvidence = opts.maxEvidence ?? 5;
  const summary = zeroCounts();
  const seals: SealAudit[] = [];
  for (const s of a.closure.seals) {
    const sealPath = g.paths[s.seal]!;
    opts.log?.(`auditing ${sealPath}: ${s.erased.length} erased paths`);
    const inspector = new StorePathInspector(path.join(a.source.realStoreDir, path.posix.basename(sealPath)), sealPath, g.storeDir);
    try {
      const audit = await auditSeal(a, s.seal, s.erased, inspector, maxEvidence, opts.context ?? contextFor(g.storeDir));
      for (const v of VERDICTS) summary[v] += audit.counts[v];
      seals.push(audit);
    } finally {
      inspector.close();
    }
  }
  return { roots: a.roots.map((r) => g.paths[r]!), seals, summary };
}

async function auditSeal(a: Analysis, seal: PathId, erased: readonly PathId[], insp: StorePathInspector, maxEvidence: number, context: number): Promise<SealAudit> {
  const g = a.graph;
  const images: SealFile[] = [];
  for (const f of insp.files()) {
    const n = insp.nature(f);
    if (n.nature === 'image') images.push({ file: insp.fileName(f), nature: 'image', description: n.view.description });
    else if (n.nature === 'opaque') images.push({ file: insp.fileName(f), nature: 'opaque', description: n.why });
  }
  const { trees, listed, problems } = insp.embedded();
  // Anything nix-seal could not look inside may hold what it did not find.
  const hasOpaque = images.some((i) => i.nature === 'opaque') || problems.length > 0;

  const results = new Map<PathId, ErasedAudit>();
  const toScan: PathId[] = [];
  for (const id of erased) {
    const p = g.paths[id]!;
    const found = trees.get(path.posix.basename(p)) ?? listed.get(p);
    if (found !== undefined) results.set(id, { path: p, verdict: 'contained', evidence: [found], hits: 0 });
    else toScan.push(id);
  }

  if (toScan.length > 0) {
    const byHash = new Map<string, PathId>();
    for (const id of toScan) byHash.set(hashPartOf(g.paths[id] as StorePath), id);
    const evidence = new Map<PathId, Evidence[]>();
    const hits = new Map<PathId, number>();
    // Paths with a hit inside a nested image nix-seal cannot read (an ext4 inside the ISO…): their
    // hash may belong to a copy in there, so they are unverified rather than merely mentioned.
    const inOpaque = new Set<PathId>();
    for await (const hit of scanPathHits(insp.fsPath, new HashPartSet(byHash.keys()), { context })) {
      const id = byHash.get(hit.hash)!;
      hits.set(id, (hits.get(id) ?? 0) + 1);
      const list = evidence.get(id) ?? [];
      if (list.length >= maxEvidence && inOpaque.has(id)) continue;
      const { opaque, ...ev } = insp.locate(hit);
      if (opaque && !inOpaque.has(id)) {
        inOpaque.add(id);
        // The evidence that makes the verdict comes first.
        list.unshift(ev);
        if (list.length > maxEvidence) list.pop();
      } else if (list.length < maxEvidence) list.push(ev);
      evidence.set(id, list);
    }
    const missing: PathId[] = [];
    for (const id of toScan) {
      const p = g.paths[id]!;
      const n = hits.get(id) ?? 0;
      const ev = evidence.get(id) ?? [];
      if (hasOpaque || inOpaque.has(id)) results.set(id, { path: p, verdict: 'unverified', evidence: ev, hits: n });
      else if (n > 0) results.set(id, { path: p, verdict: 'mentioned', evidence: ev, hits: n });
      else missing.push(id);
    }
    if (missing.length > 0) {
      // Who refers to each missing path, among the seal and what it erased.
      const isMissing = new Set(missing);
      const via = new Map<PathId, string[]>();
      for (const v of [seal, ...erased]) {
        for (let k = g.refStart[v]!; k < g.refStart[v + 1]!; k++) {
          const w = g.refs[k]!;
          if (w !== v && isMissing.has(w)) {
            const list = via.get(w) ?? [];
            list.push(g.paths[v]!);
            via.set(w, list);
          }
        }
      }
      for (const id of missing) results.set(id, { path: g.paths[id]!, verdict: 'missing', evidence: [], hits: 0, via: via.get(id) ?? [] });
    }
  }

  const list = erased.map((id) => results.get(id)!);
  const counts = zeroCounts();
  for (const r of list) counts[r.verdict]++;
  return { path: g.paths[seal]!, images, erased: list, counts, problems };
}
