import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { NixSealError } from '../errors.js';
import { buildRefGraph, byteOrder, type RefGraph } from '../graph/ref-graph.js';
import type { StorePath } from '../store/store-path.js';
import { EdgeTable, LocalDbSource, type LocalDbTuning } from './local-db.js';
import { sqliteDriverName } from './sqlite-driver.js';
import { prng } from '../../test/support/prng.js';

/** A writable connection, through the same driver nix-seal reads with on this Node (fixtures only). */
interface WritableDb {
  exec(sql: string): unknown;
  prepare(sql: string): { run(...params: unknown[]): unknown };
  close(): unknown;
}
function openWritable(file: string): WritableDb {
  if (sqliteDriverName() === 'node:sqlite') {
    const { DatabaseSync } = process.getBuiltinModule('node:sqlite') as unknown as { DatabaseSync: new (f: string) => WritableDb };
    return new DatabaseSync(file);
  }
  const Database = createRequire(import.meta.url)('better-sqlite3') as new (f: string) => WritableDb;
  return new Database(file);
}

const dirs: string[] = [];
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

const SCHEMA = `
CREATE TABLE ValidPaths (id integer primary key autoincrement not null, path text unique not null, hash text not null,
  registrationTime integer not null, deriver text, narSize integer, ultimate integer, sigs text, ca text);
CREATE TABLE Refs (referrer integer not null, reference integer not null, primary key (referrer, reference),
  foreign key (referrer) references ValidPaths(id) on delete cascade, foreign key (reference) references ValidPaths(id) on delete restrict);
CREATE INDEX IndexReferrer on Refs(referrer);
CREATE INDEX IndexReference on Refs(reference);
`;

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';

const rng = prng;

interface Fixture {
  dir: string;
  storeDir: string;
  paths: string[];
  /** Database id of each path. */
  ids: number[];
  size: (number | null)[];
  hash: string[];
  deriver: (string | null)[];
  refs: number[][];
}

/**
 * A Nix-schema database: `n` paths in a DAG (path i refers to lower ones and sometimes itself),
 * ids starting at `firstId` with gaps, hashes that often share their first characters.
 */
function makeDb(seed: number, n: number, firstId: number, storeDir = '/nix/store'): Fixture {
  const rand = rng(seed);
  const dir = mkdtempSync(join(tmpdir(), 'nix-seal-localdb-'));
  dirs.push(dir);
  const pick = (k: number): string => Array.from({ length: k }, () => NIX32[Math.floor(rand() * 32)]).join('');
  const prefixes = Array.from({ length: 4 }, () => pick(10));
  const f: Fixture = { dir, storeDir, paths: [], ids: [], size: [], hash: [], deriver: [], refs: [] };
  let id = firstId;
  for (let i = 0; i < n; i++) {
    // A third share one of a few 10-character hash prefixes: ties for the packed sort keys.
    const hashPart = rand() < 0.3 ? prefixes[i % 4]! + pick(22) : pick(32);
    f.paths.push(`${storeDir}/${hashPart}-p${i}`);
    f.ids.push(id);
    id += 1 + (rand() < 0.2 ? Math.floor(rand() * 50) : 0);
    f.size.push(rand() < 0.05 ? null : rand() < 0.05 ? 2 ** 33 + i : Math.floor(rand() * 1e6));
    f.hash.push(`sha256:${pick(52)}`);
    f.deriver.push(rand() < 0.5 ? `${storeDir}/${pick(32)}-p${i}.drv` : null);
    const r = new Set<number>();
    if (i > 0) for (let k = Math.floor(rand() * 6); k > 0; k--) r.add(Math.floor(rand() * i));
    if (rand() < 0.1) r.add(i);
    f.refs.push([...r]);
  }
  const db = openWritable(join(dir, 'db.sqlite'));
  db.exec(SCHEMA);
  const insPath = db.prepare('INSERT INTO ValidPaths (id, path, hash, registrationTime, deriver, narSize) VALUES (?, ?, ?, 1, ?, ?)');
  const insRef = db.prepare('INSERT INTO Refs (referrer, reference) VALUES (?, ?)');
  db.exec('BEGIN');
  // Registered in a shuffled order, as rowids of Refs need not follow referrers.
  const order = f.paths.map((_, i) => i).sort(() => rand() - 0.5);
  for (const i of order) insPath.run(f.ids[i], f.paths[i], f.hash[i], f.deriver[i], f.size[i]);
  for (const i of order) for (const j of f.refs[i]!) insRef.run(f.ids[i], f.ids[j]);
  db.exec('COMMIT');
  db.close();
  return f;
}

/** The closure of `roots` (fixture indices) as buildRefGraph makes it: the definition to match. */
function expected(f: Fixture, roots: number[], hashes: boolean): RefGraph {
  const seen = new Set(roots);
  const queue = [...seen];
  for (let k = 0; k < queue.length; k++) for (const j of f.refs[queue[k]!]!) if (!seen.has(j)) (seen.add(j), queue.push(j));
  const members = [...seen];
  const local = new Map(members.map((i, k) => [i, k]));
  const from: number[] = [];
  const to: number[] = [];
  for (const i of members) for (const j of f.refs[i]!) (from.push(local.get(i)!), to.push(local.get(j)!));
  return buildRefGraph({
    storeDir: f.storeDir,
    paths: members.map((i) => f.paths[i]! as StorePath),
    narSize: members.map((i) => f.size[i] ?? NaN),
    ...(hashes ? { narHash: members.map((i) => f.hash[i]), deriver: members.map((i) => f.deriver[i] ?? undefined) } : {}),
    edgeFrom: from,
    edgeTo: to,
    edgeCount: from.length,
  });
}

function assertSameGraph(actual: RefGraph, wanted: RefGraph, what: string): void {
  assert.deepEqual(actual.paths, wanted.paths, `${what}: paths`);
  assert.deepEqual([...actual.narSize], [...wanted.narSize], `${what}: narSize`);
  assert.deepEqual([...actual.refStart], [...wanted.refStart], `${what}: refStart`);
  assert.deepEqual([...actual.refs], [...wanted.refs], `${what}: refs`);
  for (let i = 0; i < wanted.paths.length; i++) {
    assert.equal(actual.narHash[i], wanted.narHash[i], `${what}: narHash of ${wanted.paths[i]}`);
    assert.equal(actual.deriver[i], wanted.deriver[i], `${what}: deriver of ${wanted.paths[i]}`);
  }
}

const TUNINGS: [string, LocalDbTuning][] = [
  ['auto', {}],
  ['walk', { edges: 'walk' }],
  ['scan', { edges: 'scan' }],
  ['walk, tiny batches', { edges: 'walk', walkBatch: 3, nodeBatch: 5 }],
  ['scan, tiny batches', { edges: 'scan', scanBatch: 7, nodeBatch: 5 }],
];

function check(f: Fixture, loc: { storeDir: string }, label: string): void {
  const rand = rng(f.paths.length);
  const rootSets = [[f.paths.length - 1], [0], [Math.floor(f.paths.length / 2), f.paths.length - 2], [3, 3]];
  for (let k = 0; k < 3; k++) rootSets.push([Math.floor(rand() * f.paths.length)]);
  for (const [name, tuning] of TUNINGS) {
    const src = new LocalDbSource({ storeDir: loc.storeDir, realStoreDir: loc.storeDir, stateDir: f.dir }, join(f.dir, 'db.sqlite'), tuning);
    for (const roots of rootSets) {
      for (const hashes of [false, true]) {
        const g = src.loadClosure([...new Set(roots)].map((i) => f.paths[i]! as StorePath), { hashes });
        assertSameGraph(g, expected(f, [...new Set(roots)], hashes), `${label}, ${name}, roots ${roots.join(' ')}${hashes ? ', hashes' : ''}`);
        if (tuning.edges) assert.equal(src.lastLoad?.mode, tuning.edges);
      }
    }
    src.close();
  }
}

test('the local database gives the closure buildRefGraph would, walked or scanned, in any batch size', () => {
  const f = makeDb(1, 400, 1);
  check(f, f, 'dense ids');
});

test('sparse ids, and ids too large to pack two into a double', () => {
  check(makeDb(2, 300, 5), { storeDir: '/nix/store' }, 'sparse ids');
  // 2 × 27 bits > 53: edges come back as "referrer,reference" pairs.
  const big = makeDb(3, 200, 100_000_000);
  check(big, big, 'ids past 2^26');
});

test('paths outside the store dir named by --store still sort byte-wise', () => {
  const f = makeDb(4, 150, 1, '/nix/store');
  // The packed sort keys assume `storeDir/` before every hash; here they cannot apply.
  check(f, { storeDir: '/other/store' }, 'foreign store dir');
});

test('an invalid root is named', () => {
  const f = makeDb(5, 20, 1);
  const src = new LocalDbSource({ storeDir: f.storeDir, realStoreDir: f.storeDir, stateDir: f.dir }, join(f.dir, 'db.sqlite'));
  assert.throws(
    () => src.loadClosure([f.paths[3]! as StorePath, '/nix/store/00000000000000000000000000000000-nope' as StorePath]),
    (e: Error & { code?: string }) => e.code === 'EINVALIDPATH' && /00000000000000000000000000000000-nope: path is not valid/.test(e.message),
  );
  src.close();
});

test('edges whose referrer rows come back split are regrouped', () => {
  const t = new EdgeTable(4, 2);
  const pairs: [number, number][] = [[1, 2], [1, 3], [2, 3], [1, 0], [3, 1], [2, 0], [2, 1]];
  t.reserve(4, 4);
  for (const [a, b] of pairs.slice(0, 4)) t.add(a, b);
  t.endBatch();
  t.reserve(4, 3);
  for (const [a, b] of pairs.slice(4)) t.add(a, b);
  t.regroup();
  const rows = [0, 1, 2, 3].map((r) => [...t.to.subarray(t.first[r]!, t.first[r]! + t.count[r]!)]);
  assert.deepEqual(rows, [[], [2, 3, 0], [3, 0, 1], [1]]);
});

test('byteOrder sorts like string comparison: packed keys, ties, and paths it cannot pack', () => {
  const rand = rng(9);
  const pick = (k: number, alphabet = NIX32): string => Array.from({ length: k }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
  const shared = pick(9);
  const sets: string[][] = [
    Array.from({ length: 500 }, (_, i) => `/nix/store/${rand() < 0.4 ? shared + pick(23) : pick(32)}-p${i}`),
    Array.from({ length: 50 }, (_, i) => `/nix/store/${pick(32, 'abcXYZ012')}-p${i}`), // not base-32: no packing
    ['/nix/store/b', '/nix/store/a', '/other/x', '/nix/store/'], // short and foreign paths
    [],
  ];
  for (const paths of sets) {
    const want = paths.map((_, i) => i).sort((a, b) => (paths[a]! < paths[b]! ? -1 : paths[a]! > paths[b]! ? 1 : 0));
    assert.deepEqual([...byteOrder(paths, '/nix/store/')], want);
  }
});

test('the SQLite driver is node:sqlite from Node 22.13 (built in, unflagged), better-sqlite3 on Node 20', () => {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  const want = major > 22 || (major === 22 && minor >= 13) ? 'node:sqlite' : major === 20 ? 'better-sqlite3' : undefined;
  if (want) assert.equal(sqliteDriverName(), want);
  const f = makeDb(6, 5, 1);
  const src = new LocalDbSource({ storeDir: f.storeDir, realStoreDir: f.storeDir, stateDir: f.dir }, join(f.dir, 'db.sqlite'));
  assert.match(src.description, new RegExp(`\\(read-only, ${sqliteDriverName()}\\)$`));
  src.close();
});

/** Asserts an EDB NixSealError naming the database, with `why` after the colon. */
function assertEdb(fn: () => unknown, dbPath: string, why: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof NixSealError, `not a NixSealError: ${String(e)}`);
    assert.equal(e.code, 'EDB');
    assert.equal(e.message.split(': ')[0], `Cannot read Nix database ${dbPath}`);
    assert.match(e.message, why);
    assert.doesNotMatch(e.message, /\n/);
    return true;
  });
}

test('a missing, corrupt, foreign or locked database is an EDB error that says which, on either driver', () => {
  const loc = (dir: string) => ({ storeDir: '/nix/store', realStoreDir: '/nix/store', stateDir: dir });
  const dir = mkdtempSync(join(tmpdir(), 'nix-seal-localdb-bad-'));
  dirs.push(dir);
  const missing = join(dir, 'missing.sqlite');
  assertEdb(() => new LocalDbSource(loc(dir), missing), missing, /: no such file \(is this a Nix store\?\)$/);

  const garbage = join(dir, 'garbage.sqlite');
  writeFileSync(garbage, Buffer.alloc(8192, 'not a database '));
  assertEdb(() => new LocalDbSource(loc(dir), garbage), garbage, /: the file is not a SQLite database$/);

  // A valid header over pages of garbage.
  const f = makeDb(7, 30, 1);
  const good = join(f.dir, 'db.sqlite');
  const corrupt = join(dir, 'corrupt.sqlite');
  const bytes = readFileSync(good);
  bytes.fill(0xa5, 100);
  writeFileSync(corrupt, bytes);
  assertEdb(() => new LocalDbSource(loc(dir), corrupt).loadClosure([f.paths[0]! as StorePath]), corrupt, /: the database is corrupt$/);

  const foreign = join(dir, 'foreign.sqlite');
  const w = openWritable(foreign);
  w.exec('CREATE TABLE t (x)');
  w.close();
  assertEdb(() => new LocalDbSource(loc(dir), foreign), foreign, /: not a Nix database \(it has no ValidPaths table\)$/);

  // A writer holding an exclusive lock (rollback journal): readers wait busyTimeoutMs, then fail.
  const locker = openWritable(good);
  locker.exec('BEGIN EXCLUSIVE');
  try {
    assertEdb(() => new LocalDbSource(loc(f.dir), good, { busyTimeoutMs: 50 }), good, /: the database is locked$/);
  } finally {
    locker.exec('ROLLBACK');
    locker.close();
  }
  // Once released, it reads.
  const src = new LocalDbSource(loc(f.dir), good);
  assert.equal(src.loadClosure([f.paths[0]! as StorePath]).paths.length, 1);
  src.close();
});
