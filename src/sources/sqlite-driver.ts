/**
 * Read-only SQLite for the Nix database, through whichever driver the running Node has: the
 * built-in `node:sqlite` (Node ≥ 22.5; nothing to compile), else better-sqlite3 (an optional
 * dependency, for Node 20), through its public API only. Both are behind one small interface with
 * rows as arrays and errors carrying SQLite's code name (`SQLITE_BUSY`…), so callers see no
 * difference.
 */
import { createRequire } from 'node:module';

export type SqlParam = number | string | Uint8Array | null;

/** A prepared statement; rows come back as arrays of column values. */
export interface SqliteStatement {
  /** The first row, or undefined. */
  get(...params: SqlParam[]): unknown[] | undefined;
  all(...params: SqlParam[]): unknown[][];
}

export type SqliteDriverName = 'node:sqlite' | 'better-sqlite3';

/** The part of a SQLite connection nix-seal uses. */
export interface SqliteDb {
  readonly driver: SqliteDriverName;
  prepare(sql: string): SqliteStatement;
  exec(sql: string): void;
  close(): void;
}

/** A SQLite error with its result code's name, as better-sqlite3 names them (`SQLITE_CANTOPEN`). */
export class SqliteError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = 'SqliteError';
  }
}

// ---- node:sqlite -------------------------------------------------------------------------------

/** The part of node:sqlite used here (@types/node 20 has no types for it). */
interface NodeSqlite {
  DatabaseSync: new (file: string, opts: { readOnly: boolean }) => NodeSqliteDb;
}
interface NodeSqliteDb {
  prepare(sql: string): NodeSqliteStatement;
  exec(sql: string): void;
  close(): void;
}
interface NodeSqliteStatement {
  get(...params: SqlParam[]): unknown;
  all(...params: SqlParam[]): unknown[];
  /** Node ≥ 22.16 / 24. */
  setReturnArrays?(on: boolean): void;
}

/** Primary result codes (sqlite3.h), by number. */
const PRIMARY_CODES: Record<number, string> = {
  1: 'ERROR', 2: 'INTERNAL', 3: 'PERM', 4: 'ABORT', 5: 'BUSY', 6: 'LOCKED', 7: 'NOMEM', 8: 'READONLY',
  9: 'INTERRUPT', 10: 'IOERR', 11: 'CORRUPT', 12: 'NOTFOUND', 13: 'FULL', 14: 'CANTOPEN', 15: 'PROTOCOL',
  16: 'EMPTY', 17: 'SCHEMA', 18: 'TOOBIG', 19: 'CONSTRAINT', 20: 'MISMATCH', 21: 'MISUSE', 22: 'NOLFS',
  23: 'AUTH', 24: 'FORMAT', 25: 'RANGE', 26: 'NOTADB', 27: 'NOTICE', 28: 'WARNING',
};
/** The extended codes whose names matter to the caller. */
const EXTENDED_CODES: Record<number, string> = { [8 | (6 << 8)]: 'READONLY_DIRECTORY', [5 | (1 << 8)]: 'BUSY_RECOVERY', [5 | (2 << 8)]: 'BUSY_SNAPSHOT' };

/** node:sqlite's errors (code ERR_SQLITE_ERROR, errcode a number) as SqliteErrors; others unchanged. */
function fromNodeSqlite(err: unknown): unknown {
  const e = err as { code?: unknown; errcode?: unknown; message?: unknown };
  if (e?.code !== 'ERR_SQLITE_ERROR' || typeof e.errcode !== 'number') return err;
  const name = EXTENDED_CODES[e.errcode] ?? PRIMARY_CODES[e.errcode & 0xff] ?? `UNKNOWN_${e.errcode}`;
  const out = new SqliteError(String(e.message), `SQLITE_${name}`);
  out.cause = err;
  return out;
}

function guarded<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  return (...args) => {
    try {
      return fn(...args);
    } catch (err) {
      throw fromNodeSqlite(err);
    }
  };
}

let nodeSqlite: NodeSqlite | null | undefined;
/** node:sqlite, or null where this Node has none (Node 20; 22 before 22.13 without a flag). */
function loadNodeSqlite(): NodeSqlite | null {
  if (nodeSqlite !== undefined) return nodeSqlite;
  nodeSqlite = null;
  const get = (process as { getBuiltinModule?: (id: string) => unknown }).getBuiltinModule;
  if (typeof get !== 'function') return nodeSqlite;
  // Node 22 warns on stderr that SQLite is experimental, on every run: not the user's concern.
  const emitWarning = process.emitWarning;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (/SQLite/.test(typeof warning === 'string' ? warning : warning.message)) return;
    (emitWarning as (...a: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
  try {
    const mod = get.call(process, 'node:sqlite') as NodeSqlite | undefined;
    if (typeof mod?.DatabaseSync === 'function') nodeSqlite = mod;
  } catch {
    // Node 22.5–22.12 without --experimental-sqlite.
  } finally {
    process.emitWarning = emitWarning;
  }
  return nodeSqlite;
}

function openNodeSqlite(mod: NodeSqlite, file: string, timeout: number): SqliteDb {
  const db = guarded(() => new mod.DatabaseSync(file, { readOnly: true }))();
  try {
    db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(timeout))}`);
  } catch (err) {
    db.close();
    throw fromNodeSqlite(err);
  }
  return {
    driver: 'node:sqlite',
    prepare: guarded((sql: string): SqliteStatement => {
      const st = db.prepare(sql);
      if (typeof st.setReturnArrays === 'function') {
        st.setReturnArrays(true);
        return {
          get: guarded((...p: SqlParam[]) => st.get(...p) as unknown[] | undefined),
          all: guarded((...p: SqlParam[]) => st.all(...p) as unknown[][]),
        };
      }
      // Before Node 22.16 rows are objects; their columns keep the query's order (no column here
      // is named like an integer, which would reorder them).
      const values = (row: unknown): unknown[] | undefined => (row === undefined ? undefined : Object.values(row as object));
      return {
        get: guarded((...p: SqlParam[]) => values(st.get(...p))),
        all: guarded((...p: SqlParam[]) => st.all(...p).map((r) => values(r)!)),
      };
    }),
    exec: guarded((sql: string) => db.exec(sql)),
    close: () => db.close(),
  };
}

// ---- better-sqlite3 ----------------------------------------------------------------------------

interface BetterSqlite3Statement {
  raw(on: boolean): BetterSqlite3Statement;
  get(...params: SqlParam[]): unknown;
  all(...params: SqlParam[]): unknown[];
}
interface BetterSqlite3Db {
  readonly readonly: boolean;
  prepare(sql: string): BetterSqlite3Statement;
  exec(sql: string): unknown;
  close(): unknown;
}
type BetterSqlite3 = new (file: string, opts: { readonly: boolean; fileMustExist: boolean; timeout: number }) => BetterSqlite3Db;

function openBetterSqlite3(file: string, timeout: number): SqliteDb {
  let Database: BetterSqlite3;
  try {
    Database = createRequire(import.meta.url)('better-sqlite3') as BetterSqlite3;
  } catch (err) {
    throw new SqliteError(
      `no SQLite driver: Node ${process.versions.node} has no node:sqlite (Node ≥ 22.5 has) and the optional dependency better-sqlite3 is not installed (${(err as Error).message.split('\n')[0]})`,
      'ENODRIVER',
    );
  }
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout });
  if (!db.readonly) {
    db.close();
    throw new Error(`better-sqlite3 opened ${file} writable`);
  }
  return {
    driver: 'better-sqlite3',
    prepare: (sql) => {
      const st = db.prepare(sql).raw(true);
      return { get: (...p) => st.get(...p) as unknown[] | undefined, all: (...p) => st.all(...p) as unknown[][] };
    },
    exec: (sql) => void db.exec(sql),
    close: () => void db.close(),
  };
}

// ------------------------------------------------------------------------------------------------

/** The driver `openSqliteReadOnly` uses on this Node. */
export function sqliteDriverName(): SqliteDriverName {
  return loadNodeSqlite() ? 'node:sqlite' : 'better-sqlite3';
}

/**
 * Opens `file` read-only; it must exist. `timeout`: milliseconds to wait for a lock. SQLite errors
 * are SqliteErrors (or better-sqlite3's, which also carry the code name).
 */
export function openSqliteReadOnly(file: string, timeout = 5000): SqliteDb {
  const mod = loadNodeSqlite();
  return mod ? openNodeSqlite(mod, file, timeout) : openBetterSqlite3(file, timeout);
}

/** Runs `fn` in one (deferred, read) transaction: every query in it sees the same snapshot. */
export function inReadTransaction<T>(db: SqliteDb, fn: () => T): T {
  db.exec('BEGIN');
  let result: T;
  try {
    result = fn();
  } catch (err) {
    try {
      db.exec('ROLLBACK');
    } catch {
      // SQLite already ended the transaction (it does on some errors): nothing to undo.
    }
    throw err;
  }
  db.exec('COMMIT');
  return result;
}
