import * as path from 'node:path';
import { NixSealError } from '../errors.js';
import { buildRefGraph, type RefGraph } from '../graph/ref-graph.js';
import { parseHash } from '../store/hash.js';
import { storePathProblem, type StorePath } from '../store/store-path.js';
import { itemAt } from '../checked-index.js';

/** One path's metadata as a text or JSON source states it. */
export interface PathRecord {
  path: string;
  narHash?: string | undefined;
  narSize?: number | undefined;
  deriver?: string | undefined;
  references: string[];
  /** Where the record starts, for error messages: "line 12" or "entry 3". */
  where: string;
  /** The line it starts on, in a line-oriented file (the error's `line`). */
  line?: number;
}

/**
 * Collects records from a file source and turns them into a RefGraph. Checks what `nix-store
 * --load-db` would check: well-formed store paths in one store dir, valid hashes, and that every
 * reference is itself listed (a registration must be closed under references).
 */
export class RecordCollector {
  private readonly records: PathRecord[] = [];
  private readonly seen = new Map<string, PathRecord>();
  /**
   * `allowRepeats`: the same path may be listed again with the same references (several
   * exportReferencesGraph files of one build overlap); it is then kept once.
   */
  constructor(
    private readonly file: string,
    private readonly allowRepeats = false,
  ) {}

  add(rec: PathRecord): void {
    const before = this.allowRepeats ? this.seen.get(rec.path) : undefined;
    if (before) {
      if (before.references.join('\n') !== rec.references.join('\n')) {
        this.fail(rec.where, `${rec.path} is listed again with other references than at ${before.where}`, rec.line);
      }
      return;
    }
    if (this.allowRepeats) this.seen.set(rec.path, rec);
    this.records.push(rec);
  }

  fail(where: string, why: string, line?: number): never {
    throw new NixSealError('EPARSE', `Cannot parse ${this.file}${where ? ' ' + where : ''}: ${why}`, {
      path: this.file,
      ...(line !== undefined ? { line } : {}),
    });
  }

  finish(): RefGraph {
    const recs = this.records;
    if (recs.length === 0) this.fail('', 'it lists no store paths');
    const storeDir = path.posix.dirname(itemAt(recs, 0).path);
    const index = new Map<string, number>();
    const paths: StorePath[] = [];
    const narSize = new Float64Array(recs.length);
    const narHash: (string | undefined)[] = [];
    const deriver: (string | undefined)[] = [];
    let edgeCount = 0;
    recs.forEach((r, i) => {
      const p = this.storePath(r.path, storeDir, r);
      if (index.has(p)) this.fail(r.where, `${p} is listed twice`, r.line);
      index.set(p, i);
      paths.push(p);
      narSize[i] = r.narSize ?? NaN;
      if (r.narHash !== undefined) {
        try {
          parseHash(r.narHash, 'sha256');
        } catch {
          this.fail(r.where, `'${r.narHash}' is not a hash Nix accepts`, r.line);
        }
      }
      narHash.push(r.narHash);
      deriver.push(r.deriver === undefined || r.deriver === '' ? undefined : r.deriver);
      edgeCount += r.references.length;
    });
    const edgeFrom = new Uint32Array(edgeCount);
    const edgeTo = new Uint32Array(edgeCount);
    let e = 0;
    recs.forEach((r, i) => {
      for (const ref of r.references) {
        const j = index.get(ref);
        if (j === undefined) {
          this.storePath(ref, storeDir, r);
          this.fail(r.where, `reference ${ref} of ${r.path} is not listed in the file`, r.line);
        }
        edgeFrom[e] = i;
        edgeTo[e++] = j;
      }
    });
    return buildRefGraph({ storeDir, paths, narSize, narHash, deriver, edgeFrom, edgeTo, edgeCount });
  }

  private storePath(p: string, storeDir: string, r: PathRecord): StorePath {
    const problem = storePathProblem(p, storeDir);
    if (problem) this.fail(r.where, `'${p}': ${problem.why}`, r.line);
    return p as StorePath;
  }
}
