import * as fs from 'node:fs';
import { errnoCode, NixSealError } from '../errors.js';
import { byteOrder, type RefGraph } from '../graph/ref-graph.js';
import type { StorePath } from '../store/store-path.js';
import type { GraphSource, LoadOptions } from './source.js';
import { inReadTransaction, openSqliteReadOnly, type SqliteDb } from './sqlite-driver.js';

type Db = SqliteDb;

/*
 * How the closure is read. Measured on the 200,000-path benchmark database (bench/), on machines
 * where the first touch of a fresh page and a pread() both cost microseconds: memory touched is
 * time, and most of what follows is about touching little (the figures: BENCHMARKS.md, "Figures
 * behind code choices", sources/local-db.ts).
 *
 * - Rows cross into JavaScript aggregated (group_concat): the drivers cost about a microsecond
 *   per row read, and a recursive CTE pays for SQLite's UNION bookkeeping (more than the walk
 *   below takes to read the paths and their edges).
 * - An edge is one integer, (referrer << bits) | reference: one aggregate step per row and no string
 *   concatenation.
 * - Aggregates are read in small batches, as TEXT: a small string lives and dies in V8's young
 *   generation, whose pages are reused, where a BLOB becomes a Buffer in fresh malloc'd memory
 *   every time.
 * - No mmap, and a small page cache: pages are read with pread() into a cache that is reused.
 *   Mapping the file faults in every page touched, and a large cache is fresh memory too; both
 *   measured slower end to end.
 * - Id lists go to SQLite as JSON text written into one reused Buffer (not Array#join).
 * - Paths are slices of their batch's text, which is over 128 kB and so allocated once, directly in
 *   V8's large-object space, instead of being copied through the young generation; sorting them
 *   uses packed numeric keys, not a string comparator.
 * - Typed arrays are indexed unchecked (`!`): every loop here runs per row or per edge of the
 *   closure being loaded, where the checked accessors (checked-index.ts) measurably cost. The ids
 *   come from the database's own keys and from arrays sized here; buildRefGraph checks every edge
 *   it is handed.
 */

const PAGE_CACHE_KIB = 256;
const ROOT_IDS_SQL = `SELECT id, path FROM ValidPaths WHERE path IN (SELECT value FROM json_each(?))`;
const META_SQL = `SELECT (SELECT max(id) FROM ValidPaths), (SELECT max(rowid) FROM Refs)`;
/** One value per edge: packed when ids are small enough for a double, else "referrer,reference". */
const edgeExpr = (bits: number): string => (bits > 0 ? `(referrer << ${bits}) | reference` : `referrer || ',' || reference`);
const EDGES_OF_SQL = (bits: number): string =>
  `SELECT group_concat(${edgeExpr(bits)}) FROM json_each(CAST(? AS TEXT)) j JOIN Refs r ON r.referrer = j.value`;
const EDGES_IN_SQL = (bits: number): string => `SELECT group_concat(${edgeExpr(bits)}) FROM Refs WHERE referrer >= ? AND referrer < ?`;
const nodeMeta = (hashes: boolean): string =>
  `v.id || ' ' || ifnull(v.narSize, '')` + (hashes ? ` || ' ' || v.hash || ' ' || ifnull(v.deriver, '')` : '');
/** Two aggregates over the same rows, so in the same order: the paths, and what else is needed. */
const NODES_OF_SQL = (hashes: boolean): string =>
  `SELECT group_concat(v.path, char(10)), group_concat(${nodeMeta(hashes)}, char(10)) ` +
  `FROM json_each(CAST(? AS TEXT)) j JOIN ValidPaths v ON v.id = j.value`;

/**
 * The walk goes level by level through the referrer index while that is cheaper than one scan of
 * the whole Refs table: a lookup costs about as much as reading a dozen edges in a scan. Before
 * each level it compares the walk's lookups so far plus that level's with a full scan's cost.
 */
const LOOKUP_COST_IN_EDGES = 12;
/** Edges per query of the full scan (~15 kB of text). */
const SCAN_BATCH_EDGES = 1280;
/** Ids per query of the walk (~15 kB of text). */
const WALK_BATCH_IDS = 256;
/** Ids per query of the node rows (~350 kB of paths: a large object, see above). */
const NODE_BATCH_IDS = 4096;

/** Why the database cannot be used, in words, from a SQLite or system error. */
function describeDbError(err: unknown): string {
  const e = err as { code?: string; message?: string };
  switch (e.code) {
    case 'SQLITE_CANTOPEN':
      return 'cannot open it (missing, or no permission)';
    case 'SQLITE_READONLY_DIRECTORY':
    case 'SQLITE_READONLY':
      return 'cannot open it read-only: its directory is not writable and its WAL index (db.sqlite-shm) is missing (ask the daemon: --store daemon)';
    case 'SQLITE_NOTADB':
      return 'the file is not a SQLite database';
    case 'SQLITE_CORRUPT':
      return 'the database is corrupt';
    case 'SQLITE_BUSY':
    case 'SQLITE_LOCKED':
      return 'the database is locked';
    case 'ENODRIVER':
      return e.message ?? 'no SQLite driver';
    case 'SQLITE_ERROR':
      return e.message ?? 'SQLite error';
    default:
      // Extended codes (SQLITE_BUSY_RECOVERY, SQLITE_CORRUPT_VTAB…) as their primary code.
      if (e.code && /^SQLITE_[A-Z]+_/.test(e.code)) return describeDbError({ ...e, code: e.code.replace(/^(SQLITE_[A-Z]+)_.*/, '$1') });
      return e.message ?? String(err);
  }
}

/**
 * Opens the database read-only. A WAL database in a directory this user cannot write (no -shm to
 * create) cannot be opened this way; Nix itself then opens it as `file:…?immutable=1`, but the
 * drivers are given file names, not URIs, so such a store is reported (and the default store
 * falls back to the nix command, see open-source.ts).
 */
function openReadOnly(dbPath: string, busyTimeoutMs: number, stateAssumed?: string): { db: Db; mode: string } {
  // `reason` is the system or SQLite code: open-source.ts decides its fallback on it.
  const fail = (why: string, reason: string | undefined, cause?: unknown, hint?: string): never => {
    throw new NixSealError('EDB', `Cannot read Nix database ${dbPath}: ${why}`, {
      path: dbPath,
      cause,
      ...(reason !== undefined ? { reason } : {}),
      ...(hint !== undefined ? { hint } : {}),
    });
  };
  try {
    fs.accessSync(dbPath, fs.constants.R_OK);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT') {
      fail(
        stateAssumed ? `no such file (${stateAssumed})` : 'no such file (is this a Nix store?)',
        code,
        err,
        "name the state dir with --store 'local?store=S&state=T' (T holds db/db.sqlite), or the whole tree with --store 'local?root=DIR'",
      );
    }
    fail('permission denied', code, err, 'ask the daemon instead: --store daemon');
  }
  // Opening succeeds lazily; touching the schema reports corruption or a locked file here.
  const probe = (db: Db): Db => {
    db.exec(`PRAGMA cache_size = -${PAGE_CACHE_KIB}`);
    const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'ValidPaths'").get();
    if (table === undefined) fail('not a Nix database (it has no ValidPaths table)', 'NOTNIXDB');
    db.prepare('SELECT id FROM ValidPaths LIMIT 1').get();
    return db;
  };
  try {
    return { db: probe(openSqliteReadOnly(dbPath, busyTimeoutMs)), mode: 'read-only' };
  } catch (err) {
    if (err instanceof NixSealError) throw err;
    const code = (err as { code?: string }).code;
    return fail(describeDbError(err), code, err);
  }
}

/** JSON arrays of ids, written into one reused buffer (bound as a BLOB, read as TEXT by json_each). */
class IdList {
  private buf = Buffer.allocUnsafeSlow(0);
  json(ids: Uint32Array, from: number, to: number): Buffer {
    const need = (to - from) * 11 + 2;
    if (this.buf.length < need) this.buf = Buffer.allocUnsafeSlow(Math.max(need, 4096));
    const buf = this.buf;
    let k = 0;
    buf[k++] = 91; // [
    for (let i = from; i < to; i++) {
      if (i > from) buf[k++] = 44; // ,
      let v = ids[i]!;
      const start = k;
      do {
        buf[k++] = 48 + (v % 10);
        v = Math.floor(v / 10);
      } while (v > 0);
      for (let x = start, y = k - 1; x < y; x++, y--) {
        const c = buf[x]!;
        buf[x] = buf[y]!;
        buf[y] = c;
      }
    }
    buf[k++] = 93; // ]
    return buf.subarray(0, k);
  }
}

/** One batch's edges, parsed from group_concat text into reused arrays. */
class EdgeBatch {
  from = new Uint32Array(4096);
  to = new Uint32Array(4096);
  n = 0;

  /** Comma-separated values, each `(a << bits) | b`, or (bits = 0) a and b in turn. */
  read(text: string | null, bits: number): void {
    this.n = 0;
    if (!text) return;
    // At least two characters an edge ("1,").
    const most = (text.length >> 1) + 1;
    if (most > this.to.length) (this.from = new Uint32Array(most)), (this.to = new Uint32Array(most));
    const { from, to } = this;
    const scale = 2 ** bits;
    let k = 0;
    let v = -0; // a double from the start: packed edges pass 2^31
    let pending = -1;
    const len = text.length;
    for (let i = 0; i <= len; i++) {
      const c = i < len ? text.charCodeAt(i) : 44;
      if (c !== 44) {
        v = v * 10 + (c - 48);
        continue;
      }
      if (bits > 0) {
        const a = Math.floor(v / scale);
        from[k] = a;
        to[k++] = v - a * scale;
      } else if (pending < 0) {
        pending = v;
      } else {
        from[k] = pending;
        to[k++] = v;
        pending = -1;
      }
      v = -0;
    }
    this.n = k;
  }
}

/**
 * Edges grouped by referrer key (a member number, or a database id): the references of key `r`
 * are `to[first[r] .. first[r] + count[r]]`. Queries return each referrer's rows together; should
 * one come back split, `add` notices and `regroup` sorts the edges by referrer. (Exported for tests.)
 */
export class EdgeTable {
  to: Uint32Array;
  first: Uint32Array;
  count: Uint32Array;
  n = 0;
  private prev = -1;
  private from: Uint32Array | undefined;

  constructor(keys: number, capacity: number) {
    this.to = new Uint32Array(Math.max(16, capacity));
    this.first = new Uint32Array(Math.max(16, keys));
    this.count = new Uint32Array(Math.max(16, keys));
  }

  /** Room for keys below `keys` and `edges` more edges. */
  reserve(keys: number, edges: number): void {
    if (keys > this.first.length) {
      const cap = Math.max(keys, this.first.length * 2);
      this.first = grow(this.first, cap, this.first.length);
      this.count = grow(this.count, cap, this.count.length);
    }
    if (this.n + edges > this.to.length) {
      const cap = Math.max(this.n + edges, this.to.length * 2);
      this.to = grow(this.to, cap, this.n);
      if (this.from) this.from = grow(this.from, cap, this.n);
    }
  }

  /** Ends a batch: the next edge starts a new run even if its referrer is the last one's. */
  endBatch(): void {
    this.prev = -1;
  }

  add(a: number, b: number): void {
    const k = this.n++;
    if (a !== this.prev) {
      if (this.count[a] !== 0 && !this.from) this.keepReferrers();
      this.first[a] = k;
      this.prev = a;
    }
    if (this.from) this.from[k] = a;
    this.count[a]!++;
    this.to[k] = b;
  }

  /** A referrer's rows came back split: from now on remember each edge's referrer. */
  private keepReferrers(): void {
    const from = new Uint32Array(this.to.length);
    for (let r = 0; r < this.count.length; r++) {
      for (let j = 0, c = this.count[r]!, f = this.first[r]!; j < c; j++) from[f + j] = r;
    }
    this.from = from;
  }

  /** Counting sort by referrer, when `add` found split rows. */
  regroup(): void {
    const from = this.from;
    if (!from) return;
    const { first, count, n } = this;
    let w = 0;
    for (let r = 0; r < count.length; r++) (first[r] = w), (w += count[r]!);
    const fill = first.slice();
    const to = new Uint32Array(Math.max(16, n));
    for (let e = 0; e < n; e++) to[fill[from[e]!]!++] = this.to[e]!;
    this.to = to;
    this.from = undefined;
  }
}

function grow(a: Uint32Array, cap: number, keep: number): Uint32Array {
  const b = new Uint32Array(cap);
  b.set(a.subarray(0, keep));
  return b;
}

/** A row id of ValidPaths: the database's id space. */
type DbId = number & { readonly __dbId: never };
/** A path's number in one walk (0… in the order found), an index into `Members`' arrays. */
type MemberNo = number & { readonly __memberNo: never };
/** MemberNumbers.get of an id not (yet) numbered. */
const NOT_MEMBER = -1 as MemberNo;

/**
 * Database id → member number. An open-addressing hash table while the members are few: an array
 * over all ids would be touched one scattered page per member, and a fresh page costs more than
 * many lookups. Past 1/32 of the ids the array is cheaper, and it replaces the table. (Typed arrays
 * throughout, with fields that keep their types, so optimized code never deoptimizes on the switch.)
 */
class MemberNumbers {
  size = 0;
  private dense = new Int32Array(0); // member number + 1, by id
  private isDense = false;
  private keys = new Int32Array(256).fill(-1);
  private values = new Int32Array(256);
  private shift = 24; // 32 - log2(capacity)
  constructor(private readonly maxId: number) {}

  get(id: DbId): MemberNo {
    if (this.isDense) return ((this.dense[id] ?? 0) - 1) as MemberNo;
    const { keys } = this;
    const mask = keys.length - 1;
    for (let h = Math.imul(id, 0x9e3779b1) >>> this.shift; ; h = (h + 1) & mask) {
      const k = keys[h]!;
      if (k === id) return this.values[h]! as MemberNo;
      if (k === -1) return NOT_MEMBER;
    }
  }

  /** Numbers `id` (not yet numbered) as `n`. */
  set(id: DbId, n: MemberNo): void {
    this.size++;
    if (this.isDense) {
      this.dense[id] = n + 1;
      return;
    }
    if (this.size > (this.maxId >> 5) + 256) {
      const dense = new Int32Array(this.maxId + 1);
      const { keys, values } = this;
      for (let h = 0; h < keys.length; h++) if (keys[h]! >= 0) dense[keys[h]!] = values[h]! + 1;
      dense[id] = n + 1;
      this.dense = dense;
      this.isDense = true;
      this.keys = this.values = new Int32Array(0);
      return;
    }
    if (this.size * 2 > this.keys.length) this.rehash();
    this.insert(id, n);
  }

  private insert(id: number, n: number): void {
    const { keys } = this;
    const mask = keys.length - 1;
    let h = Math.imul(id, 0x9e3779b1) >>> this.shift;
    while (keys[h] !== -1) h = (h + 1) & mask;
    keys[h] = id;
    this.values[h] = n;
  }

  private rehash(): void {
    const { keys, values } = this;
    this.keys = new Int32Array(keys.length * 2).fill(-1);
    this.values = new Int32Array(keys.length * 2);
    this.shift--;
    for (let h = 0; h < keys.length; h++) if (keys[h]! >= 0) this.insert(keys[h]!, values[h]!);
  }
}

/** The walk's state: members numbered as found, and their edges by member number. */
class Walk {
  m = 0;
  ids: Uint32Array = new Uint32Array(1024);
  readonly number: MemberNumbers;
  readonly edges = new EdgeTable(1024, 4096);
  constructor(maxId: number) {
    this.number = new MemberNumbers(maxId);
  }

  add(id: DbId): MemberNo {
    if (this.m === this.ids.length) this.ids = grow(this.ids, this.m * 2, this.m);
    this.number.set(id, this.m as MemberNo);
    this.ids[this.m] = id;
    return this.m++ as MemberNo;
  }

  /** One batch of edges: number the new references, record the edges. */
  absorb(batch: EdgeBatch): void {
    const { number, edges } = this;
    edges.reserve(this.m + batch.n, batch.n);
    let prevA = -1;
    let from = NOT_MEMBER;
    for (let e = 0; e < batch.n; e++) {
      const a = batch.from[e]! as DbId;
      if (a !== prevA) (prevA = a), (from = number.get(a));
      const b = batch.to[e]! as DbId;
      let to = number.get(b);
      if (to < 0) to = this.add(b);
      edges.add(from, to);
    }
    edges.endBatch();
  }
}

/**
 * The closure: members numbered 0… in the order found, their database ids, and their references:
 * `to[first[k] .. first[k] + count[k]]`, member numbers, or (`byId`) `first` and `count` indexed by
 * database id and `to` holding database ids.
 */
interface Members {
  m: number;
  ids: Uint32Array;
  number: MemberNumbers;
  /** Indexed by member number, or by database id when `byId` (the scan's table of all edges). */
  first: Uint32Array;
  count: Uint32Array;
  to: Uint32Array;
  edgeCount: number;
  byId: boolean;
}

/** Breadth-first from the roots over a table of all edges by database id, numbering members as found. */
function closureOf(all: EdgeTable, rootIds: readonly DbId[], maxId: number): Members {
  const number = new MemberNumbers(maxId);
  const ids = new Uint32Array(maxId + 1);
  let m = 0;
  for (const id of rootIds) if (number.get(id) < 0) (number.set(id, m as MemberNo), (ids[m++] = id));
  const { first, count, to } = all;
  let total = 0;
  for (let k = 0; k < m; k++) {
    const v = ids[k]!;
    total += count[v]!;
    for (let j = first[v]!, end = j + count[v]!; j < end; j++) {
      const w = to[j]! as DbId;
      if (number.get(w) < 0) (number.set(w, m as MemberNo), (ids[m++] = w));
    }
  }
  return { m, ids, number, first, count, to, edgeCount: total, byId: true };
}

export interface LocalStoreLocation {
  storeDir: string;
  realStoreDir: string;
  stateDir: string;
  /** Where stateDir came from when the user did not name it (for the error's hint). */
  stateAssumed?: string;
}

/** How loadClosure reads the edges; for tests. */
export interface LocalDbTuning {
  /** 'auto' (default) chooses per level; 'walk' never scans; 'scan' scans Refs at once. */
  edges?: 'auto' | 'walk' | 'scan';
  /** Edges per query of a full scan. */
  scanBatch?: number;
  /** Ids per query of the walk. */
  walkBatch?: number;
  /** Ids per query of the node rows. */
  nodeBatch?: number;
  /** How long to wait for a locked database (default 5000 ms). */
  busyTimeoutMs?: number;
}

/**
 * The local store's SQLite database, opened read-only. All queries of a load run inside one read
 * transaction: in WAL mode that pins a snapshot, so paths Nix registers meanwhile cannot make the
 * nodes and the edges disagree.
 */
export class LocalDbSource implements GraphSource {
  readonly description: string;
  readonly storeDir: string;
  readonly realStoreDir: string;
  private readonly db: Db;
  /** How the last load read the edges (for tests and the benchmark notes). */
  lastLoad: { mode: 'walk' | 'scan'; levels: number; lookups: number; edges: number } | undefined;

  constructor(
    loc: LocalStoreLocation,
    readonly dbPath = `${loc.stateDir}/db/db.sqlite`,
    private readonly tuning: LocalDbTuning = {},
  ) {
    this.storeDir = loc.storeDir;
    this.realStoreDir = loc.realStoreDir;
    const opened = openReadOnly(this.dbPath, tuning.busyTimeoutMs ?? 5000, loc.stateAssumed);
    this.db = opened.db;
    this.description = `database ${this.dbPath} (${opened.mode}, ${opened.db.driver})`;
  }

  loadClosure(roots: readonly StorePath[], opts: LoadOptions = {}): RefGraph {
    const hashes = opts.hashes ?? false;
    try {
      // One read transaction: in WAL mode every query below sees the same snapshot.
      return inReadTransaction(this.db, () => this.load(roots, hashes));
    } catch (err) {
      if (err instanceof NixSealError) throw err;
      throw new NixSealError('EDB', `Cannot read Nix database ${this.dbPath}: ${describeDbError(err)}`, {
        path: this.dbPath,
        cause: err,
      });
    }
  }

  private load(roots: readonly StorePath[], hashes: boolean): RefGraph {
    const db = this.db;
    const rootRows = db.prepare(ROOT_IDS_SQL).all(JSON.stringify(roots)) as [number, string][];
    if (rootRows.length < new Set(roots).size) {
      const found = new Set(rootRows.map((r) => r[1]));
      for (const r of roots) {
        if (!found.has(r)) throw new NixSealError('EINVALIDPATH', `Cannot use ${r}: path is not valid in ${this.description}`, { path: r });
      }
    }
    const [maxIdOrNull, maxRefRowid] = db.prepare(META_SQL).get() as [number | null, number | null];
    const maxId = maxIdOrNull ?? 0;
    // Refs rowids only grow, so the largest bounds the number of edges from above.
    const totalEdges = maxRefRowid ?? 0;
    const idBits = 32 - Math.clz32(maxId);
    // Packed edges must stay exact in a double (53 bits).
    const bits = 2 * idBits <= 53 ? idBits : 0;
    const rootIds = rootRows.map((r) => r[0] as DbId);
    const mode = this.tuning.edges ?? 'auto';
    const ids = new IdList();
    const walked = mode === 'scan' ? undefined : this.walk(rootIds, maxId, totalEdges, bits, mode === 'auto', ids);
    const members = walked ?? this.scan(rootIds, maxId, totalEdges, bits);
    return this.build(members, this.sqlRows(members, hashes, ids));
  }

  /**
   * Level-synchronous walk: per level, aggregated queries for the new members' references, in
   * batches of ids. Gives up (undefined) when a full scan would be cheaper than the walk so far and
   * its next level.
   */
  private walk(rootIds: readonly DbId[], maxId: number, totalEdges: number, bits: number, canGiveUp: boolean, list: IdList): Members | undefined {
    const edgesOf = this.db.prepare(EDGES_OF_SQL(bits));
    const batchSize = this.tuning.walkBatch ?? WALK_BATCH_IDS;
    const w = new Walk(maxId);
    for (const id of rootIds) if (w.number.get(id) < 0) w.add(id);
    const batch = new EdgeBatch();
    let frontierIds = new Uint32Array(1024);
    let levelStart = 0;
    let lookups = 0;
    let levels = 0;
    while (levelStart < w.m) {
      const levelEnd = w.m;
      const width = levelEnd - levelStart;
      if (canGiveUp && (lookups + width) * LOOKUP_COST_IN_EDGES + w.edges.n > totalEdges) return undefined;
      // In id order the lookups walk the index forwards.
      if (frontierIds.length < width) frontierIds = new Uint32Array(Math.max(width, frontierIds.length * 2));
      const frontier = frontierIds.subarray(0, width);
      frontier.set(w.ids.subarray(levelStart, levelEnd));
      frontier.sort();
      for (let i = 0; i < width; i += batchSize) {
        batch.read(edgesOf.get(list.json(frontier, i, Math.min(i + batchSize, width)))![0] as string | null, bits);
        w.absorb(batch);
      }
      lookups += width;
      levels++;
      levelStart = levelEnd;
    }
    const { m, ids, number, edges } = w;
    edges.reserve(m, 0);
    edges.regroup();
    this.lastLoad = { mode: 'walk', levels, lookups, edges: edges.n };
    return { m, ids, number, first: edges.first, count: edges.count, to: edges.to, edgeCount: edges.n, byId: false };
  }

  /** One scan of the whole Refs table, in batches of referrer ids, then the closure's walk in memory. */
  private scan(rootIds: readonly DbId[], maxId: number, totalEdges: number, bits: number): Members {
    const all = new EdgeTable(maxId + 1, totalEdges + 1);
    const batch = new EdgeBatch();
    const edgesIn = this.db.prepare(EDGES_IN_SQL(bits));
    const step = Math.max(1, Math.floor(((this.tuning.scanBatch ?? SCAN_BATCH_EDGES) * (maxId + 1)) / Math.max(1, totalEdges)));
    for (let lo = 0; lo <= maxId; lo += step) {
      batch.read(edgesIn.get(lo, lo + step)![0] as string | null, bits);
      all.reserve(0, batch.n);
      for (let e = 0; e < batch.n; e++) all.add(batch.from[e]!, batch.to[e]!);
      all.endBatch();
    }
    all.regroup();
    this.lastLoad = { mode: 'scan', levels: 0, lookups: 0, edges: all.n };
    return closureOf(all, rootIds, maxId);
  }

  /** The members' rows through SQL, in batches of ids. */
  private sqlRows({ m, ids }: Members, hashes: boolean, list: IdList): NodeRows {
    const rows = new NodeRows(m, hashes);
    const byDbId = ids.slice(0, m).sort();
    const nodesOf = this.db.prepare(NODES_OF_SQL(hashes));
    const batchSize = this.tuning.nodeBatch ?? NODE_BATCH_IDS;
    for (let i = 0; i < m; i += batchSize) {
      const [paths, meta] = nodesOf.get(list.json(byDbId, i, Math.min(i + batchSize, m))) as [string | null, string | null];
      rows.parse(paths ?? '', meta ?? '');
    }
    if (rows.n !== m) throw new NixSealError('EDB', `Cannot read Nix database ${this.dbPath}: ${m - rows.n} paths vanished while reading`);
    return rows;
  }

  /** The graph: ids in path order, references as CSR. */
  private build({ m, number, first, count, to, edgeCount, byId }: Members, rows: NodeRows): RefGraph {
    const order = byteOrder(rows.path, `${this.storeDir}/`);
    // Member number → graph id (rank in path order).
    const rank = new Uint32Array(m);
    for (let r = 0; r < m; r++) rank[number.get(rows.id[order[r]!]! as DbId)] = r;
    const refStart = new Uint32Array(m + 1);
    const refs = new Uint32Array(edgeCount);
    let w = 0;
    for (let r = 0; r < m; r++) {
      const id = rows.id[order[r]!]! as DbId;
      const key = byId ? id : number.get(id);
      const s = first[key]!;
      const c = count[key]!;
      refStart[r] = w;
      const rowBegin = w;
      if (c > 16) {
        for (let j = s; j < s + c; j++) refs[w++] = rank[byId ? number.get(to[j]! as DbId) : to[j]!]!;
        refs.subarray(rowBegin, w).sort();
      } else {
        for (let j = s; j < s + c; j++) {
          // Insertion into the sorted row: most rows are a handful of references.
          const x = rank[byId ? number.get(to[j]! as DbId) : to[j]!]!;
          let p = w++;
          while (p > rowBegin && refs[p - 1]! > x) {
            refs[p] = refs[p - 1]!;
            p--;
          }
          refs[p] = x;
        }
      }
      // Refs' primary key makes (referrer, reference) unique; drop repeats all the same.
      let u = rowBegin;
      for (let p = rowBegin; p < w; p++) if (p === rowBegin || refs[p] !== refs[p - 1]) refs[u++] = refs[p]!;
      w = u;
    }
    refStart[m] = w;
    // The rows' arrays become the graph's, put in path order in place (no second copy of each).
    permute(order, rows.path, rows.size, rows.hash, rows.deriver);
    return {
      storeDir: this.storeDir,
      paths: rows.path,
      narSize: rows.size,
      narHash: rows.hash ?? new Array<string | undefined>(m),
      deriver: rows.deriver ?? new Array<string | undefined>(m),
      refStart,
      refs: w === refs.length ? refs : refs.slice(0, w),
    };
  }

  close(): void {
    this.db.close();
  }
}

/** Rearranges the arrays so that element i becomes the one at `order[i]`, following cycles. */
function permute(order: Uint32Array, ...arrays: ({ [i: number]: unknown } | undefined)[]): void {
  const done = new Uint8Array(order.length);
  const live = arrays.filter((a): a is { [i: number]: unknown } => a !== undefined);
  for (let start = 0; start < order.length; start++) {
    if (done[start] || order[start] === start) continue;
    for (const a of live) {
      const first = a[start];
      let j = start;
      for (;;) {
        const k = order[j]!;
        if (k === start) {
          a[j] = first;
          break;
        }
        a[j] = a[k];
        j = k;
      }
    }
    for (let j = start; !done[j]; j = order[j]!) done[j] = 1;
  }
}

/**
 * The members' rows, parsed batch by batch from two texts: paths one a line, and "id size[ hash
 * deriver]" lines in the same order.
 */
class NodeRows {
  n = 0;
  readonly id: Uint32Array;
  readonly size: Float64Array;
  readonly path: StorePath[];
  readonly hash: (string | undefined)[] | undefined;
  readonly deriver: (string | undefined)[] | undefined;

  constructor(
    private readonly capacity: number,
    hashes: boolean,
  ) {
    this.id = new Uint32Array(capacity);
    this.size = new Float64Array(capacity);
    this.path = new Array<StorePath>(capacity);
    this.hash = hashes ? new Array<string | undefined>(capacity) : undefined;
    this.deriver = hashes ? new Array<string | undefined>(capacity) : undefined;
  }

  /** One row: its path is `text[start, end)` (sliced, not copied). */
  push(id: number, size: number, text: string, start: number, end: number, hash?: string, deriver?: string): void {
    const n = this.n;
    if (n >= this.capacity) throw new NixSealError('EDB', 'Cannot read the Nix database: more rows than members');
    // A slice shares the batch's string: no copy of the characters.
    this.path[n] = text.slice(start, end) as StorePath;
    this.id[n] = id;
    this.size[n] = size;
    if (this.hash) {
      this.hash[n] = hash;
      this.deriver![n] = deriver;
    }
    this.n = n + 1;
  }

  /** One batch of SQL rows: the paths one a line, and "id size[ hash deriver]" lines in the same order. */
  parse(paths: string, meta: string): void {
    const len = paths.length;
    const mlen = meta.length;
    let pos = 0;
    let mpos = 0;
    while (pos < len) {
      let end = paths.indexOf('\n', pos);
      if (end < 0) end = len;
      let id = 0;
      let c: number;
      while ((c = meta.charCodeAt(mpos++)) !== 32) id = id * 10 + (c - 48);
      let size = -0; // a double from the start, as sizes pass 2^31
      let digits = 0;
      while (mpos < mlen && (c = meta.charCodeAt(mpos)) >= 48 && c <= 57) (size = size * 10 + (c - 48)), digits++, mpos++;
      let hash: string | undefined;
      let deriver: string | undefined;
      if (this.hash) {
        const hs = ++mpos;
        mpos = meta.indexOf(' ', hs);
        hash = meta.slice(hs, mpos);
        const ds = ++mpos;
        let de = meta.indexOf('\n', ds);
        if (de < 0) de = meta.length;
        deriver = de > ds ? meta.slice(ds, de) : undefined;
        mpos = de;
      }
      mpos++; // the newline
      this.push(id, digits > 0 ? size : NaN, paths, pos, end, hash, deriver);
      pos = end + 1;
    }
  }
}
