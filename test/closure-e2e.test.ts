/**
 * The closure commands against real Nix: a private store with the seed scenario, `nix-store -qR`
 * as the oracle, and every file source Nix can produce for the same closure.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { CLI, isOneLineError, runCli, nonEmptyLines } from './support/cli.js';
import { seedCli, withSeedScenario } from './support/seed-scenario.js';
import { requireTools, skipOrFail } from './support/tools.js';

const seed = withSeedScenario('nix-seal-closure-');
after(() => seed.cleanup());

const lines = nonEmptyLines;

const scenario = seed.need;

const cli = seedCli;

test('without seals, closure is exactly nix-store -qR (same paths, same order) for every path', (t) => {
  const s = scenario(t);
  if (!s) return;
  for (const p of [s.launcher, s.qemu, s.iso, s.nixosSystem, s.glibc]) {
    const r = cli(s, 'closure', p);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(lines(r.stdout), lines(s.env.nixStore(['-qR', p])), p);
  }
  // Several roots at once, as nix-store -qR A B.
  const r = cli(s, 'closure', s.qemu, s.nixosSystem);
  assert.deepEqual(lines(r.stdout), lines(s.env.nixStore(['-qR', s.qemu, s.nixosSystem])));
});

test("--seal '*.iso' drops exactly the ISO-only paths and keeps what qemu also needs", (t) => {
  const s = scenario(t);
  if (!s) return;
  const full = lines(s.env.nixStore(['-qR', s.launcher]));
  const r = cli(s, 'closure', s.launcher, '--seal', '*.iso');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  const sealed = lines(r.stdout);
  assert.deepEqual(new Set(sealed), new Set(full.filter((p) => !s.isoOnly.includes(p))));
  assert.ok(sealed.includes(s.iso) && sealed.includes(s.glibc));
  // The same seal given as a path, as a path inside it… and through a symlink, from a file.
  const link = path.join(s.env.root, 'iso-link');
  fs.symlinkSync(s.iso, link);
  const sealsFile = path.join(s.env.root, 'seals');
  fs.writeFileSync(sealsFile, `# the image\n${link}\n\n`);
  for (const args of [['--seal', s.iso], ['--seals-from', sealsFile]]) {
    assert.deepEqual(lines(cli(s, 'closure', s.launcher, ...args).stdout), sealed);
  }
});

test('closure --json: kept references only, erased paths per seal, totals that match nix-store sizes', (t) => {
  const s = scenario(t);
  if (!s) return;
  const r = cli(s, 'closure', s.launcher, '--seal', '*.iso', '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const size = (p: string): number => Number(s.env.nixStore(['-q', '--size', p]).trim());
  const full = lines(s.env.nixStore(['-qR', s.launcher]));
  assert.deepEqual(j.roots, [s.launcher]);
  assert.equal(j.totals.fullCount, full.length);
  assert.equal(j.totals.fullNarSize, full.reduce((a, p) => a + size(p), 0));
  assert.equal(j.totals.sealedCount, full.length - 3);
  assert.equal(j.totals.sealedNarSize, j.paths.reduce((a: number, p: { narSize: number }) => a + p.narSize, 0));
  const iso = j.paths.find((p: { path: string }) => p.path === s.iso);
  // The ISO's only kept reference is glibc: qemu needs it too.
  assert.deepEqual(iso.references, [s.glibc]);
  assert.deepEqual(j.seals, [{ path: s.iso, erased: [...s.isoOnly].sort(), erasedNarSize: s.isoOnly.reduce((a, p) => a + size(p), 0) }]);
  for (const p of j.paths) assert.equal(p.narSize, size(p.path));
});

test('info summarises both closures and what the seal erased', (t) => {
  const s = scenario(t);
  if (!s) return;
  const j = JSON.parse(cli(s, 'info', s.launcher, '--seal', '*.iso', '--json').stdout);
  assert.equal(j.full.count, 8);
  assert.equal(j.sealed.count, 5);
  assert.equal(j.erased.count, 3);
  assert.equal(j.seals.length, 1);
  assert.equal(j.seals[0].erased.count, 3);
  assert.equal(j.seals[0].exclusive.count, 3);
  const text = cli(s, 'info', s.launcher, '--seal', '*.iso').stdout;
  assert.match(text, /full closure: +8 paths, [\d.]+ (B|KiB|MiB)/);
  assert.match(text, /sealed closure: 5 paths/);
  assert.match(text, new RegExp(`seal ${s.iso}`));
});

test('why: the chain to a kept path, and the seal that erased an erased one', (t) => {
  const s = scenario(t);
  if (!s) return;
  const kept = JSON.parse(cli(s, 'why', s.launcher, s.glibc, '--seal', '*.iso', '--json').stdout);
  assert.equal(kept.status, 'kept');
  assert.equal(kept.chain[0], s.launcher);
  assert.equal(kept.chain.at(-1), s.glibc);
  assert.ok(!kept.chain.includes(s.iso), 'the kept chain avoids the seal');
  const erased = JSON.parse(cli(s, 'why', s.launcher, `${s.bash}/bin/bash`, '--seal', '*.iso', '--json').stdout);
  assert.equal(erased.status, 'erased');
  assert.deepEqual(erased.chain, [s.launcher, s.iso, s.bash]);
  assert.deepEqual(erased.erasedBy.map((e: { seal: string }) => e.seal), [s.iso]);
  const text = cli(s, 'why', s.launcher, s.bash, '--seal', '*.iso').stdout;
  assert.match(text, /is erased by seal .*nixos-test\.iso/);
  const all = JSON.parse(cli(s, 'why', s.launcher, s.bash, '--all', '--json').stdout);
  assert.deepEqual(all.chains.map((c: string[]) => c.length), [3, 4]); // via the ISO directly, and via nixos-system
  const absent = cli(s, 'why', s.qemu, s.bash);
  assert.equal(absent.code, 1);
  assert.match(absent.stdout, /does not depend on/);
});

test('every source gives the same answer as the database', (t) => {
  const s = scenario(t);
  if (!s || !requireTools(t, 'nix', 'bash')) return;
  const env = s.env;
  const expected = cli(s, 'closure', s.launcher, '--seal', '*.iso', '--json').stdout;
  const dir = path.join(env.root, 'sources');
  fs.mkdirSync(dir, { recursive: true });
  // nix-store --dump-db writes bare hex hashes; closureInfo-style sha256:nix32 is covered by unit tests.
  fs.writeFileSync(path.join(dir, 'dump-db'), env.nixStore(['--dump-db', ...lines(env.nixStore(['-qR', s.launcher]))]));
  fs.writeFileSync(
    path.join(dir, 'path-info.json'),
    env.run('nix', ['--extra-experimental-features', 'nix-command', 'path-info', '--json', '--recursive', s.launcher]),
  );
  // The graph files Nix hands to builds: legacy exportReferencesGraph and structured attrs.
  const built = env.build(`
    let launcher = builtins.storePath "${s.launcher}"; in {
      legacy = derivation {
        name = "export-graph"; system = builtins.currentSystem; builder = "/bin/sh";
        args = [ "-c" "/bin/cp closure $out" ];
        exportReferencesGraph = [ "closure" launcher ];
      };
      attrs = derivation {
        name = "attrs-json"; system = builtins.currentSystem; builder = "/bin/sh";
        __structuredAttrs = true;
        # The output path is in .attrs.json itself. (Sourcing .attrs.sh from bash and then copying
        # got the builder SIGKILLed intermittently under Nix 2.8 without a sandbox; sh does not.)
        args = [ "-c" "o=$(/bin/grep -o '\\"outputs\\":{\\"out\\":\\"[^\\"]*' .attrs.json | /usr/bin/cut -d'\\"' -f6); /bin/cp .attrs.json $o" ];
        exportReferencesGraph.closure = [ launcher ];
      };
    }`);
  const legacy = built.find((p) => p.endsWith('-export-graph'))!;
  const attrs = built.find((p) => p.endsWith('-attrs-json'))!;
  const answers: Record<string, string> = {
    [`registration:${dir}/dump-db`]: '',
    [`path-info:${dir}/path-info.json`]: '',
    [`attrs-json:${attrs}#closure`]: '',
    [`attrs-json:${attrs}`]: '',
    daemon: '',
    [`local?store=${env.storeDir}&state=${env.stateDir}`]: '',
  };
  for (const store of Object.keys(answers)) {
    const r = runCli(['closure', s.launcher, '--seal', '*.iso', '--json', '--store', store], env.env);
    assert.equal(r.code, 0, `${store}: ${r.stderr}`);
    assert.equal(r.stdout, expected, store);
  }
  // The legacy file has no sizes or hashes: the same paths and references, sizes unknown.
  const r = runCli(['closure', s.launcher, '--seal', '*.iso', '--json', '--store', `export-graph:${legacy}`], env.env);
  assert.equal(r.code, 0, r.stderr);
  const strip = (j: { paths: { path: string; references: string[] }[] }) => j.paths.map((p) => [p.path, p.references]);
  assert.deepEqual(strip(JSON.parse(r.stdout)), strip(JSON.parse(expected)));
});

test('roots may be paths inside store paths and symlinks such as ./result', (t) => {
  const s = scenario(t);
  if (!s) return;
  fs.symlinkSync(s.qemu, path.join(s.env.root, 'result'));
  const expected = lines(s.env.nixStore(['-qR', s.qemu]));
  assert.deepEqual(lines(cli(s, 'closure', './result').stdout), expected);
  assert.deepEqual(lines(cli(s, 'closure', `${s.qemu}/bin/qemu-system-x86_64`).stdout), expected);
});

test('bad input: one line naming the thing (and a hint), exit 2, no stack trace', (t) => {
  const s = scenario(t);
  if (!s) return;
  const env = s.env;
  const check = (args: string[], code: number, re: RegExp, e: NodeJS.ProcessEnv = env.env) => {
    const r = runCli(args, e, env.root);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(isOneLineError(r), r.stderr);
    assert.match(r.stderr, re);
  };
  const bogus = `${env.storeDir}/0123456789abcdfghijklmnpqrsvwxyz-never-built`;
  check(['closure', bogus], 2, /never-built: path is not valid/);
  check(['closure', '/etc/passwd'], 2, /'\/etc\/passwd': not in the Nix store/);
  check(['closure', `${env.storeDir}/not-a-store-path`], 2, /too short to be a store path/);
  check(['closure', s.launcher, '--bogus'], 2, /unknown option '--bogus'/);
  check(['closure'], 2, /no ROOT given \(only --store image:FILE has default roots\)/);
  check(['why', s.launcher, s.qemu, '--limit', 'x'], 2, /--limit 'x'/);
  check(['closure', s.launcher, '--store', 'ftp://x'], 2, /unknown store/);
  const missing = { ...env.env, NIX_STATE_DIR: path.join(env.root, 'nowhere') };
  check(['closure', s.launcher, '--store', `local?state=${path.join(env.root, 'nowhere')}`], 2, /Cannot read Nix database .*nowhere\/db\/db.sqlite: no such file/, missing);
  const corrupt = path.join(env.root, 'corrupt');
  fs.mkdirSync(path.join(corrupt, 'db'), { recursive: true });
  fs.writeFileSync(path.join(corrupt, 'db', 'db.sqlite'), 'this is not sqlite '.repeat(100));
  check(['closure', s.launcher, '--store', `local?state=${corrupt}`], 2, /corrupt\/db\/db.sqlite: the file is not a SQLite database/);
  const reg = path.join(env.root, 'bad-registration');
  fs.writeFileSync(reg, `${s.glibc}\nsha256:nothash\n1\n\n0\n`);
  check(['closure', s.glibc, '--store', `registration:${reg}`], 2, /bad-registration line 1: 'sha256:nothash' is not a hash/);
  check(['closure', s.glibc, '--store', `path-info:${env.root}/missing.json`], 2, /Cannot read .*missing.json: no such file/);
  check(['closure', s.launcher, '--seals-from', `${env.root}/missing-seals`], 2, /missing-seals: no such file/);
  // --debug adds the stack trace.
  const dbg = runCli(['closure', bogus, '--debug'], env.env);
  assert.match(dbg.stderr, /\n\s+at /);
  // A glob that matches nothing is a warning, and the command still succeeds.
  const w = runCli(['closure', s.launcher, '--seal', '*.qcow2'], env.env);
  assert.equal(w.code, 0);
  assert.match(w.stderr, /^nix-seal: warning: seal '\*\.qcow2' \(--seal\) seals nothing/);
});

test('exit codes and --json errors: 0 yes, 1 no, 2 every error; errors are one JSON object with --json', (t) => {
  const s = scenario(t);
  if (!s) return;
  const env = s.env;
  assert.equal(cli(s, 'why', s.launcher, s.glibc).code, 0, 'yes');
  assert.equal(cli(s, 'why', s.qemu, s.iso).code, 1, 'no: a negative answer');
  const bogus = `${env.storeDir}/0123456789abcdfghijklmnpqrsvwxyz-never-built`;
  // Each error kind: usage, invalid path, missing file, bad store URL, unreadable database.
  const cases: [string[], string][] = [
    [['closure', s.launcher, '--bogus'], 'EUSAGE'],
    [['closure', bogus], 'EINVALIDPATH'],
    [['closure', s.glibc, '--store', `path-info:${env.root}/missing.json`], 'EIO'],
    [['closure', s.launcher, '--store', 'ftp://x'], 'EUSAGE'],
    [['closure', s.launcher, '--store', `local?state=${env.root}/nowhere`], 'EDB'],
  ];
  for (const [args, code] of cases) {
    const text = cli(s, ...args);
    assert.equal(text.code, 2, `${args.join(' ')}: ${text.stderr}`);
    assert.ok(isOneLineError(text), text.stderr);
    const j = cli(s, ...args, '--json');
    assert.equal(j.code, 2, j.stderr);
    assert.equal(j.stdout, '');
    assert.equal(j.stderr.split('\n').length, 2, 'one line');
    const e = JSON.parse(j.stderr).error;
    assert.deepEqual(Object.keys(e).sort(), ['code', 'hint', 'line', 'message', 'offset', 'path']);
    assert.equal(e.code, code, j.stderr);
    assert.equal(`nix-seal: ${e.message}`, text.stderr.split('\n')[0]);
    if (e.hint !== null) assert.equal(`nix-seal: hint: ${e.hint}`, text.stderr.split('\n')[1]);
  }
  // A parse error names the file and the line.
  const reg = path.join(env.root, 'bad-registration-json');
  fs.writeFileSync(reg, `${s.glibc}\nsha256:nothash\n1\n\n0\n`);
  const pe = JSON.parse(cli(s, 'closure', s.glibc, '--store', `registration:${reg}`, '--json').stderr).error;
  assert.equal(pe.code, 'EPARSE');
  assert.equal(pe.path, reg);
  assert.equal(pe.line, 1);
  // local?store=S without state=: the error says which state dir was assumed, and how to name another.
  const noState = runCli(['closure', s.launcher, '--store', `local?store=${env.storeDir}`], { ...env.env, NIX_STATE_DIR: path.join(env.root, 'elsewhere') }, env.root);
  assert.equal(noState.code, 2);
  assert.ok(isOneLineError(noState), noState.stderr);
  assert.match(noState.stderr, /no state= given, so the state dir is NIX_STATE_DIR .*elsewhere/);
  assert.match(noState.stderr, /\nnix-seal: hint: .*local\?store=S&state=T/);
  // Warnings carry codes in the JSON output.
  const w = cli(s, 'closure', s.launcher, '--seal', '*.qcow2', '--no-seal', 'nothing-*', '--json');
  assert.equal(w.code, 0, w.stderr);
  assert.deepEqual(
    JSON.parse(w.stdout).warnings.map((x: { code: string }) => x.code),
    ['WSEALNOTHING', 'WUNSEALNOTHING'],
  );
});

test('nothing is written to the store or its database', (t) => {
  const s = scenario(t);
  if (!s) return;
  const db = path.join(s.env.stateDir, 'db');
  const snapshot = () =>
    fs
      .readdirSync(db)
      .sort()
      .map((f) => `${f}:${createHash('sha256').update(fs.readFileSync(path.join(db, f))).digest('hex')}`)
      .join(',') + fs.readdirSync(s.env.storeDir).sort().join(',');
  const before = snapshot();
  for (const args of [['closure', s.launcher], ['info', s.launcher, '--seal', '*.iso'], ['why', s.launcher, s.bash]]) cli(s, ...args);
  assert.equal(snapshot(), before);
});

test('a user who cannot read the database gets the same answer through the daemon', async (t) => {
  const s = scenario(t);
  if (!s || !requireTools(t, 'nix-daemon', 'runuser', 'nix')) return;
  if (process.getuid?.() !== 0) {
    // Needs root to start a daemon for the private store and to run the CLI as another user.
    skipOrFail(t, 'needs root (starts nix-daemon and runs the CLI as nobody)');
    return;
  }
  const { spawn, spawnSync } = await import('node:child_process');
  const env = s.env;
  const expected = cli(s, 'closure', s.launcher, '--seal', '*.iso').stdout;
  const daemon = spawn('nix-daemon', [], { env: env.env, stdio: 'ignore' });
  const dbFile = path.join(env.stateDir, 'db', 'db.sqlite');
  const modes = [env.root, env.stateDir, dbFile].map((p) => [p, fs.statSync(p).mode & 0o7777] as const);
  try {
    const socket = path.join(env.stateDir, 'daemon-socket', 'socket');
    for (let i = 0; i < 100 && !fs.existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
    // A multi-user install: the database is root's alone; everyone may reach the daemon.
    fs.chmodSync(env.root, 0o755);
    fs.chmodSync(env.stateDir, 0o755);
    fs.chmodSync(dbFile, 0o600);
    const vars = Object.entries({ ...env.env, HOME: '/tmp', NIX_REMOTE: '' }).map(([k, v]) => `${k}=${v}`);
    const r = spawnSync('runuser', ['-u', 'nobody', '--', 'env', ...vars, process.execPath, CLI, 'closure', s.launcher, '--seal', '*.iso', '-v'], {
      encoding: 'utf8',
      cwd: '/',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, expected);
    assert.match(r.stderr, /cannot read .*db\.sqlite: asking the nix command instead/);
    assert.match(r.stderr, /reference graph from the nix command/);
  } finally {
    daemon.kill();
    for (const [p, m] of modes) fs.chmodSync(p, m);
  }
});
