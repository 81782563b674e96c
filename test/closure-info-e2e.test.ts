/**
 * closure-info against real Nix: the registration must be accepted by `nix-store --load-db` into a
 * fresh database, and the store loaded from it must answer `nix-store -qR` with the sealed closure
 * and pass `nix-store --verify --check-contents`. Without seals it must be the database's own
 * registration (`nix-store --dump-db`), whatever source the graph came from.
 *
 * The first tests call the library (analyze + closureInfoCommand); the CLI tests at the end run
 * `nix-seal closure-info` as a user would.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { analyze } from '../src/analysis.js';
import { closureInfoCommand, type ClosureInfoOptions, type ClosureInfoResult } from '../src/commands/closure-info.js';
import { NixSealError } from '../src/errors.js';
import { formatHashNix32, parseHash } from '../src/store/hash.js';
import { isOneLineError, runCli, nonEmptyLines } from './support/cli.js';
import { seedCli, withSeedScenario, type SeedScenario } from './support/seed-scenario.js';

const seed = withSeedScenario('nix-seal-cinfo-');
after(() => seed.cleanup());

const lines = nonEmptyLines;

const scenario = seed.need;

const localStore = (s: SeedScenario): string => `local?store=${s.env.storeDir}&state=${s.env.stateDir}`;

let dirCount = 0;
/** A new path under the scenario's temp dir (not created). */
const fresh = (s: SeedScenario, what: string): string => path.join(s.env.root, `${what}-${++dirCount}`);

async function libInfo(
  s: SeedScenario,
  opts: ClosureInfoOptions,
  { store = localStore(s), roots = [s.launcher], seals = ['*.iso'] }: { store?: string; roots?: string[]; seals?: string[] } = {},
): Promise<ClosureInfoResult> {
  const a = analyze({ store, roots, seals, hashes: true, env: s.env.env });
  return closureInfoCommand(a, opts);
}

const read = (dir: string, f: string): string => fs.readFileSync(path.join(dir, f), 'utf8');

/** `nix-store …` against the scenario's store files but the state dir `state` (a fresh database). */
function nixStoreIn(s: SeedScenario, state: string, args: string[], input?: string): { code: number; stdout: string; stderr: string } {
  const env = { ...s.env.env, NIX_STATE_DIR: state, NIX_LOG_DIR: path.join(state, 'log', 'nix') };
  const r = spawnSync('nix-store', args, { env, input, encoding: 'utf8', cwd: s.env.root });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Loads `registration` into a new, empty state dir with the real nix-store --load-db. */
function loadFresh(s: SeedScenario, registration: string): string {
  const state = fresh(s, 'state');
  // No `nix-store --init` needed: --load-db creates the database (checked with Nix 2.8).
  const r = nixStoreIn(s, state, ['--load-db'], registration);
  assert.equal(r.code, 0, `nix-store --load-db: ${r.stderr}`);
  assert.equal(r.stderr, '');
  return state;
}

/**
 * Registration records keyed by path, normalised: narHash as sha256:<nix32>, deriver dropped
 * (closureInfo writes none, dump-db writes the .drv), references sorted.
 */
function normalise(text: string): Record<string, { narHash: string; narSize: number; references: string[] }> {
  const l = text.split('\n');
  const out: Record<string, { narHash: string; narSize: number; references: string[] }> = {};
  let i = 0;
  while (i < l.length && l[i] !== '') {
    const p = l[i++]!;
    const narHash = formatHashNix32(parseHash(l[i++]!, 'sha256'));
    const narSize = Number(l[i++]);
    i++; // deriver
    const n = Number(l[i++]);
    out[p] = { narHash, narSize, references: l.slice(i, i + n).sort() };
    i += n;
  }
  return out;
}

const sizeOf = (s: SeedScenario, p: string): number => Number(s.env.nixStore(['-q', '--size', p]).trim());
const sumSizes = (s: SeedScenario, paths: string[]): number => paths.reduce((a, p) => a + sizeOf(s, p), 0);

test("sealed registration: nix-store --load-db takes it, -qR there is the sealed closure, --verify --check-contents is clean", async (t) => {
  const s = scenario(t);
  if (!s) return;
  const dir = fresh(s, 'info');
  const r = await libInfo(s, { out: dir });
  assert.deepEqual(fs.readdirSync(dir).sort(), ['registration', 'seals.json', 'store-paths', 'total-nar-size']);
  assert.deepEqual(r.files, ['store-paths', 'registration', 'total-nar-size', 'seals.json'].map((f) => path.join(dir, f)));

  const sealed = runCli(['closure', s.launcher, '--seal', '*.iso'], s.env.env);
  assert.equal(sealed.code, 0, sealed.stderr);
  assert.equal(read(dir, 'store-paths'), sealed.stdout);
  assert.equal(r.count, 5);
  assert.equal(r.hashedFromDisk, 0, 'the database has every hash');

  const state = loadFresh(s, read(dir, 'registration'));
  const qR = nixStoreIn(s, state, ['-qR', s.launcher]);
  assert.equal(qR.code, 0, qR.stderr);
  assert.equal(qR.stdout, sealed.stdout, 'same paths, same order');
  // The seal's erased references are gone; what qemu also needs stays.
  assert.deepEqual(lines(nixStoreIn(s, state, ['-q', '--references', s.iso]).stdout), [s.glibc]);
  assert.equal(nixStoreIn(s, state, ['-qR', s.qemu]).stdout, s.env.nixStore(['-qR', s.qemu]));
  // --quiet drops the progress lines ("reading the Nix store..."); errors such as a wrong hash
  // ("path '…' was modified! expected hash …") would still be printed, with exit 1.
  const verify = nixStoreIn(s, state, ['--verify', '--check-contents', '--quiet']);
  assert.equal(verify.code, 0, verify.stderr);
  assert.equal(verify.stderr, '');

  assert.equal(read(dir, 'total-nar-size'), `${sumSizes(s, lines(sealed.stdout))}\n`);
  assert.equal(r.totalNarSize, sumSizes(s, lines(sealed.stdout)));
  assert.deepEqual(JSON.parse(read(dir, 'seals.json')), {
    seals: [{ path: s.iso, erased: [...s.isoOnly].sort(), erasedNarSize: sumSizes(s, s.isoOnly) }],
  });
});

test('without seals: registration is the database (nix-store --dump-db), store-paths is nix-store -qR, total-nar-size the sum', async (t) => {
  const s = scenario(t);
  if (!s) return;
  for (const root of [s.launcher, s.iso, s.glibc]) {
    const dir = fresh(s, 'info');
    await libInfo(s, { out: dir }, { roots: [root], seals: [] });
    const qR = s.env.nixStore(['-qR', root]);
    assert.equal(read(dir, 'store-paths'), qR, root);
    assert.deepEqual(normalise(read(dir, 'registration')), normalise(s.env.nixStore(['--dump-db', ...lines(qR)])), root);
    assert.equal(read(dir, 'total-nar-size'), `${sumSizes(s, lines(qR))}\n`);
    assert.deepEqual(JSON.parse(read(dir, 'seals.json')), { seals: [] });
    // Each record exactly as closureInfo writes it: sha256:<nix32>, size, empty deriver line.
    assert.match(read(dir, 'registration'), /^(\S+\nsha256:[0-9a-df-np-sv-z]{52}\n\d+\n\n\d+\n(\S+\n)*)+$/);
  }
  // Several roots at once; the full closure loads and verifies too.
  const dir = fresh(s, 'info');
  await libInfo(s, { out: dir }, { roots: [s.qemu, s.nixosSystem], seals: [] });
  assert.equal(read(dir, 'store-paths'), s.env.nixStore(['-qR', s.qemu, s.nixosSystem]));
  const state = loadFresh(s, read(dir, 'registration'));
  assert.equal(nixStoreIn(s, state, ['-qR', s.qemu, s.nixosSystem]).stdout, read(dir, 'store-paths'));
  const verify = nixStoreIn(s, state, ['--verify', '--check-contents', '--quiet']);
  assert.equal(verify.code, 0, verify.stderr);
  assert.equal(verify.stderr, '');
});

/** The legacy exportReferencesGraph file (no hashes, no sizes) Nix writes for a build. */
function exportGraph(s: SeedScenario): string {
  const built = s.env.build(`
    let launcher = builtins.storePath "${s.launcher}"; in
    derivation {
      name = "export-graph"; system = builtins.currentSystem; builder = "/bin/sh";
      args = [ "-c" "/bin/cp closure $out" ];
      exportReferencesGraph = [ "closure" launcher ];
    }`);
  return built.find((p) => p.endsWith('-export-graph'))!;
}

test('sources without hashes (legacy export graph): hashed from disk, the same files as from the database', async (t) => {
  const s = scenario(t);
  if (!s) return;
  const legacy = exportGraph(s);
  const dumpDb = path.join(s.env.root, 'dump-db');
  fs.writeFileSync(dumpDb, s.env.nixStore(['--dump-db', ...lines(s.env.nixStore(['-qR', s.launcher]))]));
  for (const seals of [['*.iso'], []]) {
    const db = fresh(s, 'info');
    await libInfo(s, { out: db }, { seals });
    for (const store of [`export-graph:${legacy}`, `registration:${dumpDb}`]) {
      const dir = fresh(s, 'info');
      const r = await libInfo(s, { out: dir }, { store, seals });
      for (const f of ['store-paths', 'registration', 'total-nar-size', 'seals.json']) {
        assert.equal(read(dir, f), read(db, f), `${store} ${seals.join(',')}: ${f}`);
      }
      assert.equal(r.hashedFromDisk, store.startsWith('export-graph:') ? r.count : 0);
    }
  }
});

test('--registration-only FILE writes that file alone; - returns the text', async (t) => {
  const s = scenario(t);
  if (!s) return;
  const dir = fresh(s, 'only');
  fs.mkdirSync(dir);
  const r = await libInfo(s, { registrationOnly: path.join(dir, 'reg') });
  assert.deepEqual(fs.readdirSync(dir), ['reg']);
  assert.deepEqual(r.files, [path.join(dir, 'reg')]);
  assert.equal(r.outDir, null);
  const full = fresh(s, 'info');
  await libInfo(s, { out: full });
  assert.equal(read(dir, 'reg'), read(full, 'registration'));
  const dash = await libInfo(s, { registrationOnly: '-' });
  assert.equal(dash.registration, read(full, 'registration'));
  assert.deepEqual(dash.files, []);
});

test('bad input: missing parent of the output dir, a path not on disk; nothing is left behind', async (t) => {
  const s = scenario(t);
  if (!s) return;
  const out = path.join(s.env.root, 'no-such-parent', 'info');
  await assert.rejects(
    libInfo(s, { out }),
    (e: unknown) => e instanceof NixSealError && e.code === 'EIO' && e.message === `Cannot write ${out}: its parent directory ${path.dirname(out)} does not exist`,
  );
  assert.ok(!fs.existsSync(path.dirname(out)));
  // An export graph naming a path that is not in the store on disk: its hash cannot be computed.
  const bogus = `${s.env.storeDir}/0123456789abcdfghijklmnpqrsvwxyz-never-built`;
  const graph = path.join(s.env.root, 'bogus-graph');
  fs.writeFileSync(graph, `${s.glibc}\n\n0\n${bogus}\n\n1\n${s.glibc}\n`);
  const dir = fresh(s, 'info');
  await assert.rejects(
    libInfo(s, { out: dir }, { store: `export-graph:${graph}`, roots: [bogus], seals: [] }),
    (e: unknown) =>
      e instanceof NixSealError &&
      e.code === 'EIO' &&
      e.message === `Cannot compute the narHash of ${bogus}: it is not on disk, and export-graph file ${graph} records no narHash for it`,
  );
  assert.ok(!fs.existsSync(dir), 'the output directory it would have created is not there');
  // The same into an existing directory: it stays empty.
  fs.mkdirSync(dir);
  await assert.rejects(libInfo(s, { out: dir }, { store: `export-graph:${graph}`, roots: [bogus], seals: [] }), /is not on disk/);
  assert.deepEqual(fs.readdirSync(dir), []);
});

// ---- The command line ------------------------------------------------------------------------

const cli = seedCli;

test('CLI: closure-info -o DIR writes the files the library writes; --json describes them', async (t) => {
  const s = scenario(t);
  if (!s) return;
  const lib = fresh(s, 'info');
  await libInfo(s, { out: lib });
  const dir = fresh(s, 'cli-info');
  const r = cli(s, 'closure-info', s.launcher, '--seal', '*.iso', '-o', dir);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, new RegExp(`^wrote ${dir}: 5 paths, `));
  for (const f of ['store-paths', 'registration', 'total-nar-size', 'seals.json']) assert.equal(read(dir, f), read(lib, f), f);
  // Relative output dir, an existing dir overwritten in place, JSON.
  const j = cli(s, 'closure-info', s.launcher, '--seal', '*.iso', '--json', '--out', path.basename(dir));
  assert.equal(j.code, 0, j.stderr);
  const res = JSON.parse(j.stdout);
  assert.equal(res.outDir, dir);
  assert.equal(res.count, 5);
  assert.equal(res.totalNarSize, Number(read(lib, 'total-nar-size')));
  assert.deepEqual(res.seals, JSON.parse(read(lib, 'seals.json')).seals);
  assert.deepEqual(fs.readdirSync(dir).sort(), ['registration', 'seals.json', 'store-paths', 'total-nar-size'], 'no temporary files left');
});

test('CLI: --registration-only - pipes into nix-store --load-db; FILE writes just the file; export-graph source', async (t) => {
  const s = scenario(t);
  if (!s) return;
  const lib = fresh(s, 'info');
  await libInfo(s, { out: lib });
  const r = cli(s, 'closure-info', s.launcher, '--seal', '*.iso', '--registration-only', '-');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, read(lib, 'registration'));
  const state = loadFresh(s, r.stdout);
  assert.equal(nixStoreIn(s, state, ['-qR', s.launcher]).stdout, read(lib, 'store-paths'));
  const file = path.join(s.env.root, 'cli-registration');
  const f = cli(s, 'closure-info', s.launcher, '--seal', '*.iso', '--registration-only', file);
  assert.equal(f.code, 0, f.stderr);
  assert.equal(fs.readFileSync(file, 'utf8'), read(lib, 'registration'));
  const e = cli(s, 'closure-info', s.launcher, '--seal', '*.iso', '--registration-only', '-', '--store', `export-graph:${exportGraph(s)}`);
  assert.equal(e.code, 0, e.stderr);
  assert.equal(e.stdout, read(lib, 'registration'));
});

test('CLI: bad input is one line naming the thing, exit 2, nothing left behind', (t) => {
  const s = scenario(t);
  if (!s) return;
  const check = (args: string[], code: number, re: RegExp) => {
    const r = cli(s, ...args);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(isOneLineError(r), r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stdout, '');
  };
  const out = path.join(s.env.root, 'no-such-parent', 'info');
  check(['closure-info', s.launcher, '-o', out], 2, /^nix-seal: Cannot write .*\/no-such-parent\/info: its parent directory .*\/no-such-parent does not exist\n$/);
  check(['closure-info', s.launcher, '--registration-only', path.join(s.env.root, 'no-such-parent', 'reg')], 2, /Cannot write .*no-such-parent\/reg: directory .*no-such-parent does not exist/);
  const bogus = `${s.env.storeDir}/0123456789abcdfghijklmnpqrsvwxyz-never-built`;
  const graph = path.join(s.env.root, 'bogus-graph-cli');
  fs.writeFileSync(graph, `${bogus}\n\n0\n`);
  const dir = fresh(s, 'cli-bad');
  check(['closure-info', bogus, '-o', dir, '--store', `export-graph:${graph}`], 2, /Cannot compute the narHash of .*never-built: it is not on disk/);
  assert.ok(!fs.existsSync(dir));
  check(['closure-info', s.launcher], 2, /-o DIR, or --registration-only FILE/);
  check(['closure-info', s.launcher, '-o', dir, '--registration-only', '-'], 2, /exclude each other/);
  check(['closure-info', '-o', dir], 2, /no ROOT given \(only --store image:FILE has default roots\)/);
  assert.ok(!fs.existsSync(dir));
});
