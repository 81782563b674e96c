import type { Warning } from '../errors.js';
import type { Analysis } from '../analysis.js';
import { maskCount, maskNarSize, narSizeOf, reach, sealedClosure } from '../graph/closure.js';
import { idOf, type PathId } from '../graph/ref-graph.js';
import { auditSeals, isProven, type AuditInput } from '../seal/audit.js';
import type { Amount } from './info.js';
import { sizeOrNull } from './closure.js';
import { f64At, itemAt } from '../checked-index.js';

/** What the audit says of the paths a seal would erase (`nix-seal audit` shows the evidence). */
export interface InsideSummary {
  /** Erased paths whose copy inside hashes to their narHash. */
  verified: number;
  /** Erased paths with a copy inside that was not hashed (--quick, or no narHash known). */
  contained: number;
  /** Erased paths whose copy inside differs from the store's. */
  differs: number;
  /** Erased paths with no copy inside: `nix-seal audit` tells mentioned / missing / unverified apart. */
  notFound: number;
  /** Images in it nix-seal cannot look inside (then "not found" proves nothing). */
  opaque: string[];
}

export interface Suggestion {
  path: string;
  narSize: number | null;
  /** Why it is an image: each image file, its format and the structure that matched. */
  reason: string;
  files: { file: string; format: string; why: string }[];
  /** What sealing this path alone would erase. */
  alone: Amount;
  /** With every detected image sealed: what only this one erases. */
  exclusive: Amount;
  inside: InsideSummary;
  /** Every erased path is verified (contained, with --quick): safe by the audit's standard. */
  proven: boolean;
}

export interface SuggestResult {
  roots: string[];
  full: Amount;
  /** The closure with every detected image sealed. */
  sealedAll: Amount;
  /** The closure with only the proven images sealed. */
  sealedProven: Amount;
  /** Ranked: most bytes erased (alone) first, then most paths. */
  images: Suggestion[];
  /** Detected images a --no-seal of the user's excluded: not sealed, not ranked. */
  excluded: { path: string; reason: string }[];
  /**
   * The flags to use, as argv words: the user's own --seal / --seals-from / --no-seal, then
   * --seal-images with a --no-seal for each image not proven safe. They give exactly
   * `sealedProven` (which is `sealedAll` when every image is proven).
   */
  flags: string[];
  warnings: Warning[];
}

/** The seal flags the analysis was made with, so that the suggested flags keep them. */
export interface GivenSealFlags {
  seals?: readonly string[];
  sealsFrom?: readonly string[];
  noSeals?: readonly string[];
}

/**
 * `suggest`: an analysis made with sealImages (and any --seal / --no-seal the user gave, in
 * `given`). Each image is audited (its copies hashed, unless `quick`) to say whether it is proven.
 */
export async function suggestResult(a: Analysis, given: GivenSealFlags = {}, opts: { quick?: boolean } = {}): Promise<SuggestResult> {
  const quick = opts.quick ?? false;
  const g = a.graph;
  const amount = (ids: readonly PathId[]): Amount => ({ count: ids.length, narSize: sizeOrNull(narSizeOf(g, ids)) });
  const maskAmount = (m: Uint8Array): Amount => ({ count: maskCount(m), narSize: sizeOrNull(maskNarSize(g, m)) });
  const exclusiveOf = new Map(a.closure.seals.map((s) => [s.seal, s.exclusive]));
  const detected = a.detected.filter((d) => a.seals[d.id]); // --no-seal exceptions left out
  const images: Suggestion[] = [];
  for (const d of detected) {
    const alone = new Uint8Array(g.paths.length);
    alone[d.id] = 1;
    const erased = sealedClosure(g, a.roots, alone).seals[0]?.erased ?? [];
    const sealPath = itemAt(g.paths, d.id);
    const input: AuditInput = { graph: g, roots: a.roots, seals: [{ seal: d.id, erased }], realStoreDir: a.source.realStoreDir };
    if (a.source.materialize) input.materialize = (paths) => a.source.materialize!(paths);
    // Not found is one count here (mentioned, missing and unverified alike): scanning the image's
    // bytes for the hashes it holds no copy of would tell them apart and read the image whole.
    const audit = (await auditSeals(input, { quick, maxEvidence: 1, scanAbsent: false })).seals[0];
    const c = audit?.counts;
    const inside: InsideSummary = {
      verified: c?.verified ?? 0,
      contained: c?.contained ?? 0,
      differs: c?.differs ?? 0,
      notFound: (c?.mentioned ?? 0) + (c?.unverified ?? 0) + (c?.missing ?? 0),
      opaque: [...(audit?.images ?? []).filter((i) => i.nature === 'opaque').map((i) => i.file), ...(audit?.problems ?? []).map((p) => p.file)],
    };
    images.push({
      path: sealPath,
      narSize: sizeOrNull(f64At(g.narSize, d.id)),
      reason: d.sniff.reason,
      files: d.sniff.files.map((f) => ({ file: f.file, format: f.detection.format, why: f.detection.why })),
      alone: amount(erased),
      exclusive: amount(exclusiveOf.get(d.id) ?? []),
      inside,
      proven: (audit?.erased ?? []).every((e) => isProven(e.verdict, quick)),
    });
  }
  images.sort((x, y) => (y.alone.narSize ?? 0) - (x.alone.narSize ?? 0) || y.alone.count - x.alone.count || (x.path < y.path ? -1 : 1));
  const unproven = images.filter((s) => !s.proven);
  const proven = a.seals.slice();
  for (const s of unproven) proven[idOf(g, s.path)!] = 0;
  return {
    roots: a.roots.map((r) => itemAt(g.paths, r)),
    full: maskAmount(a.closure.full),
    sealedAll: maskAmount(a.closure.kept),
    sealedProven: maskAmount(reach(g, a.roots, proven)),
    images,
    excluded: a.detected.filter((d) => !a.seals[d.id]).map((d) => ({ path: itemAt(g.paths, d.id), reason: d.sniff.reason })),
    flags: [
      ...(given.seals ?? []).flatMap((p) => ['--seal', p]),
      ...(given.sealsFrom ?? []).flatMap((f) => ['--seals-from', f]),
      ...(given.noSeals ?? []).flatMap((p) => ['--no-seal', p]),
      ...(images.length === 0 ? [] : ['--seal-images', ...unproven.flatMap((s) => ['--no-seal', s.path])]),
    ],
    warnings: a.warnings,
  };
}
