/**
 * `--store image:FILE`: the closure an image embeds, for images whose references were discarded.
 * A NixOS-like ISO (a zstd nix-store.squashfs with the closure at its root, and the closure's
 * registration from `nix-store --dump-db` inside it) is added to a private Nix store with
 * `nix-store --add`, which records no references, as `unsafeDiscardReferences` would. Real Nix is
 * the oracle: `nix-store -qR` of the system, `--load-db` and `--verify --check-contents`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { isOneLineError, runCli } from './support/cli.js';
import { makeNixEnv, type NixEnv } from './support/nix-env.js';
import { NIX_MK, nixGlibcBash } from './support/nix-expr.js';
import { requireTools } from './support/tools.js';

const EXPR = `
let
  ${NIX_MK}
  ${nixGlibcBash(30_000)}
  coreutils = mk "coreutils-9.1" { } ''
    mkdir -p $out/bin; printf 'uses %s\\n' \${glibc} > $out/bin/ls; ln -s ls $out/bin/dir
  '';
  toplevel = mk "nixos-system-test" { } ''
    mkdir -p $out; printf '#!%s/bin/bash\\nPATH=%s/bin\\n' \${bash} \${coreutils} > $out/init; chmod +x $out/init
  '';
in [ toplevel ]
`;

interface Scenario {
  env: NixEnv;
  system: string;
  closure: string[];
  /** ISOs added with nix-store --add (no references): with a registration, without, broken ones. */
  iso: string;
  bare: string;
  unclosed: string;
  garbage: string;
  empty: string;
}

let scenario: Scenario | undefined;
let env: NixEnv | undefined;
after(() => env?.cleanup());

function build(t: TestContext): Scenario | undefined {
  if (!requireTools(t, 'nix-build', 'xorriso', 'mksquashfs')) return undefined;
  if (scenario) return scenario;
  env = makeNixEnv('nix-seal-image-source-');
  const e = env;
  const [system] = e.build(EXPR);
  const closure = e.nixStore(['-qR', system!]).split('\n').filter(Boolean);
  const dumpDb = e.nixStore(['--dump-db', ...closure]);
  const work = join(e.root, 'iso-work');
  const iso = (name: string, registration: string | undefined, paths = closure): string => {
    const tree = join(work, name);
    mkdirSync(join(tree, 'boot'), { recursive: true });
    const sqTree = join(work, `${name}-sq`);
    mkdirSync(sqTree, { recursive: true });
    for (const p of paths) cpSync(p, join(sqTree, basename(p)), { recursive: true, verbatimSymlinks: true });
    if (registration !== undefined) writeFileSync(join(sqTree, 'nix-path-registration'), registration);
    execFileSync('chmod', ['-R', 'u+w', sqTree]);
    execFileSync('mksquashfs', [sqTree, join(tree, 'nix-store.squashfs'), '-comp', 'zstd', '-all-root', '-noappend', '-quiet', '-no-progress']);
    writeFileSync(join(tree, 'boot', 'grub.cfg'), `linux /boot/bzImage init=${system}/init\n`);
    const out = join(work, `${name}.iso`);
    execFileSync('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-J', '-o', out, tree]);
    // As unsafeDiscardReferences leaves it: in the store, with no references.
    return e.nixStore(['--add', out]).trim();
  };
  // The records of the dump (path, hash, size, deriver, count, references), to drop one.
  const records: string[] = [];
  const l = dumpDb.split('\n');
  for (let i = 0; i < l.length && l[i] !== ''; ) {
    const n = Number(l[i + 4]);
    records.push(l.slice(i, i + 5 + n).join('\n'));
    i += 5 + n;
  }
  const glibc = closure.find((p) => p.endsWith('-glibc-2.37'))!;
  scenario = {
    env: e,
    system: system!,
    closure,
    iso: iso('nixos', dumpDb),
    bare: iso('bare', undefined),
    unclosed: iso('unclosed', records.filter((r) => !r.startsWith(glibc)).join('\n') + '\n'),
    garbage: iso('garbage', dumpDb.replace(/\n(\d+)\n/, '\nnot-a-size\n')),
    empty: iso('empty', undefined, []),
  };
  return scenario;
}

const cli = (s: Scenario, ...args: string[]): ReturnType<typeof runCli> => runCli(args, s.env.env, s.env.root);
const lines = (t: string): string[] => t.split('\n').filter(Boolean);

test('the ISO has no references in the store, but closure --store image: gives nix-store -qR of the system, in its order', (t) => {
  const s = build(t);
  if (!s) return;
  assert.equal(s.env.nixStore(['-q', '--references', s.iso]).trim(), '');
  const r = cli(s, 'closure', '--store', `image:${s.iso}`);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(lines(r.stdout), lines(s.env.nixStore(['-qR', s.system])));
  // With ROOT given, and through the store path's name as well.
  const bash = s.closure.find((p) => p.endsWith('-bash-5.2'))!;
  assert.deepEqual(lines(cli(s, 'closure', bash, '--store', `image:${s.iso}`).stdout), lines(s.env.nixStore(['-qR', bash])));
});

test('closure --json sizes from the image equal the database', (t) => {
  const s = build(t);
  if (!s) return;
  const fromImage = JSON.parse(cli(s, 'closure', '--store', `image:${s.iso}`, '--json').stdout) as { paths: { path: string; narSize: number }[] };
  const fromDb = JSON.parse(cli(s, 'closure', s.system, '--json').stdout) as { paths: { path: string; narSize: number }[] };
  assert.deepEqual(fromImage.paths, fromDb.paths);
});

test('closure-info --store image: loads with nix-store --load-db and passes --verify --check-contents', (t) => {
  const s = build(t);
  if (!s) return;
  const out = join(s.env.root, 'ci-image');
  const r = cli(s, 'closure-info', '--store', `image:${s.iso}`, '-o', out);
  assert.equal(r.code, 0, r.stderr);
  // A fresh database for the same store dir: what a NixOS installer does with the registration.
  const state = join(s.env.root, 'fresh-state');
  const env2 = { ...s.env.env, NIX_STATE_DIR: state };
  execFileSync('nix-store', ['--init'], { env: env2 });
  execFileSync('nix-store', ['--load-db'], { env: env2, input: readFileSync(join(out, 'registration')) });
  const verify = execFileSync('nix-store', ['--verify', '--check-contents'], { env: env2, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(verify, '');
  assert.deepEqual(lines(execFileSync('nix-store', ['-qR', s.system], { env: env2, encoding: 'utf8' })), lines(s.env.nixStore(['-qR', s.system])));
});

test('why inside the image: the chain from the system to glibc; --precise names the file of the copy', (t) => {
  const s = build(t);
  if (!s) return;
  const glibc = s.closure.find((p) => p.endsWith('-glibc-2.37'))!;
  const r = cli(s, 'why', s.system, glibc, '--store', `image:${s.iso}`, '--json', '--precise');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { status: string; chain: string[]; edges: { from: string; to: string; evidence: { file: string }[] }[] };
  assert.equal(j.status, 'kept');
  assert.equal(j.chain[0], s.system);
  assert.equal(j.chain[j.chain.length - 1], glibc);
  const last = j.edges.find((e) => e.to === glibc)!;
  assert.ok(last.evidence.length > 0 && last.evidence[0]!.file.startsWith(last.from), JSON.stringify(last));
});

test('an image without a registration: references found by scanning its copies equal the database', (t) => {
  const s = build(t);
  if (!s) return;
  const r = cli(s, 'closure', '--store', `image:${s.bare}`, '--json', '--verbose');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /holds no registration: hashing its 4 store paths and scanning them for references/);
  const j = JSON.parse(r.stdout) as { paths: { path: string; narSize: number }[] };
  assert.deepEqual(j.paths.map((p) => p.path), lines(s.env.nixStore(['-qR', s.system])));
  const db = JSON.parse(cli(s, 'closure', s.system, '--json').stdout) as { paths: { path: string; narSize: number }[] };
  assert.deepEqual(j.paths, db.paths);
  // The references, path by path, against Nix's.
  const info = cli(s, 'closure-info', '--store', `image:${s.bare}`, '--registration-only', '-');
  assert.equal(info.code, 0, info.stderr);
  const dbReg = s.env.nixStore(['--dump-db', ...lines(s.env.nixStore(['-qR', s.system]))]);
  const refsOf = (reg: string): Map<string, string[]> => {
    const m = new Map<string, string[]>();
    const l = reg.split('\n');
    for (let i = 0; i < l.length && l[i] !== ''; ) {
      const p = l[i]!;
      const n = Number(l[i + 4]);
      m.set(p, l.slice(i + 5, i + 5 + n).sort());
      i += 5 + n;
    }
    return m;
  };
  assert.deepEqual(refsOf(info.stdout), refsOf(dbReg));
});

test('bad images: a registration that is not closed, a garbage line, an image with neither: one-line errors, exit code of an error', (t) => {
  const s = build(t);
  if (!s) return;
  const glibc = s.closure.find((p) => p.endsWith('-glibc-2.37'))!;
  const unclosed = cli(s, 'closure', '--store', `image:${s.unclosed}`);
  assert.notEqual(unclosed.code, 0);
  assert.ok(isOneLineError(unclosed), unclosed.stderr);
  assert.match(unclosed.stderr, new RegExp(`reference ${glibc} of /.*-(bash-5\\.2|coreutils-9\\.1) is not listed`));
  const garbage = cli(s, 'closure', '--store', `image:${s.garbage}`);
  assert.notEqual(garbage.code, 0);
  assert.ok(isOneLineError(garbage), garbage.stderr);
  assert.match(garbage.stderr, /nix-store\.squashfs » nix-path-registration line \d+: narSize 'not-a-size' is not a number/);
  const empty = cli(s, 'closure', '--store', `image:${s.empty}`);
  assert.notEqual(empty.code, 0);
  assert.ok(isOneLineError(empty), empty.stderr);
  assert.match(empty.stderr, /holds neither a registration \(nix-path-registration\) nor store paths/);
  const notImage = cli(s, 'closure', '--store', `image:${glibc}`);
  assert.notEqual(notImage.code, 0);
  assert.ok(isOneLineError(notImage), notImage.stderr);
  assert.match(notImage.stderr, /no image nix-seal can look inside/);
});
