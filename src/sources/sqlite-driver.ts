/**
 * Opening a SQLite database read-only through better-sqlite3, cheaply.
 *
 * `closure` on a small store is start-up bound (it must keep pace with nix-store -qR's ~70 ms),
 * and better-sqlite3's JavaScript layer (thirteen CommonJS modules, and the `bindings` package's
 * search for the addon) costs more to load than the whole query: ~300 page faults and 10–40 ms on
 * the benchmark VM, against ~85 faults for the addon alone. So for the better-sqlite3 release
 * line whose addon interface this was written against (12.x: `new addon.Database(filename,
 * filenameGiven, anonymous, readonly, fileMustExist, timeout, verbose, buffer)`, statements from
 * `prepare(sql, database, pragmaMode)`), the addon is used directly; the connection is checked to
 * really be read-only, and anything unexpected falls back to the public API.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

const require = createRequire(import.meta.url);

/** The part of better-sqlite3's Database that nix-seal uses. */
export interface SqliteDb {
  prepare(sql: string): BetterSqlite3.Statement;
  exec(sql: string): unknown;
  close(): unknown;
  readonly inTransaction: boolean;
}

interface Addon {
  Database: new (
    filename: string,
    filenameGiven: string,
    anonymous: boolean,
    readonly: boolean,
    fileMustExist: boolean,
    timeout: number,
    verbose: null,
    buffer: null,
  ) => CppDb;
  setErrorConstructor(ctor: unknown): void;
  isInitialized?: boolean;
}

interface CppDb {
  prepare(sql: string, database: object, pragmaMode: boolean): BetterSqlite3.Statement;
  exec(sql: string): void;
  close(): void;
  readonly open: boolean;
  readonly readonly: boolean;
  readonly inTransaction: boolean;
}

/** The addon, when the installed better-sqlite3 is a release whose interface is known; else null. */
let addon: Addon | null | undefined;
function directAddon(): Addon | null {
  if (addon !== undefined) return addon;
  addon = null;
  try {
    const { version } = require('better-sqlite3/package.json') as { version: string };
    if (!/^12\./.test(version)) return addon;
    const a = require('better-sqlite3/build/Release/better_sqlite3.node') as Addon;
    if (typeof a.Database !== 'function' || typeof a.setErrorConstructor !== 'function') return addon;
    if (!a.isInitialized) {
      // better-sqlite3's own error class, so errors look the same whichever way the database opened.
      a.setErrorConstructor(require('better-sqlite3/lib/sqlite-error'));
      a.isInitialized = true;
    }
    addon = a;
  } catch {
    addon = null;
  }
  return addon;
}

/** Opens `file` read-only; it must exist. SQLite errors carry better-sqlite3's `code`. */
export function openSqliteReadOnly(file: string, timeout = 5000): SqliteDb {
  const a = directAddon();
  let cpp: CppDb | undefined;
  try {
    cpp = a ? new a.Database(file, file, false, true, true, timeout, null, null) : undefined;
  } catch (err) {
    // A SQLite error (it has a code) is the file's; anything else, an interface we do not know.
    if (typeof (err as { code?: unknown }).code === 'string') throw err;
    cpp = undefined;
  }
  if (cpp) {
    if (cpp.open && cpp.readonly) {
      const db: SqliteDb = {
        prepare: (sql) => cpp.prepare(sql, db, false),
        exec: (sql) => cpp.exec(sql),
        close: () => cpp.close(),
        get inTransaction() {
          return cpp.inTransaction;
        },
      };
      return db;
    }
    cpp.close();
  }
  const Database = require('better-sqlite3') as typeof BetterSqlite3;
  const db = new Database(file, { readonly: true, fileMustExist: true, timeout });
  if (!db.readonly) {
    db.close();
    throw new Error(`better-sqlite3 opened ${file} writable`);
  }
  return db;
}

/** Runs `fn` in one (deferred, read) transaction: every query in it sees the same snapshot. */
export function inReadTransaction<T>(db: SqliteDb, fn: () => T): T {
  db.exec('BEGIN');
  try {
    const result = fn();
    db.exec('COMMIT');
    return result;
  } catch (err) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw err;
  }
}
