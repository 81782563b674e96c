/**
 * The seed scenario end to end (`npm run demo`): a VM launcher that refers to qemu and to an ISO
 * whose bytes embed a whole NixOS-like store. Builds it with the real Nix in a private store,
 * prints the full and the sealed closure side by side, writes closure-info and an initrd, and
 * boots the initrd under qemu when qemu and a kernel can be had. The store stays (`--clean`
 * removes it), and the demo ends with commands to paste that explore it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyze } from '../src/analysis.js';
import { closureResult } from '../src/commands/closure.js';
import { infoResult } from '../src/commands/info.js';
import { human, renderInfo, shellWords } from '../src/cli/render.js';
import { whyResult } from '../src/commands/why.js';
import { baseNameOf, type StorePath } from '../src/store/store-path.js';
import { bootInitrd, describeBoot } from '../test/support/boot.js';
import { makeNixEnv } from '../test/support/nix-env.js';
import { buildSeedScenario } from '../test/support/seed-scenario.js';
import { which } from '../test/support/tools.js';
import { buildVmInit, listedStore } from '../test/support/vm-init.js';

const CLI = fileURLToPath(new URL('../../bin/nix-seal.js', import.meta.url));
const say = (s = ''): void => void process.stdout.write(s + '\n');
const heading = (s: string): void => say(`\n== ${s} ${'='.repeat(Math.max(0, 76 - s.length))}`);

const missing = ['nix-store', 'nix-build', 'xorriso'].filter((c) => !which(c));
if (missing.length > 0) {
  process.stderr.write(
    `demo: needs ${missing.join(', ')}.\n` +
      'Install them as root with:  apt-get install -y nix-bin xorriso   (or: bash .ci/setup; prefix sudo when not root)\n',
  );
  process.exit(1);
}

const env = makeNixEnv('nix-seal-demo-');
// The store is kept for exploring (the commands at the end use it); --clean removes it.
const keep = !process.argv.includes('--clean');
try {
  heading('1. Build the scenario with real Nix (private store, offline)');
  const s = buildSeedScenario(env);
  say(`store:    ${env.storeDir}`);
  say(`launcher: ${s.launcher}`);
  say(`iso:      ${s.iso}`);
  say(env.run('cat', [s.launcher]).trim().replace(/^/gm, '  | '));

  const store = `local?store=${env.storeDir}&state=${env.stateDir}`;
  const full = analyze({ store, roots: [s.launcher] });
  const sealed = analyze({ store, roots: [s.launcher], seals: ['*.iso'] });
  const fullPaths = closureResult(full).paths;
  const sealedSet = new Set(closureResult(sealed).paths.map((p) => p.path));

  heading("2. Full closure (nix-store -qR) vs sealed closure (--seal '*.iso')");
  const w = Math.max(...fullPaths.map((p) => baseNameOf(p.path as StorePath).length)) + 2;
  say(`${'path'.padEnd(w)}${'size'.padStart(10)}   full  sealed`);
  for (const p of fullPaths) {
    const kept = sealedSet.has(p.path);
    say(`${baseNameOf(p.path as StorePath).padEnd(w)}${human(p.narSize).padStart(10)}   yes   ${kept ? 'yes' : 'no (inside the ISO)'}`);
  }
  say();
  process.stdout.write(renderInfo(infoResult(sealed)));
  const why = whyResult(sealed, s.bash);
  say(`\nwhy is bash gone? erased by seal ${why.erasedBy[0]?.seal}: ${why.chain.map((p) => baseNameOf(p as StorePath)).join(' → ')}`);

  heading('3. Which paths are images, and is sealing them safe? (suggest, audit, why --precise)');
  const show = (args: string[]): void => {
    const r = spawnSync(process.execPath, [CLI, ...args, '--store', store], { encoding: 'utf8' });
    say(`$ nix-seal ${args.map((a) => (a.startsWith(env.storeDir) ? baseNameOf(a as StorePath) : a)).join(' ')}`);
    process.stdout.write(r.stdout.split(env.storeDir + '/').join('…/'));
    if (r.status !== 0) throw new Error(`nix-seal ${args[0]} failed: ${r.stderr.trim()}`);
  };
  show(['suggest', s.launcher]);
  show(['audit', s.launcher, '--seal-images', '--strict']);
  show(['why', s.launcher, s.linux, '--seal-images', '--precise', '--evidence', '3']);

  heading('4. closure-info (what nixpkgs closureInfo writes, sealed)');
  const info = path.join(env.root, 'closure-info');
  const ci = spawnSync(process.execPath, [CLI, 'closure-info', s.launcher, '--seal', '*.iso', '--store', store, '-o', info], { encoding: 'utf8' });
  if (ci.status === 0) {
    for (const f of fs.readdirSync(info).sort()) say(`${path.join(info, f)}  (${fs.statSync(path.join(info, f)).size} bytes)`);
    say(`total-nar-size: ${fs.readFileSync(path.join(info, 'total-nar-size'), 'utf8').trim()}`);
  } else say(`closure-info failed: ${ci.stderr.trim()}`);

  heading('5. An initrd whose /init starts from the sealed closure');
  const vmInit = buildVmInit(s);
  const initrd = path.join(env.root, 'initrd.zst');
  const plain = path.join(env.root, 'initrd-unsealed.zst');
  const run = (args: string[]): void => {
    const r = spawnSync(process.execPath, [CLI, 'initrd', '--init', vmInit, '--store', store, ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr.trim());
    process.stdout.write(r.stdout);
  };
  run(['--seal', '*.iso', '-o', initrd]);
  run(['-o', plain]);
  say(`sealed initrd: ${human(fs.statSync(initrd).size)}; without the seal (plain makeInitrd): ${human(fs.statSync(plain).size)}`);

  heading('6. Boot it (Debian kernel under qemu, software emulation)');
  if (!which('qemu-system-x86_64') || !which('busybox')) {
    say('skipped: needs qemu-system-x86 and busybox-static (sudo bash .ci/setup installs them)');
  } else {
    say('booting… (about 10 s; the first run downloads a Debian kernel with apt-get download)');
    const boot = await bootInitrd({ initrd, timeoutMs: 240_000 });
    if (!boot.exitedCleanly) throw new Error(describeBoot(boot));
    const listed = listedStore(boot.console);
    say(`/init saw ${listed.length} store paths:`);
    for (const p of listed) say(`  ${p}`);
    say(/ISO9660-OK/.test(boot.console) ? '/init found the ISO and it is an ISO 9660 image: the VM can start.' : 'ISO check FAILED');
    if (!/ISO9660-OK/.test(boot.console)) process.exitCode = 1;
  }
  if (keep) explore(s.launcher, vmInit, store, s.linux);
} catch (err) {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
} finally {
  if (!keep) env.cleanup();
  else if (process.exitCode) say(`\nthe demo's store stays at ${env.root} for a look; remove it with: ${removeCommand()}`);
}

function removeCommand(): string {
  // Nix makes store paths read-only (dirs 0555): make them writable first.
  return shellWords(['chmod', '-R', 'u+w', env.root]) + ' && ' + shellWords(['rm', '-rf', env.root]);
}

/** Where the store is, how to remove it, and commands to paste (exact paths, quoted for the shell). */
function explore(launcher: string, vmInit: string, store: string, linux: string): void {
  heading('7. Explore it yourself');
  const du = spawnSync('du', ['-sh', env.root], { encoding: 'utf8' }).stdout.split('\t')[0];
  say(`The demo's store stays at ${env.root}${du ? ` (${du})` : ''}: nothing under /nix was touched.`);
  say(`Remove it with:  ${removeCommand()}`);
  say('Paste these (from any directory) to explore it:');
  say();
  const cli = (...args: string[]): string => shellWords([process.execPath, CLI, ...args, '--store', store]);
  const lines = [
    cli('closure', launcher),
    cli('closure', launcher, '--seal', '*.iso'),
    cli('info', launcher, '--seal', '*.iso', '--all'),
    cli('why', launcher, 'bash-5.2', '--seal', '*.iso'),
    cli('why', launcher, linux, '--seal-images', '--precise'),
    cli('suggest', launcher),
    cli('audit', launcher, '--seal', '*.iso', '--strict'),
    cli('initrd', '--init', vmInit, '--seal', '*.iso', '-o', path.join(env.root, 'my-initrd.zst')),
    `${shellWords(['env', `NIX_STORE_DIR=${env.storeDir}`, `NIX_STATE_DIR=${env.stateDir}`, 'nix-store', '-qR', launcher])}    # the full closure, as Nix sees it`,
  ];
  for (const l of lines) say(l);
}
