/**
 * `nix-seal initrd` against the real consumers: GNU cpio and bsdtar extract it, the nixpkgs
 * pipeline over a copy of the tree gives the same bytes, each compressor's own tool decompresses
 * it, and Debian's kernel boots it under qemu and finds the store and the ISO.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { bootInitrd, describeBoot } from './support/boot.js';
import { isOneLineError, runCli, nonEmptyLines } from './support/cli.js';
import { seedCli, withSeedScenario, type SeedScenario } from './support/seed-scenario.js';
import { buildVmInit, listedStore } from './support/vm-init.js';

const seed = withSeedScenario('nix-seal-initrd-');
after(() => seed.cleanup());

const lines = nonEmptyLines;
const sh = (script: string, env: NodeJS.ProcessEnv, cwd?: string): Buffer =>
  execFileSync('bash', ['-o', 'pipefail', '-c', script], { env, cwd, maxBuffer: 1 << 30 });

const scenario = (t: TestContext, ...tools: string[]): SeedScenario | undefined => seed.need(t, 'cpio', 'bsdtar', ...tools);

const cli = seedCli;

/**
 * A copy of the sealed closure, laid out and timestamped the way nixpkgs' make-initrd.sh packs it
 * (its current version: dev, sys and proc, `cp -prd --parents`, `find * .[^.*]` from inside).
 */
function stage(s: SeedScenario, paths: string[], dir: string): void {
  fs.mkdirSync(dir);
  for (const d of ['dev', 'sys', 'proc']) fs.mkdirSync(path.join(dir, d), { mode: 0o755 });
  sh(`cp -prd --parents ${paths.map((p) => `'${p}'`).join(' ')} .`, s.env.env, dir);
  // cp -p --parents gives the directories above the store paths the modes of their sources (as it
  // does in a Nix build, see nix-functions.test.ts); Debian's coreutils 9.1 run from here leaves
  // some at 0700, so set them as intended.
  for (let d = s.env.storeDir; d !== '/'; d = path.dirname(d)) fs.chmodSync(path.join(dir, d), fs.statSync(d).mode & 0o7777);
  sh("find * .[^.*] -exec touch -h -d '@1' '{}' + 2>/dev/null; true", s.env.env, dir);
}

const PIPELINES: Record<string, string> = {
  zstd: 'zstd -10',
  xz: 'xz --check=crc32 --lzma2=dict=512KiB',
  lz4: 'lz4 -l',
  none: 'cat',
};
const DECOMPRESS: Record<string, string> = { zstd: 'zstd -dc', gzip: 'gzip -dc', xz: 'xz -dc', lz4: 'lz4 -dc', none: 'cat' };

test("the initrd is byte-identical to make-initrd.sh's pipeline over a copy of the tree, for every compressor", (t) => {
  const s = scenario(t, 'zstd', 'xz', 'lz4', 'gzip');
  if (!s) return;
  const sealed = lines(cli(s, 'closure', s.launcher, '--seal', '*.iso').stdout);
  const dir = path.join(s.env.root, 'stage');
  stage(s, sealed, dir);
  // Without pipefail, as in make-initrd.sh: find reports the unmatched '.[^.*]' and goes on.
  const cpio = "set +o pipefail; find * .[^.*] -print0 2>/dev/null | LC_ALL=C sort -z | cpio -o -H newc -R +0:+0 --reproducible --null 2>/dev/null";
  const reference = sh(cpio, s.env.env, dir);
  for (const c of ['zstd', 'gzip', 'xz', 'lz4', 'none']) {
    const out = path.join(s.env.root, `initrd.${c}`);
    const r = cli(s, 'initrd', s.launcher, '--seal', '*.iso', '--compress', c, '-o', out);
    assert.equal(r.code, 0, r.stderr);
    // Decompressed with the system tool: exactly GNU cpio's archive.
    assert.ok(sh(`${DECOMPRESS[c]} < "${out}"`, s.env.env).equals(reference), `${c}: cpio stream differs from GNU cpio's`);
    if (PIPELINES[c]) {
      // Same compressor invocation as nixpkgs: the same bytes. (gzip: zlib and GNU gzip deflate differently.)
      const expected = sh(`${cpio} | ${PIPELINES[c]}`, s.env.env, dir);
      assert.ok(fs.readFileSync(out).equals(expected), `${c}: compressed bytes differ from the pipeline's`);
    }
    // Reproducible: a second run gives the same file.
    cli(s, 'initrd', s.launcher, '--seal', '*.iso', '--compress', c, '-o', `${out}.2`);
    assert.ok(fs.readFileSync(out).equals(fs.readFileSync(`${out}.2`)), `${c}: two runs differ`);
  }
});

test('GNU cpio and bsdtar extract exactly the sealed closure, links and registration included', (t) => {
  const s = scenario(t, 'zstd');
  if (!s) return;
  const out = path.join(s.env.root, 'links.zst');
  const r = cli(
    s,
    'initrd',
    '--init',
    `${s.launcher}`,
    '--seal',
    '*.iso',
    '--link',
    `/bin/qemu=${s.qemu}/bin/qemu-system-x86_64`,
    '--registration',
    '/nix-path-registration',
    '-o',
    out,
  );
  assert.equal(r.code, 0, r.stderr);
  const sealed = lines(cli(s, 'closure', s.launcher, '--seal', '*.iso').stdout);
  for (const [tool, cmd] of [
    ['cpio', 'zstd -dc "$0" | cpio -idm --quiet'],
    ['bsdtar', 'zstd -dc "$0" | bsdtar -xf -'],
  ] as const) {
    const dir = path.join(s.env.root, `x-${tool}`);
    fs.mkdirSync(dir);
    execFileSync('bash', ['-o', 'pipefail', '-c', cmd, out], { cwd: dir });
    const store = path.join(dir, s.env.storeDir);
    assert.deepEqual(fs.readdirSync(store).sort(), sealed.map((p) => path.basename(p)).sort(), tool);
    assert.equal(fs.readlinkSync(path.join(dir, 'init')), s.launcher);
    assert.equal(fs.readlinkSync(path.join(dir, 'bin/qemu')), `${s.qemu}/bin/qemu-system-x86_64`);
    // The registration in the image is the sealed closure's, as closure-info writes it.
    const registration: string = cli(s, 'closure-info', s.launcher, '--seal', '*.iso', '--registration-only', '-').stdout;
    assert.equal(fs.readFileSync(path.join(dir, 'nix-path-registration'), 'utf8'), registration);
    assert.match(registration, /^\/.*-glibc-2\.37\nsha256:[0-9a-z]{52}\n\d+\n\n0\n/);
    // Contents, executable bits and symlinks equal the store's: compare NAR serialisations.
    for (const p of sealed) {
      const a = execFileSync('nix-store', ['--dump', p], { env: s.env.env, maxBuffer: 1 << 30 });
      const b = execFileSync('nix-store', ['--dump', path.join(store, path.basename(p))], { env: s.env.env, maxBuffer: 1 << 30 });
      assert.ok(a.equals(b), `${tool}: ${p} differs after extraction`);
    }
  }
});

test('the initrd boots: the kernel runs /init from the store, which sees the sealed closure and the ISO', { timeout: 15 * 60_000 }, async (t) => {
  const s = scenario(t, 'zstd', 'qemu-system-x86_64', 'apt-get', 'dpkg-deb', 'busybox');
  if (!s) return;
  const vmInit = buildVmInit(s);
  const initrd = path.join(s.env.root, 'boot.zst');
  const r = cli(s, 'initrd', '--init', vmInit, '--seal', '*.iso', '-o', initrd);
  assert.equal(r.code, 0, r.stderr);
  const boot = await bootInitrd({ initrd, timeoutMs: 240_000 });
  assert.ok(boot.exitedCleanly, describeBoot(boot));
  const consoleText = boot.console;
  const listed = listedStore(consoleText);
  const sealed = lines(cli(s, 'closure', vmInit, '--seal', '*.iso').stdout).map((p) => path.basename(p));
  assert.deepEqual(listed.sort(), sealed.sort());
  for (const p of s.isoOnly) assert.ok(!listed.includes(path.basename(p)), `${p} was erased`);
  assert.match(consoleText, /LAUNCHER-REFERS-TO-ISO/);
  assert.match(consoleText, /ISO9660-OK/);
});

test('bad input: clear one-line errors, and no output file is left behind', (t) => {
  const s = scenario(t, 'zstd');
  if (!s) return;
  const out = path.join(s.env.root, 'bad.zst');
  const check = (args: string[], code: number, re: RegExp, env: NodeJS.ProcessEnv = s.env.env) => {
    const r = runCli(args, env, s.env.root);
    assert.equal(r.code, code, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(isOneLineError(r), r.stderr);
    assert.match(r.stderr, re);
    assert.ok(!fs.existsSync(out), 'no output');
    assert.deepEqual(fs.readdirSync(s.env.root).filter((f) => f.endsWith('.tmp')), [], 'no temporary file');
  };
  check(['initrd', s.launcher, '--compress', 'brotli', '-o', out], 2, /--compress 'brotli': unknown compressor/);
  check(['initrd', s.launcher, '--compress', 'gzip', '--level', '12', '-o', out], 2, /gzip takes a level from 1 to 9/);
  check(['initrd', s.launcher], 2, /required option '-o, --output <file>'/);
  check(['initrd', '--init', '/bin/sh', '-o', out], 2, /'\/bin\/sh': not in the Nix store/);
  check(['initrd', s.launcher, '-o', path.join(s.env.root, 'missing-dir', 'x.zst')], 2, /missing-dir: no such file or directory/);
  check(['initrd', s.launcher, '--prepend', path.join(s.env.root, 'no-ucode.cpio'), '-o', out], 2, /Cannot read --prepend .*no-ucode.cpio/);
  check(['initrd', s.launcher, '--link', 'relative=x', '-o', out], 2, /--link 'relative=x': expected DEST=TARGET/);
  // A compressor that fails midway.
  check(['initrd', s.launcher, '-o', out], 2, /Cannot compress with zstd/, { ...s.env.env, NIX_SEAL_ZSTD: '/bin/false' });
  // A file of the closure that cannot be read: a registration naming a path that is not on disk.
  const ghost = `${s.env.storeDir}/0123456789abcdfghijklmnpqrsvwxyz-ghost`;
  const reg = path.join(s.env.root, 'ghost-registration');
  fs.writeFileSync(reg, `${ghost}\nsha256:${'0'.repeat(52)}\n8\n\n0\n`);
  check(['initrd', ghost, '--store', `registration:${reg}`, '-o', out], 2, /Cannot read .*ghost: no such file or directory/);
});

test('--mkdir creates the output directory (one level), and removes it again on failure', (t) => {
  const s = scenario(t, 'zstd');
  if (!s) return;
  const dir = path.join(s.env.root, 'out-dir');
  const ok = cli(s, 'initrd', s.launcher, '--mkdir', '-o', path.join(dir, 'initrd'));
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(fs.statSync(path.join(dir, 'initrd')).size > 0);
  const failed = runCli(['initrd', s.launcher, '--mkdir', '-o', path.join(s.env.root, 'gone', 'initrd')], {
    ...s.env.env,
    NIX_SEAL_ZSTD: '/bin/false',
  });
  assert.equal(failed.code, 2);
  assert.ok(!fs.existsSync(path.join(s.env.root, 'gone')), 'the directory made for the failed run is gone');
  const deep = cli(s, 'initrd', s.launcher, '--mkdir', '-o', path.join(s.env.root, 'a', 'b', 'initrd'));
  assert.equal(deep.code, 2);
  assert.match(deep.stderr, /Cannot create .*\/a\/b: no such file or directory/);
});
