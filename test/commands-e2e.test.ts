/**
 * The commands' rough edges, against real Nix on the seed scenario: `suggest`'s flags reproduce
 * the closure it reports (with the user's --seal / --no-seal), `why` takes a name, `info` lists
 * what was erased, `--help` lists the --store forms, and a checkout before `npm ci` says so.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { CLI, isOneLineError, runCli, nonEmptyLines } from './support/cli.js';
import { seedCli, withSeedScenario } from './support/seed-scenario.js';

const seed = withSeedScenario('nix-seal-commands-');
after(() => seed.cleanup());

const lines = nonEmptyLines;

const scenario = seed.need;

const cli = seedCli;

test("suggest: its flags give exactly the closure it reports, keeping the user's --seal and --no-seal", (t) => {
  const s = scenario(t);
  if (!s) return;
  const cases: string[][] = [[], ['--seal', 'qemu*'], ['--no-seal', '*.iso'], ['--seal', 'libfoo-*', '--no-seal', 'nixos-test.iso']];
  for (const given of cases) {
    const r = cli(s, 'suggest', s.launcher, ...given, '--json');
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    const closure = lines(cli(s, 'closure', s.launcher, ...j.flags).stdout);
    assert.equal(closure.length, j.sealedProven.count, `${given.join(' ')} → ${j.flags.join(' ')}`);
    assert.equal(closure.length, j.sealedAll.count, 'every image of the scenario is proven');
    // The same closure as the user's flags with the ISO sealed by hand (unless excluded).
    const isoExcluded = given.some((g) => g.includes('iso'));
    const byHand = lines(cli(s, 'closure', s.launcher, ...given, ...(isoExcluded ? [] : ['--seal', s.iso])).stdout);
    assert.deepEqual(closure, byHand, given.join(' '));
    if (isoExcluded) {
      assert.deepEqual(j.images, []);
      assert.deepEqual(j.excluded.map((e: { path: string }) => e.path), [s.iso]);
      const text = cli(s, 'suggest', s.launcher, ...given).stdout;
      assert.match(text, /images found: 1, all excluded by --no-seal/);
      assert.ok(text.includes(`excluded by --no-seal: ${s.iso} (`), text);
      assert.doesNotMatch(text, /no self-contained image/);
    }
  }
  // The text form quotes for the shell: pasting it gives the same closure.
  const text = cli(s, 'suggest', s.launcher, '--seal', 'qemu*').stdout;
  const flags = /^flags \(give this closure, (\d+) paths?, [^)]*\): (.*)$/m.exec(text);
  assert.ok(flags, text);
  assert.equal(flags[2], "--seal 'qemu*' --seal-images");
  const pasted = spawnSync('sh', ['-c', `"$0" "$1" closure "$2" ${flags[2]}`, process.execPath, CLI, s.launcher], { env: s.env.env, encoding: 'utf8' });
  assert.equal(lines(pasted.stdout).length, Number(flags[1]), pasted.stderr);
});

test('why: a name or basename unique in the closure; an unknown or ambiguous one is an error that helps', (t) => {
  const s = scenario(t);
  if (!s) return;
  const byPath = cli(s, 'why', s.launcher, s.bash, '--seal', '*.iso', '--json');
  assert.equal(byPath.code, 0, byPath.stderr);
  for (const name of ['bash-5.2', path.basename(s.bash)]) {
    const r = cli(s, 'why', s.launcher, name, '--seal', '*.iso', '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), JSON.parse(byPath.stdout), name);
  }
  const unknown = cli(s, 'why', s.launcher, 'bash-9');
  assert.ok(isOneLineError(unknown), unknown.stderr);
  assert.match(unknown.stderr, /^nix-seal: Cannot find 'bash-9' in the closure of .*start-vm: no path has that name\n/);
  const near = cli(s, 'why', s.launcher, 'bash', '--json');
  assert.equal(near.code, 2);
  const e = JSON.parse(near.stderr).error;
  assert.equal(e.code, 'ENOTFOUND');
  assert.match(e.hint, /names in the closure that contain it: bash-5\.2/);
  // Two paths of the same name (a registration: the paths need not exist on disk).
  const dir = s.env.storeDir;
  const [a, b, root] = ['a', 'b', 'c'].map((c) => `${dir}/${c.repeat(32)}`);
  const dupA = `${a}-dup-1.0`;
  const dupB = `${b}-dup-1.0`;
  const top = `${root}-top`;
  const rec = (p: string, refs: string[]) => [p, `sha256:${'0'.repeat(52)}`, '8', '', String(refs.length), ...refs].join('\n');
  const reg = path.join(s.env.root, 'dup-registration');
  fs.writeFileSync(reg, [rec(dupA, []), rec(dupB, []), rec(top, [dupA, dupB])].join('\n') + '\n');
  const store = ['--store', `registration:${reg}`];
  const amb = cli(s, 'why', top, 'dup-1.0', ...store);
  assert.ok(isOneLineError(amb), amb.stderr);
  assert.ok(amb.stderr.startsWith(`nix-seal: Cannot pick 'dup-1.0': 2 paths of the closure of ${top} have that name: ${dupA}, ${dupB}\n`), amb.stderr);
  const one = cli(s, 'why', top, path.basename(dupB), ...store);
  assert.equal(one.code, 0, one.stderr);
  assert.match(one.stdout, new RegExp(`→ ${dupB}`));
  // Not in ROOT's closure: a negative answer, exit 1, as with a path.
  assert.equal(cli(s, 'why', s.qemu, s.iso).code, 1);
});

test('info lists the erased paths per seal, the largest first (sizes from nix-store -q --size)', (t) => {
  const s = scenario(t);
  if (!s) return;
  const j = JSON.parse(cli(s, 'info', s.launcher, '--seal', '*.iso', '--json').stdout);
  assert.equal(j.seals.length, 1);
  const size = (p: string): number => Number(s.env.nixStore(['-q', '--size', p]).trim());
  const expected = [...s.isoOnly].map((p) => ({ path: p, narSize: size(p), exclusive: true })).sort((x, y) => y.narSize - x.narSize);
  assert.deepEqual(j.seals[0].erasedPaths, expected);
  assert.equal(expected[0]!.path, s.linux, 'the 4 MiB kernel first');
  const text = cli(s, 'info', s.launcher, '--seal', '*.iso').stdout;
  const listed = lines(text).filter((l) => /^ {4}\s*\S+ \S+ {2}\//.test(l)).map((l) => l.trim().split(/\s+/)[2]);
  assert.deepEqual(listed, expected.map((e) => e.path), text);
  assert.doesNotMatch(text, /more \(--all/);
  // Two seals: glibc is erased by both (qemu's libfoo and the ISO), so not exclusive.
  const two = cli(s, 'info', s.launcher, '--seal', '*.iso', '--seal', 'qemu-*', '--all').stdout;
  assert.match(two, new RegExp(`${s.glibc.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} {2}\\(also erased by another seal\\)`));
});

test('--help lists the --store forms and the exit codes', () => {
  const r = runCli(['--help']);
  assert.equal(r.code, 0);
  for (const form of ['local?root=DIR', 'local?store=S&state=T', 'daemon', 'registration:FILE', 'export-graph:FILE', 'attrs-json:FILE[#NAME]', 'path-info:FILE']) {
    assert.ok(r.stdout.includes(form), form);
  }
  assert.match(r.stdout, /Exit codes: 0 .* 1 .*\s2 any error/s);
  assert.match(runCli(['closure', '--help']).stdout, /--store <url>.*local\?root=DIR/s);
});

test('a checkout before npm ci (no dist/, no node_modules) says so in one line, exit 2', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nix-seal-checkout-'));
  try {
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.copyFileSync(CLI, path.join(dir, 'bin', 'nix-seal.js'));
    fs.copyFileSync(path.join(path.dirname(CLI), '..', 'package.json'), path.join(dir, 'package.json'));
    const run = () => spawnSync(process.execPath, [path.join(dir, 'bin', 'nix-seal.js'), 'closure', '/nix/store/x'], { encoding: 'utf8' });
    let r = run();
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `nix-seal: is not built (no dist/): run 'npm ci' in ${dir} (it installs the dependencies and compiles nix-seal)\n`);
    // Compiled but without dependencies.
    fs.cpSync(path.join(path.dirname(CLI), '..', 'dist', 'src'), path.join(dir, 'dist', 'src'), { recursive: true });
    r = run();
    assert.equal(r.status, 2);
    assert.equal(r.stderr, `nix-seal: is missing its dependencies (no node_modules): run 'npm ci' in ${dir} (it installs the dependencies and compiles nix-seal)\n`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
