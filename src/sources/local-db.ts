import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import { NixSealError } from '../errors.js';
import { buildRefGraph, type RefGraph } from '../graph/ref-graph.js';
import type { StorePath } from '../store/store-path.js';
import type { GraphSource, LoadOptions } from './source.js';

// How the closure is read, measured on a 200,000-path database (bench/): per-row reads cost about
// a microsecond each and a recursive CTE pays for SQLite's UNION bookkeeping, so rows are
// aggregated with group_concat and the walk happens here, level by level through the referrer
// index. When the walk has seen over a third of the database, one scan of the whole Refs table is
// cheaper than the index lookups still to come.
const FULL_SCAN_FRACTION = 0.35;
const ROOT_IDS_SQL = `SELECT id, path FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?))`;
const EDGES_OF_SQL = `SELECT group_concat(referrer) || ';' || group_concat(reference) FROM Refs WHERE referrer IN (SELECT value FROM json_each(?))`;
const ALL_EDGES_SQL = `SELECT group_concat(referrer) || ';' || group_concat(reference) FROM Refs`;
const nodeColumns = (hashes: boolean): string =>
  hashes ? `id || ' ' || ifnull(narSize, '') || ' ' || path || ' ' || hash || ' ' || ifnull(deriver, '')` : `id || ' ' || ifnull(narSize, '') || ' ' || path`;
const NODES_OF_SQL = (hashes: boolean): string =>
  `SELECT group_concat(${nodeColumns(hashes)}, char(10)) FROM ValidPaths WHERE id IN (SELECT value FROM json_each(?))`;
const ALL_NODES_SQL = (hashes: boolean): string => `SELECT group_concat(${nodeColumns(hashes)}, char(10)) FROM ValidPaths`;

/** Parses "1,2,3;4,5,6" (referrers; references) into two id arrays. */
function parseEdgePairs(text: string): { from: Uint32Array; to: Uint32Array } {
  const semi = text.indexOf(';');
  const parse = (start: number, end: number): Uint32Array => {
    let count = start < end ? 1 : 0;
    for (let i = start; i < end; i++) if (text.charCodeAt(i) === 44) count++;
    const out = new Uint32Array(count);
    let k = 0;
    let v = 0;
    for (let i = start; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c === 44) {
        out[k++] = v;
        v = 0;
      } else v = v * 10 + (c - 48);
    }
    if (count > 0) out[k] = v;
    return out;
  };
  return { from: parse(0, semi), to: parse(semi + 1, text.length) };
}

function concat(parts: Uint32Array[]): Uint32Array {
  if (parts.length === 1) return parts[0]!;
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint32Array(n);
  let k = 0;
  for (const p of parts) (out.set(p, k), (k += p.length));
  return out;
}

/** The database ids reachable from `roots` over an edge list of database ids. */
function walk(edges: { from: Uint32Array; to: Uint32Array }, roots: number[]): number[] {
  let maxId = 0;
  for (const r of roots) if (r > maxId) maxId = r;
  for (let e = 0; e < edges.from.length; e++) {
    if (edges.from[e]! > maxId) maxId = edges.from[e]!;
    if (edges.to[e]! > maxId) maxId = edges.to[e]!;
  }
  // CSR over database ids (autoincrement, so dense).
  const start = new Uint32Array(maxId + 2);
  for (let e = 0; e < edges.from.length; e++) start[edges.from[e]! + 1]!++;
  for (let i = 0; i <= maxId; i++) start[i + 1]! += start[i]!;
  const fill = start.slice(0, maxId + 1);
  const adj = new Uint32Array(edges.from.length);
  for (let e = 0; e < edges.from.length; e++) adj[fill[edges.from[e]!]!++] = edges.to[e]!;
  const seen = new Uint8Array(maxId + 1);
  const out: number[] = [];
  for (const r of roots) if (!seen[r]) (seen[r] = 1, out.push(r));
  for (let k = 0; k < out.length; k++) {
    const v = out[k]!;
    for (let j = start[v]!; j < start[v + 1]!; j++) {
      const w = adj[j]!;
      if (!seen[w]) (seen[w] = 1, out.push(w));
    }
  }
  return out;
}

/** Why the database cannot be used, in words, from a SQLite or system error. */
function describeDbError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case 'SQLITE_CANTOPEN':
      return 'cannot open it (missing, or no permission)';
    case 'SQLITE_NOTADB':
      return 'the file is not a SQLite database';
    case 'SQLITE_CORRUPT':
      return 'the database is corrupt';
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return 'the database is locked';
    case 'SQLITE_ERROR':
      if (/no such table/.test(e.message ?? '')) return `not a Nix database (${e.message})`;
      return e.message ?? 'SQLite error';
    default:
      return e.message ?? String(err);
  }
}

/**
 * Opens the database read-only. A read-only WAL database in a directory we cannot write (no -shm
 * to create) can still be read as immutable, as Nix does for read-only stores, but only when the
 * WAL holds nothing newer than the main file.
 */
function openReadOnly(dbPath: string): { db: Database.Database; mode: string } {
  const fail = (why: string, cause?: unknown): never => {
    throw new NixSealError('EDB', `Cannot read Nix database ${dbPath}: ${why}`, { path: dbPath, cause });
  };
  try {
    fs.accessSync(dbPath, fs.constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    fail(code === 'ENOENT' ? 'no such file (is this a Nix store? see --store)' : 'permission denied', err);
  }
  // Opening succeeds lazily; touching the schema reports corruption or a locked file here.
  const probe = (db: Database.Database): Database.Database => {
    db.prepare('SELECT id FROM ValidPaths LIMIT 1').get();
    return db;
  };
  try {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 });
    // Reading pages through a memory map instead of read() calls: about a third faster on big scans.
    db.pragma('mmap_size = 1073741824');
    return { db: probe(db), mode: 'read-only' };
  } catch (err) {
    const wal = `${dbPath}-wal`;
    const walEmpty = !fs.existsSync(wal) || fs.statSync(wal).size === 0;
    if ((err as { code?: string }).code !== 'SQLITE_CANTOPEN' || !walEmpty) return fail(describeDbError(err), err);
  }
  try {
    return { db: probe(new Database(`file:${encodeURI(dbPath)}?immutable=1`, { readonly: true, fileMustExist: true })), mode: 'immutable' };
  } catch (err) {
    return fail(describeDbError(err), err);
  }
}

export interface LocalStoreLocation {
  storeDir: string;
  realStoreDir: string;
  stateDir: string;
}

/**
 * The local store's SQLite database, opened read-only. Both queries run inside one read
 * transaction: in WAL mode that pins a snapshot, so paths Nix registers meanwhile cannot make
 * the nodes and the edges disagree.
 */
export class LocalDbSource implements GraphSource {
  readonly description: string;
  readonly storeDir: string;
  readonly realStoreDir: string;
  private readonly db: Database.Database;

  constructor(
    loc: LocalStoreLocation,
    readonly dbPath = `${loc.stateDir}/db/db.sqlite`,
  ) {
    this.storeDir = loc.storeDir;
    this.realStoreDir = loc.realStoreDir;
    const opened = openReadOnly(this.dbPath);
    this.db = opened.db;
    this.description = `database ${this.dbPath} (${opened.mode})`;
  }

  loadClosure(roots: readonly StorePath[], opts: LoadOptions = {}): RefGraph {
    const hashes = opts.hashes ?? false;
    try {
      // One read transaction: in WAL mode every query below sees the same snapshot.
      return this.db.transaction(() => {
        const rootRows = this.db.prepare(ROOT_IDS_SQL).raw().all(JSON.stringify(roots)) as [number, string][];
        const found = new Set(rootRows.map((r) => r[1]));
        for (const r of roots) {
          if (!found.has(r)) throw new NixSealError('EINVALIDPATH', `Cannot use ${r}: path is not valid in ${this.description}`, { path: r });
        }
        const maxId = (this.db.prepare('SELECT max(id) FROM ValidPaths').pluck().get() as number | null) ?? 0;
        const edgesOf = this.db.prepare(EDGES_OF_SQL).pluck();
        // Level-synchronous walk: one aggregated query per level of the graph.
        const seen = new Uint8Array(maxId + 1);
        let closure: number[] = [];
        for (const [id] of rootRows) if (!seen[id]) (seen[id] = 1, closure.push(id));
        const from: Uint32Array[] = [];
        const to: Uint32Array[] = [];
        let frontier = closure.slice();
        let fullScan = false;
        while (frontier.length > 0) {
          if (closure.length > maxId * FULL_SCAN_FRACTION) {
            fullScan = true;
            break;
          }
          const level = parseEdgePairs((edgesOf.get(JSON.stringify(frontier)) as string | null) ?? ';');
          from.push(level.from);
          to.push(level.to);
          frontier = [];
          for (const w of level.to) if (!seen[w]) (seen[w] = 1, frontier.push(w), closure.push(w));
        }
        let edges = { from: concat(from), to: concat(to) };
        if (fullScan) {
          edges = parseEdgePairs((this.db.prepare(ALL_EDGES_SQL).pluck().get() as string | null) ?? ';');
          closure = walk(edges, rootRows.map((r) => r[0]));
        }
        // A third of the table or more: one scan beats that many index lookups.
        const nodeText =
          closure.length * 3 >= maxId
            ? (this.db.prepare(ALL_NODES_SQL(hashes)).pluck().get() as string | null)
            : (this.db.prepare(NODES_OF_SQL(hashes)).pluck().get(JSON.stringify(closure)) as string | null);
        return this.assemble(nodeText ?? '', closure, edges, hashes);
      })();
    } catch (err) {
      if (err instanceof NixSealError) throw err;
      throw new NixSealError('EDB', `Cannot read Nix database ${this.dbPath}: ${describeDbError(err)}`, {
        path: this.dbPath,
        cause: err,
      });
    }
  }

  /** Builds the graph of the closure members from "id size path [hash deriver]" lines. */
  private assemble(nodeText: string, closure: number[], edges: { from: Uint32Array; to: Uint32Array }, hashes: boolean): RefGraph {
    let maxId = 0;
    for (const id of closure) if (id > maxId) maxId = id;
    const local = new Int32Array(maxId + 1).fill(-1);
    for (const id of closure) local[id] = -2; // member, not yet numbered
    const paths: StorePath[] = [];
    const sizes: number[] = [];
    const narHash: (string | undefined)[] = [];
    const deriver: (string | undefined)[] = [];
    let pos = 0;
    while (pos < nodeText.length) {
      let eol = nodeText.indexOf('\n', pos);
      if (eol < 0) eol = nodeText.length;
      const sp1 = nodeText.indexOf(' ', pos);
      const id = Number(nodeText.slice(pos, sp1));
      if (id <= maxId && local[id] === -2) {
        const sp2 = nodeText.indexOf(' ', sp1 + 1);
        const sizeText = nodeText.slice(sp1 + 1, sp2);
        local[id] = paths.length;
        sizes.push(sizeText === '' ? NaN : Number(sizeText));
        if (hashes) {
          const sp3 = nodeText.indexOf(' ', sp2 + 1);
          const sp4 = nodeText.indexOf(' ', sp3 + 1);
          paths.push(nodeText.slice(sp2 + 1, sp3) as StorePath);
          narHash.push(nodeText.slice(sp3 + 1, sp4));
          deriver.push(sp4 + 1 < eol ? nodeText.slice(sp4 + 1, eol) : undefined);
        } else {
          paths.push(nodeText.slice(sp2 + 1, eol) as StorePath);
        }
      }
      pos = eol + 1;
    }
    // Keep only edges between members, renumbered.
    let m = 0;
    const from = new Uint32Array(edges.from.length);
    const to = new Uint32Array(edges.from.length);
    for (let e = 0; e < edges.from.length; e++) {
      const a = edges.from[e]!;
      const b = edges.to[e]!;
      if (a <= maxId && b <= maxId && local[a]! >= 0 && local[b]! >= 0) {
        from[m] = local[a]!;
        to[m++] = local[b]!;
      }
    }
    return buildRefGraph({
      storeDir: this.storeDir,
      paths,
      narSize: sizes,
      ...(hashes ? { narHash, deriver } : {}),
      edgeFrom: from,
      edgeTo: to,
      edgeCount: m,
    });
  }

  close(): void {
    this.db.close();
  }
}
