import * as fs from 'node:fs';
import Database from 'better-sqlite3';
import { NixSealError } from '../errors.js';
import { buildRefGraph, idOf, type RefGraph } from '../graph/ref-graph.js';
import type { StorePath } from '../store/store-path.js';
import type { GraphSource } from './source.js';

// The closure of the roots in one recursive query: SQLite walks Refs through its referrer index,
// so a 250-path closure costs a few index lookups, not a scan of a 200,000-path database.
const CLOSURE_CTE = `
  WITH RECURSIVE closure(id) AS (
    SELECT id FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?))
    UNION
    SELECT r.reference FROM Refs r JOIN closure c ON r.referrer = c.id
  )`;
const NODES_SQL = `${CLOSURE_CTE} SELECT v.id, v.path, v.narSize, v.hash, v.deriver FROM closure c JOIN ValidPaths v ON v.id = c.id`;
const EDGES_SQL = `${CLOSURE_CTE} SELECT r.referrer, r.reference FROM closure c JOIN Refs r ON r.referrer = c.id`;

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
    db.prepare('SELECT count(*) FROM ValidPaths').get();
    return db;
  };
  try {
    return { db: probe(new Database(dbPath, { readonly: true, fileMustExist: true, timeout: 5000 })), mode: 'read-only' };
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

  loadClosure(roots: readonly StorePath[]): RefGraph {
    try {
      const rootsJson = JSON.stringify(roots);
      const read = this.db.transaction(() => {
        const nodes = this.db.prepare(NODES_SQL).raw().all(rootsJson) as [number, string, number | null, string, string | null][];
        const edges = this.db.prepare(EDGES_SQL).raw().all(rootsJson) as [number, number][];
        return { nodes, edges };
      });
      const { nodes, edges } = read();
      const n = nodes.length;
      // Database ids → record indices through a dense table (ids are autoincrement, so compact).
      let maxId = 0;
      for (const row of nodes) if (row[0] > maxId) maxId = row[0];
      const local = new Int32Array(maxId + 1).fill(-1);
      const paths = new Array<StorePath>(n);
      const narSize = new Float64Array(n);
      const narHash = new Array<string>(n);
      const deriver = new Array<string | undefined>(n);
      nodes.forEach((row, i) => {
        local[row[0]] = i;
        paths[i] = row[1] as StorePath;
        narSize[i] = row[2] ?? NaN;
        narHash[i] = row[3];
        deriver[i] = row[4] ?? undefined;
      });
      const edgeFrom = new Uint32Array(edges.length);
      const edgeTo = new Uint32Array(edges.length);
      edges.forEach((row, e) => {
        edgeFrom[e] = local[row[0]]!;
        edgeTo[e] = local[row[1]]!;
      });
      const g = buildRefGraph({ storeDir: this.storeDir, paths, narSize, narHash, deriver, edgeFrom, edgeTo, edgeCount: edges.length });
      for (const r of roots) {
        if (idOf(g, r) === undefined) {
          throw new NixSealError('EINVALIDPATH', `Cannot use ${r}: path is not valid in ${this.description}`, { path: r });
        }
      }
      return g;
    } catch (err) {
      if (err instanceof NixSealError) throw err;
      throw new NixSealError('EDB', `Cannot read Nix database ${this.dbPath}: ${describeDbError(err)}`, {
        path: this.dbPath,
        cause: err,
      });
    }
  }

  close(): void {
    this.db.close();
  }
}
