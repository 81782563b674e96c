/**
 * nix/default.nix against real Nix 2.8: sealedClosureInfo and makeSealedInitrd built with
 * nix-build on the seed scenario, the builder being the checkout's CLI (a wrapper run by the host's
 * node, see support/nix-seal-drv.ts). The outputs are checked against the CLI run directly on the
 * store's database, against `nix-store --load-db` / `-qR`, and by booting the initrd under qemu.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { bootInitrd, describeBoot } from './support/boot.js';
import { runCli, nonEmptyLines } from './support/cli.js';
import { buildNixSealDrv, type NixSealDrv } from './support/nix-seal-drv.js';
import { withSeedScenario, type SeedScenario } from './support/seed-scenario.js';
import { buildVmInit, listedStore } from './support/vm-init.js';

/** nix/default.nix in the checkout (this file runs from dist/test/). */
const NIX_FUNCTIONS = fileURLToPath(new URL('../../nix/default.nix', import.meta.url));

const seed = withSeedScenario('nix-seal-nixfn-');
after(() => seed.cleanup());

const lines = nonEmptyLines;
const base = (p: string): string => path.basename(p);

interface Ctx {
  s: SeedScenario;
  cli: NixSealDrv;
  /** `(import nix/default.nix { nix-seal = …; })` */
  fns: string;
}
let ctx: Ctx | undefined;

function scenario(t: TestContext, ...tools: string[]): Ctx | undefined {
  const s = seed.need(t, 'nix-instantiate', ...tools);
  if (!s) return undefined;
  if (!ctx) {
    const cli = buildNixSealDrv(s.env);
    ctx = { s, cli, fns: `(import ${NIX_FUNCTIONS} { nix-seal = ${cli.expr}; })` };
  }
  return ctx;
}

/** A store path as a Nix value with context (an input of whatever uses it). */
const sp = (p: string): string => `(builtins.storePath "${p}")`;

/** nix-build one expression that yields one derivation; its out path. */
function build1(c: Ctx, expr: string): string {
  const outs = c.s.env.build(expr);
  assert.equal(outs.length, 1, `one output expected: ${outs.join(' ')}`);
  return outs[0]!;
}

function cli(c: Ctx, ...args: string[]) {
  const r = runCli(args, c.s.env.env, c.s.env.root);
  assert.equal(r.code, 0, `nix-seal ${args.join(' ')}: ${r.stderr}`);
  return r;
}

let count = 0;
const fresh = (c: Ctx, what: string): string => path.join(c.s.env.root, `nixfn-${what}-${++count}`);

/** `nix-store ARGS` on the scenario's store files but with the state dir `state`. */
function nixStoreIn(c: Ctx, state: string, args: string[], input?: string) {
  const env = { ...c.s.env.env, NIX_STATE_DIR: state, NIX_LOG_DIR: path.join(state, 'log', 'nix') };
  const r = spawnSync('nix-store', args, { env, input, encoding: 'utf8', cwd: c.s.env.root });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const read = (dir: string, f: string): string => fs.readFileSync(path.join(dir, f), 'utf8');

/** Checks a sealedClosureInfo output against `nix-seal closure-info` run on the store database. */
function checkClosureInfo(c: Ctx, out: string, roots: string[], sealArgs: string[]): void {
  const sealed = lines(cli(c, 'closure', ...roots, ...sealArgs).stdout);
  const j = JSON.parse(cli(c, 'closure', ...roots, ...sealArgs, '--json').stdout);
  assert.deepEqual(fs.readdirSync(out).sort(), ['registration', 'seals.json', 'store-paths', 'total-nar-size']);
  assert.deepEqual(lines(read(out, 'store-paths')), sealed);
  assert.equal(read(out, 'total-nar-size'), `${j.totals.sealedNarSize}\n`);
  // The same files as the CLI writes from the database (hashes there come from Nix, here from disk).
  const direct = fresh(c, 'cinfo');
  cli(c, 'closure-info', ...roots, ...sealArgs, '-o', direct);
  for (const f of ['registration', 'store-paths', 'total-nar-size']) assert.equal(read(out, f), read(direct, f), f);
  const sealsJson = JSON.parse(read(out, 'seals.json'));
  assert.deepEqual(sealsJson, JSON.parse(read(direct, 'seals.json')));
  // The real nix-store accepts the registration, and the store loaded from it has the sealed closure.
  const state = fresh(c, 'state');
  const load = nixStoreIn(c, state, ['--load-db'], read(out, 'registration'));
  assert.equal(load.code, 0, `nix-store --load-db: ${load.stderr}`);
  const qR = nixStoreIn(c, state, ['-qR', ...roots]);
  assert.equal(qR.code, 0, qR.stderr);
  assert.deepEqual(lines(qR.stdout), sealed);
}

test('sealedClosureInfo: seals as derivations and as globs give the sealed closure, which nix-store --load-db accepts', (t) => {
  const c = scenario(t);
  if (!c) return;
  const { s } = c;
  const byDrv = build1(c, `${c.fns}.sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; seals = [ ${sp(s.iso)} ]; }`);
  const byGlob = build1(c, `${c.fns}.sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; seals = [ "*.iso" ]; }`);
  // A path value: a symlink to the ISO outside the store, like ./result (resolved at evaluation).
  const link = fresh(c, 'result-iso');
  fs.symlinkSync(s.iso, link);
  const byLink = build1(c, `${c.fns}.sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; seals = [ ${link} ]; }`);
  assert.notEqual(byDrv, byGlob);
  checkClosureInfo(c, byDrv, [s.launcher], ['--seal', '*.iso']);
  // sealImages = true finds the ISO by its bytes: the same files as naming it.
  const byDetection = build1(c, `${c.fns}.sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; sealImages = true; }`);
  for (const other of [byGlob, byLink, byDetection]) {
    for (const f of ['registration', 'store-paths', 'total-nar-size', 'seals.json']) assert.equal(read(other, f), read(byDrv, f), f);
  }
  // noSeals makes an exception to it: the full closure again.
  const excepted = build1(c, `${c.fns}.sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; sealImages = true; noSeals = [ "*.iso" ]; }`);
  assert.deepEqual(lines(read(excepted, 'store-paths')), lines(s.env.nixStore(['-qR', s.launcher])));
  const sealed = lines(read(byDrv, 'store-paths'));
  assert.equal(sealed.length, 5);
  for (const p of s.isoOnly) assert.ok(!sealed.includes(p), `${p} is erased`);
  assert.ok(sealed.includes(s.iso) && sealed.includes(s.glibc));
  const sj = JSON.parse(read(byDrv, 'seals.json'));
  assert.deepEqual(sj.seals.map((x: { path: string; erased: string[] }) => [x.path, x.erased]), [[s.iso, [...s.isoOnly].sort()]]);
});

test('sealedClosureInfo: without seals it is closureInfo (nix-store -qR); several roots, paths inside store paths', (t) => {
  const c = scenario(t);
  if (!c) return;
  const { s } = c;
  const plain = build1(c, `${c.fns}.sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; }`);
  assert.deepEqual(lines(read(plain, 'store-paths')), lines(s.env.nixStore(['-qR', s.launcher])));
  checkClosureInfo(c, plain, [s.launcher], []);
  // Two roots, one given as a file inside its store path, one as a derivation-like string; the
  // seal as a path inside the ISO's store path would also do, so give the ISO's own path.
  const two = build1(
    c,
    `${c.fns}.sealedClosureInfo { rootPaths = [ "\${${sp(s.qemu)}}/bin/qemu-system-x86_64" ${sp(s.nixosSystem)} ]; seals = [ "nixos-system-*" ]; }`,
  );
  checkClosureInfo(c, two, [s.qemu, s.nixosSystem], ['--seal', 'nixos-system-*']);
  assert.deepEqual(
    lines(read(two, 'store-paths')).map(base).sort(),
    [s.qemu, s.libfoo, s.glibc, s.nixosSystem].map(base).sort(),
  );
});

test('makeSealedInitrd boots: /init from contents sees the sealed closure and the ISO', { timeout: 15 * 60_000 }, async (t) => {
  const c = scenario(t, 'zstd', 'qemu-system-x86_64', 'apt-get', 'dpkg-deb', 'busybox');
  if (!c) return;
  const { s } = c;
  const vmInit = buildVmInit(s);
  const out = build1(
    c,
    `${c.fns}.makeSealedInitrd { contents = [ { object = ${sp(vmInit)}; symlink = "/init"; } ]; seals = [ ${sp(s.iso)} ]; }`,
  );
  assert.deepEqual(fs.readdirSync(out), ['initrd']);
  const initrd = path.join(out, 'initrd');
  // Byte for byte what the CLI writes from the database.
  const direct = `${fresh(c, 'initrd')}.zst`;
  cli(c, 'initrd', '--init', vmInit, '--seal', s.iso, '-o', direct);
  assert.ok(fs.readFileSync(initrd).equals(fs.readFileSync(direct)), 'makeSealedInitrd and nix-seal initrd differ');
  const boot = await bootInitrd({ initrd, timeoutMs: 240_000 });
  assert.ok(boot.exitedCleanly, describeBoot(boot));
  const listed = listedStore(boot.console);
  const sealed = lines(cli(c, 'closure', vmInit, '--seal', '*.iso').stdout).map(base);
  assert.deepEqual(listed.sort(), sealed.sort());
  for (const p of s.isoOnly) assert.ok(!listed.includes(base(p)), `${p} was erased`);
  assert.match(boot.console, /LAUNCHER-REFERS-TO-ISO/);
  assert.match(boot.console, /ISO9660-OK/);
});

test('makeSealedInitrd: links, plain roots, prepend, compressor and level map onto nix-seal initrd', (t) => {
  const c = scenario(t, 'zstd', 'xz', 'lz4', 'cpio');
  if (!c) return;
  const { s } = c;
  // A microcode-like cpio archive to prepend.
  const ucode = build1(
    c,
    `derivation {
      name = "fake-ucode.cpio"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin";
      args = [ "-c" "mkdir -p kernel/x86/microcode && echo ucode > kernel/x86/microcode/GenuineIntel.bin && find kernel | LC_ALL=C sort | cpio -o -H newc -R +0:+0 --reproducible --quiet > $out" ];
    }`,
  );
  const qemuBin = `${s.qemu}/bin/qemu-system-x86_64`;
  for (const [compressor, level] of [['xz', 3], ['lz4', null], ['none', null], ['gzip', 6]] as const) {
    const out = build1(
      c,
      `${c.fns}.makeSealedInitrd {
        name = "initrd-${compressor}";
        contents = [
          { object = "\${${sp(s.qemu)}}/bin/qemu-system-x86_64"; symlink = "/bin/qemu"; }
          { object = ${sp(s.launcher)}; symlink = "/init"; }
          { object = ${sp(s.glibc)}; }
          { object = ${sp(s.nixosSystem)}; symlink = null; }
        ];
        seals = [ "*.iso" ${sp(s.nixosSystem)} ];
        prepend = [ ${sp(ucode)} ];
        compressor = "${compressor}";
        ${level === null ? '' : `compressorLevel = ${level};`}
      }`,
    );
    const direct = fresh(c, `initrd-${compressor}`);
    cli(
      c, 'initrd', s.glibc, s.nixosSystem, '--init', s.launcher, '--link', `/bin/qemu=${qemuBin}`,
      '--seal', '*.iso', '--seal', s.nixosSystem, '--prepend', ucode, '--compress', compressor,
      ...(level === null ? [] : ['--level', String(level)]), '-o', direct,
    );
    assert.ok(fs.readFileSync(path.join(out, 'initrd')).equals(fs.readFileSync(direct)), `${compressor}: differs from nix-seal initrd`);
  }
});

test('makeSealedInitrd: the seed launcher, sealed and unsealed (sizes for the README)', (t) => {
  const c = scenario(t, 'zstd');
  if (!c) return;
  const { s } = c;
  const mk = (seals: string): string =>
    path.join(build1(c, `${c.fns}.makeSealedInitrd { contents = [ { object = ${sp(s.launcher)}; symlink = "/init"; } ]; seals = [ ${seals} ]; }`), 'initrd');
  const sealed = mk(sp(s.iso));
  const unsealed = mk('');
  // Unsealed, it is what makeInitrd would pack: the full closure (nix-seal initrd without seals
  // is byte-identical to makeInitrd's pipeline over it, see initrd-e2e).
  const direct = fresh(c, 'unsealed');
  cli(c, 'initrd', '--init', s.launcher, '-o', direct);
  assert.ok(fs.readFileSync(unsealed).equals(fs.readFileSync(direct)));
  const size = (f: string): number => fs.statSync(f).size;
  const nar = (paths: string[]): number => paths.reduce((a, p) => a + Number(s.env.nixStore(['-q', '--size', p]).trim()), 0);
  const full = lines(s.env.nixStore(['-qR', s.launcher]));
  const kept = lines(cli(c, 'closure', s.launcher, '--seal', s.iso).stdout);
  t.diagnostic(`closure: full ${full.length} paths, ${nar(full)} bytes NAR; sealed ${kept.length} paths, ${nar(kept)} bytes NAR`);
  t.diagnostic(`initrd (zstd -10): unsealed ${size(unsealed)} bytes, sealed ${size(sealed)} bytes`);
  // The ISO embeds a 4 MiB kernel that the unsealed initrd carries a second time.
  assert.ok(size(unsealed) - size(sealed) > 4_000_000, `${size(unsealed)} vs ${size(sealed)}`);
});

/**
 * nixpkgs' make-initrd.sh (the structuredAttrs version on master: `find * .[^.*]`, `eval --
 * $compress`; see README), its commands run as they are in a Nix build of the same store, with
 * the contents' closure given as the store paths its `$closure/store-paths` would list and the
 * compressor commands of initrd-compressor-meta.nix. Run by bash without -e, like the script:
 * `find * .[^.*]` reports the unmatched glob and goes on.
 */
const MAKE_INITRD_ORACLE = `
set -o pipefail
objects=($objects)
symlinks=($symlinks)
suffices=($suffices)
mkdir root
mkdir root/dev
mkdir root/sys
mkdir root/proc
for ((n = 0; n < \${#objects[*]}; n++)); do
    object=\${objects[$n]}
    symlink=\${symlinks[$n]}
    suffix=\${suffices[$n]}
    if test "$suffix" = none; then suffix=; fi
    mkdir -p $(dirname root/$symlink)
    ln -s $object$suffix root/$symlink
done
(cd root && cp -prd --parents $(cat "$closure") .)
mkdir -p $out
(cd root && find * .[^.*] -exec touch -h -d '@1' '{}' +)
(cd root && find * .[^.*] -print0 | sort -z | cpio -o -H newc -R +0:+0 --reproducible --null | eval -- $compress >> "$out/initrd")
ln -s "initrd" "$out/initrd$extension"
`;

test("makeSealedInitrd without seals is byte-identical to nixpkgs' make-initrd.sh (zstd, xz, lz4, none; gzip decompressed)", (t) => {
  const c = scenario(t, 'zstd', 'xz', 'lz4', 'gzip', 'cpio', 'bash');
  if (!c) return;
  const { s } = c;
  const contents = [
    [s.launcher, '/init', 'none'],
    [s.glibc, '/lib/libc', '/lib'],
  ] as const;
  const nixContents = contents.map(([o, l, x]) => `{ object = ${sp(o)}; symlink = "${l}";${x === 'none' ? '' : ` suffix = "${x}";`} }`).join(' ');
  const closure = fresh(c, 'oracle-store-paths');
  fs.writeFileSync(closure, s.env.nixStore(['-qR', ...contents.map(([o]) => o)]));
  const script = fresh(c, 'make-initrd-oracle') + '.sh';
  fs.writeFileSync(script, MAKE_INITRD_ORACLE);
  // initrd-compressor-meta.nix: each compressor's default arguments and extension.
  const compressors: [string, string, string][] = [
    ['zstd', 'zstd -10', '.zst'],
    ['xz', 'xz --check=crc32 --lzma2=dict=512KiB', '.xz'],
    ['lz4', 'lz4 -l', '.lz4'],
    ['none', 'cat', '.cpio'],
    ['gzip', 'gzip -9n', '.gz'],
  ];
  for (const [name, command, extension] of compressors) {
    const oracle = build1(
      c,
      `derivation {
        name = "make-initrd-${name}"; system = builtins.currentSystem; builder = "/bin/bash"; PATH = "/usr/bin:/bin";
        args = [ ${JSON.stringify(script)} ];
        objects = "${contents.map(([o]) => `\${${sp(o)}}`).join(' ')}";
        symlinks = "${contents.map(([, l]) => l).join(' ')}";
        suffices = "${contents.map(([, , x]) => x).join(' ')}";
        closure = ${JSON.stringify(closure)};
        compress = ${JSON.stringify(command)};
        extension = "${extension}";
      }`,
    );
    const sealed = build1(
      c,
      `${c.fns}.makeSealedInitrd {
        name = "initrd-drop-in-${name}";
        contents = [ ${nixContents} ];
        seals = [ ];
        compressor = "${name}";
      }`,
    );
    const want = fs.readFileSync(path.join(oracle, 'initrd'));
    const got = fs.readFileSync(path.join(sealed, 'initrd'));
    if (name === 'gzip') {
      // Node's deflate is not GNU gzip's: the same archive inside.
      const z = (b: Buffer) => spawnSync('gzip', ['-dc'], { input: b, maxBuffer: 1 << 28 }).stdout as Buffer;
      assert.ok(z(got).equals(z(want)), 'gzip: the decompressed archives differ');
    } else {
      assert.ok(got.equals(want), `${name}: makeSealedInitrd differs from make-initrd.sh (${got.length} vs ${want.length} bytes)`);
    }
  }
  // What the script puts into the image: dev, proc and sys, no "." entry, the links.
  const list = spawnSync('cpio', ['-it', '--quiet'], { input: fs.readFileSync(path.join(build1(c, `${c.fns}.makeSealedInitrd { name = "initrd-list"; contents = [ ${nixContents} ]; compressor = "none"; }`), 'initrd')), encoding: 'utf8' }).stdout;
  const names = lines(list);
  for (const n of ['dev', 'proc', 'sys', 'init', 'lib', 'lib/libc']) assert.ok(names.includes(n), `${n} in ${names.join(' ')}`);
  assert.ok(!names.includes('.'), 'no "." entry');
});

test('bad input fails evaluation with a message that says what is wrong', (t) => {
  const c = scenario(t);
  if (!c) return;
  const { s } = c;
  const init = `{ object = ${sp(s.launcher)}; symlink = "/init"; }`;
  const cases: [string, RegExp][] = [
    [`sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; seals = [ 42 ]; }`, /sealedClosureInfo: seal 42 is an integer, neither a path nor a glob/],
    [`makeSealedInitrd { contents = [ ${init} ]; seals = [ 42 ]; }`, /makeSealedInitrd: seal 42 is an integer/],
    [`sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; seals = [ { foo = 1; } ]; }`, /seal \{ foo = …; \} is an attribute set, not a derivation/],
    [`sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; seals = [ "iso/x.iso" ]; }`, /seal "iso\/x.iso" contains '\/' but is not inside the Nix store/],
    [`sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; seals = [ /etc/hosts ]; }`, /seal \/etc\/hosts is neither inside the Nix store .* nor a symlink into it/],
    [`sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; seals = [ "" ]; }`, /seal "" is empty/],
    [`sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; seals = "*.iso"; }`, /sealedClosureInfo: seals must be a list/],
    [`sealedClosureInfo { rootPaths = [ ]; }`, /sealedClosureInfo: rootPaths is empty/],
    [`sealedClosureInfo { rootPaths = [ "/etc/hosts" ]; }`, /sealedClosureInfo: root "\/etc\/hosts" is not a derivation, a path or a string inside the Nix store/],
    [`makeSealedInitrd { contents = [ ]; }`, /makeSealedInitrd: contents is empty/],
    [`makeSealedInitrd { contents = [ ${init} ]; compressor = "brotli"; }`, /makeSealedInitrd: unknown compressor "brotli"; valid compressors are zstd, gzip, xz, lz4, none/],
    [`makeSealedInitrd { contents = [ ${init} ]; compressorLevel = 42; }`, /compressorLevel 42 is out of range: zstd takes 1 to 19/],
    [`makeSealedInitrd { contents = [ ${init} ]; compressor = "none"; compressorLevel = 1; }`, /compressor "none" takes no compressorLevel/],
    [`makeSealedInitrd { contents = [ ${sp(s.launcher)} ]; }`, /each contents entry must be \{ object; symlink \? null; \}/],
    [`makeSealedInitrd { contents = [ { object = ${sp(s.launcher)}; symlink = "init"; } ]; }`, /symlink "init" of .* must be an absolute path inside the image/],
    [`makeSealedInitrd { contents = [ ${init} ${init} ]; }`, /two contents entries have symlink "\/init"/],
    [`sealedClosureInfo { rootPaths = [ ${sp(s.launcher)} ]; noSeals = "*.iso"; }`, /sealedClosureInfo: noSeals must be a list/],
    [`makeSealedInitrd { contents = [ ${init} ]; noSeals = [ 42 ]; }`, /makeSealedInitrd: seal 42 is an integer/],
    [`makeSealedInitrd { contents = [ ${init} ]; sealImages = "yes"; }`, /sealImages must be true or false/],
  ];
  for (const [call, re] of cases) {
    const file = fresh(c, 'bad') + '.nix';
    fs.writeFileSync(file, `${c.fns}.${call}\n`);
    // Instantiation evaluates every attribute of the derivation; nothing is built.
    const r = spawnSync('nix-instantiate', [file], { env: c.s.env.env, encoding: 'utf8', cwd: c.s.env.root });
    assert.notEqual(r.status, 0, `${call}: evaluation should fail`);
    assert.match(r.stderr, re, call);
    // Even a lazy look at the result (its name) fails, not only building it.
    const lazy = spawnSync('nix-instantiate', ['--eval', '-E', `(import ${file}).name`], { env: c.s.env.env, encoding: 'utf8', cwd: c.s.env.root });
    assert.notEqual(lazy.status, 0, `${call}: .name should fail`);
    assert.match(lazy.stderr, re, `${call} (.name)`);
  }
});

test('compressors: the program given for a compressor is the one the build runs', (t) => {
  const c = scenario(t, 'zstd');
  if (!c) return;
  const { s } = c;
  const withZstd = (zstd: string): string =>
    `(import ${NIX_FUNCTIONS} { nix-seal = ${c.cli.expr}; compressors = { zstd = ${zstd}; }; }).makeSealedInitrd { contents = [ { object = ${sp(s.launcher)}; symlink = "/init"; } ]; }`;
  // A program that fails: the build fails in nix-seal's compressor step, so NIX_SEAL_ZSTD reached it.
  assert.throws(() => c.s.env.build(withZstd('"/bin/false"')), /Cannot compress with zstd/);
  const zstd = fs.realpathSync(spawnSync('sh', ['-c', 'command -v zstd'], { encoding: 'utf8' }).stdout.trim());
  const out = build1(c, withZstd(`"${zstd}"`));
  const direct = fresh(c, 'zstd');
  cli(c, 'initrd', '--init', s.launcher, '-o', direct);
  assert.ok(fs.readFileSync(path.join(out, 'initrd')).equals(fs.readFileSync(direct)));
  const bad = spawnSync('nix-instantiate', ['-E', `(import ${NIX_FUNCTIONS} { nix-seal = ${c.cli.expr}; compressors = { gzip = "/bin/gzip"; }; }).makeSealedInitrd { contents = [ { object = ${sp(s.launcher)}; symlink = "/init"; } ]; compressor = "gzip"; }`], { env: s.env.env, encoding: 'utf8', cwd: s.env.root });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /compressors\.gzip: only zstd, xz and lz4 are programs/);
});
