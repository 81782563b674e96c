/**
 * The containment audit: for each seal and each path it erased, is the erasure safe? A copy
 * inside the image decides, never a registration line (that is a claim, reported beside).
 */
import { prepareDecoders } from '../formats/decompress.js';
import path from 'node:path';
import { lstatSync } from 'node:fs';
import { narHashAndSize, narHashOfTree } from '../formats/nar.js';
import { asPathId, idOf, type PathId, type RefGraph } from '../graph/ref-graph.js';
import { HashPartSet } from '../scan/reference-scanner.js';
import { scanPathHits } from '../scan/scan-path.js';
import { formatHashNix32, hashesEqual, parseHash } from '../store/hash.js';
import { hashPartOf, type StorePath } from '../store/store-path.js';
import { firstDifference } from './copy-diff.js';
import { copyBytes, copyTree } from '../sources/embedded-store.js';
import { contextFor } from './edge-evidence.js';
import { resolveInside, treeIndex } from './image-view.js';
import { StorePathInspector, type Copy, type Evidence } from './inspect.js';
import { itemAt, u32At } from '../checked-index.js';

/**
 * What the audit says of an erased path:
 *
 * - verified: the image holds a copy (an entry at `…/nix/store/<basename>`, or `<basename>` at the
 *   root of a store image such as nix-store.squashfs) whose NAR serialisation, streamed from the
 *   image, hashes to the path's narHash;
 * - contained: a copy is inside but was not hashed (`quick`, or no narHash known and the path is
 *   not on disk to compute one);
 * - differs: a copy is inside but its NAR hash is not the path's;
 * - mentioned: no copy, but the seal's bytes hold the path's hash;
 * - unverified: no copy found, but the seal has images nix-seal cannot look inside, or a copy it
 *   could not read, or the hash sits in such an image nested in a readable one;
 * - missing: none of the above: erased only because an erased path (`via`) refers to it.
 *
 * A symlink entry whose target leaves the image is not a copy (an ISO whose nix/store entries
 * point at the host's store), unless its own NAR is the path's: the store path is that symlink.
 */
export type Verdict = 'verified' | 'contained' | 'differs' | 'mentioned' | 'unverified' | 'missing';
export const VERDICTS: readonly Verdict[] = ['verified', 'contained', 'differs', 'mentioned', 'unverified', 'missing'];

export interface ErasedAudit {
  path: string;
  verdict: Verdict;
  /**
   * Where the image holds the copy (verified, contained, differs), or where the hash sits
   * (mentioned, unverified); then registration listings; at most `maxEvidence` in all.
   */
  evidence: Evidence[];
  /** Occurrences of its hash in the seal's bytes (scanned only for paths without a copy). */
  hits: number;
  /** differs: the NAR hash of the copy, and the first difference found against the store path. */
  copyNarHash?: string;
  difference?: string;
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
  /**
   * Nested images that would not open, registration files that would not read, and what the
   * image's own registration gets wrong: a path it lists with no copy inside, or with another
   * narHash than the store's.
   */
  problems: { file: string; why: string }[];
}

export interface AuditResult {
  roots: string[];
  /** Copies were not hashed (`--quick`): `contained` is the best verdict. */
  quick: boolean;
  seals: SealAudit[];
  summary: Record<Verdict, number>;
}

export interface AuditProgress {
  /** Bytes of file contents hashed so far, of `total` to hash. */
  done: number;
  total: number;
}

export interface AuditOptions {
  /** Evidence items kept per erased path (default 5). */
  maxEvidence?: number;
  /** Bytes of context around a hash (default: the store dir and 24 bytes more). */
  context?: number;
  /** Do not hash copies: a copy makes a path `contained` (today's fast check). */
  quick?: boolean;
  /**
   * Scan the seal's bytes for the hashes of the paths it holds no copy of (default true): the
   * evidence that tells `mentioned` and (a hit inside an image nix-seal cannot open) `unverified`
   * from `missing`, at the cost of reading the seal whole. false, for callers that only count
   * what is not contained (suggest): those paths are `missing`, or `unverified` beside anything
   * opaque, without their hits. No verdict that proves anything changes.
   */
  scanAbsent?: boolean;
  log?: (msg: string) => void;
  progress?: (p: AuditProgress) => void;
}

/** What the audit needs to know: the graph, the roots, the seals reached and what each erased. */
export interface AuditInput {
  graph: RefGraph;
  roots: readonly PathId[];
  seals: readonly { seal: PathId; erased: readonly PathId[] }[];
  /** Where the store's files are on disk (differs from graph.storeDir for chroot stores). */
  realStoreDir: string;
  /** For sources whose paths may not be on disk (an image, a binary cache): puts these paths' files on disk, returns the dir holding them. */
  materialize?: (paths: readonly string[]) => string;
}

const zeroCounts = (): Record<Verdict, number> => ({ verified: 0, contained: 0, differs: 0, mentioned: 0, unverified: 0, missing: 0 });

/** The verdicts that prove an erasure safe: `verified`, and `contained` when copies were not hashed. */
export function isProven(v: Verdict, quick: boolean): boolean {
  return v === 'verified' || (quick && v === 'contained');
}

/** Audits an analysis (anything with the graph, roots, closure and source's real store dir). */
export function auditAnalysis(
  a: {
    graph: RefGraph;
    roots: readonly PathId[];
    closure: { seals: readonly { seal: PathId; erased: readonly PathId[] }[] };
    source: { realStoreDir: string; materialize?(paths: readonly string[]): string };
  },
  opts: AuditOptions = {},
): Promise<AuditResult> {
  const src = a.source;
  const input: AuditInput = { graph: a.graph, roots: a.roots, seals: a.closure.seals, realStoreDir: src.realStoreDir };
  if (src.materialize) input.materialize = (paths) => src.materialize!(paths);
  return auditSeals(input, opts);
}

export async function auditSeals(input: AuditInput, opts: AuditOptions = {}): Promise<AuditResult> {
  const g = input.graph;
  const maxEvidence = opts.maxEvidence ?? 5;
  const summary = zeroCounts();
  const seals: SealAudit[] = [];
  const hasher = new CopyHasher(opts.progress);
  await prepareDecoders();
  for (const s of input.seals) {
    const sealPath = itemAt(g.paths, s.seal);
    opts.log?.(`auditing ${sealPath}: ${s.erased.length} erased paths`);
    const sealDir = input.materialize?.([sealPath]) ?? input.realStoreDir;
    const inspector = new StorePathInspector(path.join(sealDir, path.posix.basename(sealPath)), sealPath, g.storeDir);
    try {
      const audit = await auditSeal(input, s.seal, s.erased, inspector, hasher, {
        maxEvidence,
        context: opts.context ?? contextFor(g.storeDir),
        quick: opts.quick ?? false,
        scanAbsent: opts.scanAbsent ?? true,
      });
      for (const v of VERDICTS) summary[v] += audit.counts[v];
      seals.push(audit);
    } finally {
      inspector.close();
    }
  }
  return { roots: input.roots.map((r) => itemAt(g.paths, r)), quick: opts.quick ?? false, seals, summary };
}

/**
 * Hashes copies, each once per audit (several seals may hold the same image file), and reports
 * progress over all the bytes to hash.
 */
class CopyHasher {
  private readonly done = new Map<string, { narHash: string; narSize: number } | Error>();
  private total = 0;
  private hashed = 0;
  constructor(private readonly progress: ((p: AuditProgress) => void) | undefined) {}

  /** Announces the bytes of copies about to be hashed (for the progress total). */
  plan(copies: readonly Copy[]): void {
    for (const c of copies) if (!this.done.has(c.key)) this.total += copyBytes(c);
  }

  hash(c: Copy): { narHash: string; narSize: number } | Error {
    const known = this.done.get(c.key);
    if (known !== undefined) return known;
    let r: { narHash: string; narSize: number } | Error;
    try {
      r = narHashOfTree(copyTree(c), c.entry.path, c.evidence.file, (n) => {
        this.hashed += n;
        this.progress?.({ done: this.hashed, total: Math.max(this.total, this.hashed) });
      });
    } catch (err) {
      r = err instanceof Error ? err : new Error(String(err));
    }
    this.done.set(c.key, r);
    return r;
  }
}

interface SealOptions {
  maxEvidence: number;
  context: number;
  quick: boolean;
  scanAbsent: boolean;
}

async function auditSeal(input: AuditInput, seal: PathId, erased: readonly PathId[], insp: StorePathInspector, hasher: CopyHasher, o: SealOptions): Promise<SealAudit> {
  const g = input.graph;
  const images: SealFile[] = [];
  for (const f of insp.files()) {
    const n = insp.nature(f);
    if (n.nature === 'image') images.push({ file: insp.fileName(f), nature: 'image', description: n.view.description });
    else if (n.nature === 'opaque') images.push({ file: insp.fileName(f), nature: 'opaque', description: n.why });
  }
  const { trees, registrations, problems } = insp.embedded();
  // Anything nix-seal could not look inside may hold what it did not find.
  const hasOpaque = images.some((i) => i.nature === 'opaque') || problems.length > 0;

  const results = new Map<PathId, ErasedAudit>();
  const toScan: PathId[] = [];
  /** Evidence for paths whose entry is not a copy (a symlink out of the image), put first. */
  const notCopies = new Map<PathId, Evidence>();

  // The copies, and whether each is one (a symlink out of the image is not).
  const copies = new Map<PathId, Copy>();
  for (const id of erased) {
    const c = trees.get(path.posix.basename(itemAt(g.paths, id)));
    if (c === undefined) toScan.push(id);
    else copies.set(id, c);
  }
  if (!o.quick) hasher.plan([...copies.values()]);

  for (const [id, c] of copies) {
    const p = itemAt(g.paths, id);
    const leaves = c.entry.type === 'symlink' && resolveInside(treeIndex(c.view), c.entry.path, g.storeDir, c.storeImage) === undefined;
    const symlinkNote = (): Evidence => ({ ...c.evidence, what: `${c.evidence.what}: a symlink to ${c.entry.target ?? '?'}, which leaves the image: not a copy` });
    if (o.quick) {
      if (leaves) {
        notCopies.set(id, symlinkNote());
        toScan.push(id);
      } else results.set(id, { path: p, verdict: 'contained', evidence: [c.evidence], hits: 0 });
      continue;
    }
    const expected = await expectedNarHash(g, id, input.realStoreDir);
    if (expected === undefined) {
      if (leaves) {
        notCopies.set(id, symlinkNote());
        toScan.push(id);
      } else results.set(id, { path: p, verdict: 'contained', evidence: [{ ...c.evidence, what: `${c.evidence.what}; not hashed: no narHash is known and the path is not on disk` }], hits: 0 });
      continue;
    }
    const got = hasher.hash(c);
    if (got instanceof Error) {
      results.set(id, { path: p, verdict: 'unverified', evidence: [{ ...c.evidence, what: `${c.evidence.what}; the copy could not be read: ${got.message}` }], hits: 0 });
      continue;
    }
    if (hashesEqual(parseHash(got.narHash), parseHash(expected, 'sha256'))) {
      results.set(id, { path: p, verdict: 'verified', evidence: [{ ...c.evidence, what: `${c.evidence.what}; NAR hash ${got.narHash} matches` }], hits: 0 });
    } else if (leaves) {
      notCopies.set(id, symlinkNote());
      toScan.push(id);
    } else {
      const fsPath = path.join(input.realStoreDir, path.posix.basename(p));
      let difference: string | undefined;
      try {
        difference = onDisk(fsPath) ? firstDifference(c, fsPath) : undefined;
      } catch {
        difference = undefined;
      }
      const r: ErasedAudit = {
        path: p,
        verdict: 'differs',
        evidence: [{ ...c.evidence, what: `${c.evidence.what}; NAR hash ${got.narHash}, the store's is ${formatExpected(expected)}` }],
        hits: 0,
        copyNarHash: got.narHash,
      };
      r.difference = difference ?? (onDisk(fsPath) ? 'no difference found in names, types, sizes or contents (the NAR hashes still differ)' : 'the store path is not on disk to compare with');
      results.set(id, r);
    }
  }

  if (toScan.length > 0) {
    const byHash = new Map<string, PathId>();
    for (const id of toScan) byHash.set(hashPartOf(g.paths[id] as StorePath), id);
    const evidence = new Map<PathId, Evidence[]>();
    const hits = new Map<PathId, number>();
    // Paths with a hit inside a nested image nix-seal cannot read (an ext4 inside the ISO…): their
    // hash may belong to a copy in there, so they are unverified rather than merely mentioned.
    const inOpaque = new Set<PathId>();
    const hitsInSeal = o.scanAbsent ? scanPathHits(insp.fsPath, new HashPartSet(byHash.keys()), { context: o.context }) : [];
    for await (const hit of hitsInSeal) {
      const id = byHash.get(hit.hash)!;
      hits.set(id, (hits.get(id) ?? 0) + 1);
      const list = evidence.get(id) ?? [];
      if (list.length >= o.maxEvidence && inOpaque.has(id)) continue;
      const { opaque, ...ev } = insp.locate(hit);
      if (opaque && !inOpaque.has(id)) {
        inOpaque.add(id);
        // The evidence that makes the verdict comes first.
        list.unshift(ev);
        if (list.length > o.maxEvidence) list.pop();
      } else if (list.length < o.maxEvidence) list.push(ev);
      evidence.set(id, list);
    }
    const missing: PathId[] = [];
    for (const id of toScan) {
      const p = itemAt(g.paths, id);
      const n = hits.get(id) ?? 0;
      const ev = evidence.get(id) ?? [];
      const note = notCopies.get(id);
      if (note !== undefined) ev.unshift(note);
      if (hasOpaque || inOpaque.has(id)) results.set(id, { path: p, verdict: 'unverified', evidence: ev, hits: n });
      else if (n > 0) results.set(id, { path: p, verdict: 'mentioned', evidence: ev, hits: n });
      else missing.push(id);
    }
    if (missing.length > 0) {
      // Who refers to each missing path, among the seal and what it erased.
      const isMissing = new Set(missing);
      const via = new Map<PathId, string[]>();
      for (const v of [seal, ...erased]) {
        for (let k = u32At(g.refStart, v), end = u32At(g.refStart, v + 1); k < end; k++) {
          const w = asPathId(u32At(g.refs, k));
          if (w !== v && isMissing.has(w)) {
            const list = via.get(w) ?? [];
            list.push(itemAt(g.paths, v));
            via.set(w, list);
          }
        }
      }
      for (const id of missing) {
        const note = notCopies.get(id);
        results.set(id, { path: itemAt(g.paths, id), verdict: 'missing', evidence: note ? [note] : [], hits: 0, via: via.get(id) ?? [] });
      }
    }
  }

  // The image's own registrations: evidence of intent beside each verdict, and checked.
  const erasedByPath = new Map<string, PathId>(erased.map((id) => [itemAt(g.paths, id), id]));
  for (const reg of registrations) {
    for (const r of reg.paths.values()) {
      const erasedId = erasedByPath.get(r.path);
      if (erasedId !== undefined) {
        const audit = results.get(erasedId);
        if (audit !== undefined && audit.evidence.length < o.maxEvidence) {
          audit.evidence.push({ file: reg.file, offset: reg.offset, inside: reg.inside, what: `listed in ${path.posix.basename(reg.inside[reg.inside.length - 1] ?? reg.file)}, line ${r.line} (a claim, not a copy)` });
        }
      }
      const copy = trees.get(path.posix.basename(r.path));
      if (copy === undefined) {
        problems.push({ file: reg.file, why: `line ${r.line} lists ${r.path}, but the image holds no copy of it` });
        continue;
      }
      const id = idOf(g, r.path);
      const known = id === undefined ? undefined : g.narHash[id];
      if (r.narHash !== undefined && known !== undefined) {
        let same: boolean;
        try {
          same = hashesEqual(parseHash(r.narHash, 'sha256'), parseHash(known, 'sha256'));
        } catch {
          problems.push({ file: reg.file, why: `line ${r.line + 1}: '${r.narHash}' is not a hash` });
          continue;
        }
        if (!same) problems.push({ file: reg.file, why: `line ${r.line} registers ${r.path} with narHash ${r.narHash}, the store's is ${formatExpected(known)}` });
      }
    }
  }

  const list = erased.map((id) => results.get(id)!);
  const counts = zeroCounts();
  for (const r of list) counts[r.verdict]++;
  return { path: itemAt(g.paths, seal), images, erased: list, counts, problems };
}

/** The narHash to check a copy against: the source's, or one computed from the path on disk. */
async function expectedNarHash(g: RefGraph, id: PathId, realStoreDir: string): Promise<string | undefined> {
  const known = g.narHash[id];
  if (known !== undefined) return known;
  const fsPath = path.join(realStoreDir, path.posix.basename(itemAt(g.paths, id)));
  if (!onDisk(fsPath)) return undefined;
  return (await narHashAndSize(fsPath)).narHash;
}

function onDisk(fsPath: string): boolean {
  try {
    lstatSync(fsPath);
    return true;
  } catch {
    return false;
  }
}

/** A hash as `sha256:<nix32>`, the form narHash is printed in, whatever form the source gave. */
function formatExpected(h: string): string {
  try {
    return formatHashNix32(parseHash(h, 'sha256'));
  } catch {
    return h;
  }
}
