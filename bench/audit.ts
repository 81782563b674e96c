/**
 * audit benchmark: `nix-seal audit` of a NixOS-like ISO (a zstd nix-store.squashfs holding the
 * closure, plus nix-path-registration), verifying every erased path by the NAR hash of its copy,
 * against what a user would do by hand on the same image in the same run: `unsquashfs -d` of the
 * squashfs, then `nix-hash` of every extracted store path. Also `audit --quick` (no hashing), and
 * the same store in a raw ext4 disk image (`mkfs.ext4 -d`, twice the contents' size) audited
 * against `debugfs -R 'rdump /nix/store'` + `nix-hash` (issue 11's target).
 *
 * The fixture is generated once (deterministic PRNG) under `.bench/audit-v1/` and reused while its
 * `fixture.json` matches: ~400 packages of ~2.5 MiB (a script naming its dependencies, a
 * half-compressible library, ten small docs that end up in fragment blocks), 1 GiB in all
 * (NIX_SEAL_BENCH_AUDIT_MIB changes it); the squashfs is `mksquashfs … -comp zstd -b 1M` as
 * NixOS's make-squashfs.nix lays it out; the ISO (xorriso -R -J) is a store path whose
 * registration (narHashes from `nix-hash`) refers to every package, as does the ext4 image's. nix-seal reads it with
 * `--store registration:FILE`.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { CLI } from './closure.js';
import { BENCH_DIR, BenchSetupError, fmtTime, hyperfine, mark, prng, requireTool, runCommand, type Benchmark, type BenchOptions, type BenchResult } from './lib.js';
import { encodeNix32 } from '../src/store/nix32.js';

const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
import { narSizeOf } from '../src/formats/nar.js';

const AUDIT_DIR = join(BENCH_DIR, 'audit-v1');
const FIXTURE_FILE = join(AUDIT_DIR, 'fixture.json');
const MIB = 1 << 20;
const PACKAGE_BYTES = Math.round(2.5 * MIB);
const DEFAULT_RUNS = 3;
/** Target: audit (with verification) within 1.5× of unsquashfs -d + nix-hash. */
const TARGET_RATIO = 1.5;

interface Fixture {
  version: number;
  mib: number;
  storeDir: string;
  iso: string;
  squashfs: string;
  registration: string;
  /** A raw ext4 file system (2× the contents) holding nix/store/<paths>, as a store path. */
  ext4: string;
  packages: number;
  contentBytes: number;
}

function hashPart(rand: () => number): string {
  const b = Buffer.alloc(20);
  for (let i = 0; i < 20; i++) b[i] = Math.floor(rand() * 256);
  return encodeNix32(b);
}

async function ensureFixture(mib: number, log: (s: string) => void): Promise<Fixture> {
  if (existsSync(FIXTURE_FILE)) {
    const f = JSON.parse(readFileSync(FIXTURE_FILE, 'utf8')) as Fixture;
    if (f.version === 2 && f.mib === mib && existsSync(f.iso) && existsSync(f.squashfs) && existsSync(f.ext4) && existsSync(f.registration)) return f;
  }
  rmSync(AUDIT_DIR, { recursive: true, force: true });
  const storeDir = join(AUDIT_DIR, 'store');
  mkdirSync(storeDir, { recursive: true });
  const rand = prng(0xa0d17);
  const count = Math.max(4, Math.round((mib * MIB) / PACKAGE_BYTES));
  log(`audit: generating ${count} packages (${mib} MiB) under ${storeDir}`);
  const paths: string[] = [];
  const deps: string[][] = [];
  let contentBytes = 0;
  const text = Buffer.from('The quick brown fox jumps over the lazy dog; store paths live in /nix/store. '.repeat(2000));
  for (let i = 0; i < count; i++) {
    const name = `pkg${i}-1.${i % 7}`;
    const p = join(storeDir, `${hashPart(rand)}-${name}`);
    const d = paths.length === 0 ? [] : [...new Set(Array.from({ length: Math.floor(rand() * 4) }, () => paths[Math.floor(rand() * paths.length)]!))];
    mkdirSync(join(p, 'bin'), { recursive: true });
    mkdirSync(join(p, 'lib'));
    mkdirSync(join(p, 'share', 'doc'), { recursive: true });
    const script = `#!/bin/sh\n${d.map((x) => `# uses ${x}/bin\n`).join('')}exec ${p}/lib/lib${i}.so "$@"\n`;
    writeFileSync(join(p, 'bin', name), script, { mode: 0o555 });
    // Half random, half text: compresses about 2:1 like real binaries.
    const lib = Buffer.alloc(PACKAGE_BYTES - 40_000);
    for (let at = 0; at < lib.length; at += 65536) {
      const n = Math.min(65536, lib.length - at);
      if ((at / 65536) % 2 === 0) for (let k = 0; k < n; k += 4) lib.writeUInt32LE(Math.floor(rand() * 0x1_0000_0000), Math.min(at + k, lib.length - 4));
      else text.copy(lib, at, 0, n);
    }
    writeFileSync(join(p, 'lib', `lib${i}.so`), lib, { mode: 0o444 });
    for (let k = 0; k < 10; k++) writeFileSync(join(p, 'share', 'doc', `notes-${k}.txt`), text.subarray(0, 1000 + Math.floor(rand() * 3000)), { mode: 0o444 });
    contentBytes += lib.length + script.length;
    paths.push(p);
    deps.push(d);
  }
  const work = join(AUDIT_DIR, 'work');
  mkdirSync(join(work, 'tree'), { recursive: true });
  const squashfs = join(AUDIT_DIR, 'nix-store.squashfs');
  log('audit: mksquashfs -comp zstd -b 1M');
  const sq = await runCommand('mksquashfs', [...paths, squashfs, '-keep-as-directory', '-all-root', '-comp', 'zstd', '-b', '1M', '-noappend', '-quiet', '-no-progress'], process.env);
  if (sq.code !== 0) throw new Error(`mksquashfs failed: ${sq.stderr}`);
  log('audit: nix-hash of every package (the registration)');
  const nh = await runCommand('nix-hash', ['--type', 'sha256', '--base32', ...paths], process.env);
  if (nh.code !== 0) throw new Error(`nix-hash failed: ${nh.stderr}`);
  const hashes = nh.stdout.trim().split('\n');
  const records: string[] = [];
  for (let i = 0; i < paths.length; i++) {
    records.push(`${paths[i]}\nsha256:${hashes[i]}\n${await narSizeOf(paths[i]!)}\n\n${deps[i]!.length}\n${deps[i]!.map((x) => x + '\n').join('')}`);
  }
  writeFileSync(join(work, 'tree', 'nix-path-registration'), records.join(''));
  renameSync(squashfs, join(work, 'tree', 'nix-store.squashfs'));
  const iso = join(storeDir, `${hashPart(rand)}-nixos-bench.iso`);
  log('audit: xorriso -R -J');
  const x = await runCommand('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-J', '-o', iso, join(work, 'tree')], process.env);
  if (x.code !== 0) throw new Error(`xorriso failed: ${x.stderr}`);
  renameSync(join(work, 'tree', 'nix-store.squashfs'), squashfs);
  // The same store in a raw ext4 image twice its size (mkfs.ext4 -d), as make-disk-image lays it out.
  log('audit: mkfs.ext4 -d (the disk image)');
  mkdirSync(join(work, 'root', 'nix', 'store'), { recursive: true });
  for (const p of paths) renameSync(p, join(work, 'root', 'nix', 'store', p.slice(storeDir.length + 1)));
  const ext4 = join(storeDir, `${hashPart(rand)}-nixos-bench-disk.img`);
  const mk = await runCommand('mkfs.ext4', ['-q', '-F', '-d', join(work, 'root'), ext4, `${Math.ceil((2 * contentBytes) / MIB) + 64}M`], process.env);
  for (const p of paths) renameSync(join(work, 'root', 'nix', 'store', p.slice(storeDir.length + 1)), p);
  if (mk.code !== 0) throw new Error(`mkfs.ext4 failed: ${mk.stderr}`);
  const hashOf = async (f: string): Promise<string> => (await runCommand('nix-hash', ['--type', 'sha256', '--base32', f], process.env)).stdout.trim();
  const registration = join(AUDIT_DIR, 'registration');
  const fd = openSync(registration, 'w');
  writeSync(fd, records.join(''));
  for (const img of [iso, ext4]) writeSync(fd, `${img}\nsha256:${await hashOf(img)}\n${await narSizeOf(img)}\n\n${paths.length}\n${paths.map((p) => p + '\n').join('')}`);
  closeSync(fd);
  rmSync(work, { recursive: true, force: true });
  const f: Fixture = { version: 2, mib, storeDir, iso, squashfs, registration, ext4, packages: paths.length, contentBytes };
  writeFileSync(FIXTURE_FILE, JSON.stringify(f, null, 2));
  return f;
}

async function run(opts: BenchOptions): Promise<BenchResult> {
  const log = opts.log;
  for (const t of ['mksquashfs', 'unsquashfs', 'xorriso', 'nix-hash']) requireTool(t, `install ${t} (see .ci/setup)`);
  if (!existsSync(CLI)) throw new BenchSetupError(`the nix-seal CLI is missing: ${CLI} does not exist yet. Build it first (npm run build).`);
  const mib = Number(process.env.NIX_SEAL_BENCH_AUDIT_MIB ?? 1024);
  const fx = await ensureFixture(mib, log);
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NIX_')));
  const store = `registration:${fx.registration}`;
  const auditArgv = [process.execPath, CLI, 'audit', fx.iso, '--seal', fx.iso, '--store', store, '--strict'];
  const out = join(AUDIT_DIR, 'unsquashed');
  const manualArgv = ['sh', '-c', `rm -rf "$1" && unsquashfs -q -n -d "$1" "$2" && nix-hash --type sha256 --base32 "$1"/* > /dev/null`, 'sh', out, fx.squashfs];
  const ext4Argv = [process.execPath, CLI, 'audit', fx.ext4, '--seal', fx.ext4, '--store', store, '--strict'];
  const debugfsArgv = ['sh', '-c', `rm -rf "$1" && mkdir "$1" && debugfs -R "rdump /nix/store $1" "$2" 2>/dev/null && nix-hash --type sha256 --base32 "$1"/store/* > /dev/null`, 'sh', out, fx.ext4];

  const failures: string[] = [];
  log('audit: checking the verdicts (one run)');
  const check = await runCommand(auditArgv[0]!, [...auditArgv.slice(1), '--json'], env);
  if (check.code !== 0) failures.push(`audit --strict exited ${check.code}: ${check.stderr.trim().split('\n')[0] ?? ''}`);
  else {
    const j = JSON.parse(check.stdout) as { summary: Record<string, number> };
    if (j.summary.verified !== fx.packages) failures.push(`verified ${j.summary.verified} of ${fx.packages}`);
  }
  const checkExt4 = await runCommand(ext4Argv[0]!, [...ext4Argv.slice(1), '--json'], env);
  if (checkExt4.code !== 0) failures.push(`audit --strict of the ext4 image exited ${checkExt4.code}: ${checkExt4.stderr.trim().split('\n')[0] ?? ''}`);
  else {
    const j = JSON.parse(checkExt4.stdout) as { summary: Record<string, number> };
    if (j.summary.verified !== fx.packages) failures.push(`ext4: verified ${j.summary.verified} of ${fx.packages}`);
  }
  const runs = opts.runs ?? DEFAULT_RUNS;
  const stats = await hyperfine(
    [
      { name: 'nix-seal audit', argv: auditArgv },
      { name: 'unsquashfs -d + nix-hash', argv: manualArgv },
      { name: 'nix-seal audit --quick', argv: [...auditArgv, '--quick'] },
      { name: 'nix-seal audit (ext4 disk image)', argv: ext4Argv },
      { name: 'debugfs rdump + nix-hash', argv: debugfsArgv },
    ],
    { warmup: 1, runs, env, exportJson: join(AUDIT_DIR, 'hyperfine.json') },
  );
  rmSync(out, { recursive: true, force: true });
  const [audit, manual, quick, ext4Audit, debugfs] = stats as [typeof stats[0], typeof stats[0], typeof stats[0], typeof stats[0], typeof stats[0]];
  const ratio = audit!.median / manual!.median;
  const ext4Ratio = ext4Audit!.median / debugfs!.median;
  const ok = failures.length === 0 && ratio <= TARGET_RATIO && ext4Ratio <= TARGET_RATIO;
  const isoBytes = statSync(fx.iso).size;
  const decoder = NODE_MAJOR >= 24 ? 'zstd through node:zlib' : 'squashfs zstd blocks through libzstd as WebAssembly, zstddec';
  const command = NODE_MAJOR === 20 ? '`npm run bench -- audit` (`node dist/bench/run.js audit`)' : '`.cache/node24/bin/node dist/bench/run.js audit`';
  const markdown = [
    `### Audit, Node ${NODE_MAJOR} (v${process.versions.node}; ${decoder})`,
    '',
    `Command: ${command}, ${runs} timed runs after 1 warm-up, load ${loadavg()[0]!.toFixed(1)}.`,
    `Fixture: ${fx.packages} packages, ${(fx.contentBytes / MIB).toFixed(0)} MiB of contents; nix-store.squashfs (zstd, 1 MiB blocks) ${(statSync(fx.squashfs).size / MIB).toFixed(0)} MiB in a ${(isoBytes / MIB).toFixed(0)} MiB ISO.`,
    '',
    '| command | median | |',
    '|---|---|---|',
    `| nix-seal audit (every path verified) | ${fmtTime(audit!)} | |`,
    `| unsquashfs -d + nix-hash of every path | ${fmtTime(manual!)} | |`,
    `| nix-seal audit --quick | ${fmtTime(quick!)} | |`,
    `| ratio audit / (unsquashfs + nix-hash) | ${ratio.toFixed(2)} | target ≤ ${TARGET_RATIO} ${mark(ratio <= TARGET_RATIO)} |`,
    `| nix-seal audit of the ext4 disk image (${(statSync(fx.ext4).size / MIB).toFixed(0)} MiB, every path verified) | ${fmtTime(ext4Audit!)} | |`,
    `| debugfs rdump /nix/store + nix-hash of every path | ${fmtTime(debugfs!)} | |`,
    `| ratio audit / (debugfs rdump + nix-hash) | ${ext4Ratio.toFixed(2)} | target ≤ ${TARGET_RATIO} ${mark(ext4Ratio <= TARGET_RATIO)} |`,
    ...(failures.length > 0 ? ['', `Failures: ${failures.join('; ')}`] : []),
  ].join('\n');
  if (ratio > TARGET_RATIO) failures.push(`audit / manual = ${ratio.toFixed(2)} > ${TARGET_RATIO}`);
  if (ext4Ratio > TARGET_RATIO) failures.push(`ext4 audit / debugfs = ${ext4Ratio.toFixed(2)} > ${TARGET_RATIO}`);
  return { ok, failures, markdown, data: { fixture: fx, audit, manual, quick, ratio, ext4Audit, debugfs, ext4Ratio } };
}

export const auditBenchmark: Benchmark & { sectionKey(): string } = {
  name: 'audit',
  description: 'audit of a 1 GiB NixOS-like ISO (zstd squashfs) and of a raw ext4 disk image with verification vs unsquashfs -d / debugfs rdump + nix-hash',
  run,
  /** The zstd decoder differs by Node (libzstd as WebAssembly on 20, node:zlib on 24): each Node its own section. */
  sectionKey: () => (NODE_MAJOR === 20 ? 'audit' : `audit-node${NODE_MAJOR}`),
};
