/**
 * image-source benchmark: `nix-seal closure --store image:ISO` on a NixOS-like ISO whose
 * nix-store.squashfs (zstd) holds 2,000 store paths and their registration, against
 * `nix-seal closure ROOT` on a real Nix database holding the same registration (made with
 * `nix-store --load-db`), and `nix-store -qR` on it, in the same run. Target: the image source
 * costs under 1 s more than the database.
 *
 * The fixture is generated once (deterministic PRNG) under `.bench/image-source-v1/`.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { CLI } from './closure.js';
import { BENCH_DIR, BenchSetupError, fmtTime, hyperfine, mark, prng, requireTool, runCommand, type Benchmark, type BenchOptions, type BenchResult } from './lib.js';
import { encodeNix32 } from '../src/store/nix32.js';

const DIR = join(BENCH_DIR, 'image-source-v1');
const FIXTURE_FILE = join(DIR, 'fixture.json');
const PATHS = 2000;
const TARGET_EXTRA_SECONDS = 1;
const DEFAULT_RUNS = 10;

interface Fixture {
  version: number;
  storeDir: string;
  stateDir: string;
  iso: string;
  root: string;
}

async function ensureFixture(log: (s: string) => void): Promise<Fixture> {
  if (existsSync(FIXTURE_FILE)) {
    const f = JSON.parse(readFileSync(FIXTURE_FILE, 'utf8')) as Fixture;
    if (f.version === 1 && existsSync(f.iso) && existsSync(join(f.stateDir, 'db', 'db.sqlite'))) return f;
  }
  rmSync(DIR, { recursive: true, force: true });
  const storeDir = join(DIR, 'store');
  const stateDir = join(DIR, 'state');
  const tree = join(DIR, 'tree');
  const sq = join(DIR, 'sq');
  mkdirSync(storeDir, { recursive: true });
  mkdirSync(tree, { recursive: true });
  mkdirSync(sq, { recursive: true });
  const rand = prng(0x1a6e);
  log(`image-source: generating ${PATHS} store paths`);
  const paths: string[] = [];
  const records: string[] = [];
  for (let i = 0; i < PATHS; i++) {
    const h = Buffer.alloc(20);
    for (let k = 0; k < 20; k++) h[k] = Math.floor(rand() * 256);
    const p = `${storeDir}/${encodeNix32(h)}-pkg${i}`;
    const refs = i === PATHS - 1 ? paths.slice(-200) : [...new Set(Array.from({ length: Math.floor(rand() * 5) }, () => paths[Math.floor(rand() * paths.length)]!).filter(Boolean))].sort();
    mkdirSync(join(sq, p.slice(storeDir.length + 1), 'bin'), { recursive: true });
    writeFileSync(join(sq, p.slice(storeDir.length + 1), 'bin', `pkg${i}`), refs.map((r) => `${r}\n`).join(''));
    // narHash/narSize: this benchmark times the graph, not the copies; any well-formed values do.
    records.push(`${p}\nsha256:${encodeNix32(Buffer.alloc(32, i % 256))}\n${1000 + i}\n\n${refs.length}\n${refs.map((r) => r + '\n').join('')}`);
    paths.push(p);
  }
  const registration = records.join('');
  writeFileSync(join(sq, 'nix-path-registration'), registration);
  log('image-source: mksquashfs (zstd), xorriso');
  const m = await runCommand('mksquashfs', [sq, join(tree, 'nix-store.squashfs'), '-comp', 'zstd', '-all-root', '-noappend', '-quiet', '-no-progress'], process.env);
  if (m.code !== 0) throw new Error(`mksquashfs failed: ${m.stderr}`);
  const iso = join(DIR, 'nixos.iso');
  const x = await runCommand('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-J', '-o', iso, tree], process.env);
  if (x.code !== 0) throw new Error(`xorriso failed: ${x.stderr}`);
  rmSync(sq, { recursive: true, force: true });
  log('image-source: nix-store --load-db');
  const env = { ...process.env, NIX_STORE_DIR: storeDir, NIX_STATE_DIR: stateDir, NIX_REMOTE: '' };
  const init = await runCommand('nix-store', ['--init'], env);
  if (init.code !== 0) throw new Error(`nix-store --init failed: ${init.stderr}`);
  const loadFile = join(DIR, 'registration');
  writeFileSync(loadFile, registration);
  const load = await runCommand('sh', ['-c', 'nix-store --load-db < "$1"', 'sh', loadFile], env);
  if (load.code !== 0) throw new Error(`nix-store --load-db failed: ${load.stderr}`);
  const f: Fixture = { version: 1, storeDir, stateDir, iso, root: paths[paths.length - 1]! };
  writeFileSync(FIXTURE_FILE, JSON.stringify(f, null, 2));
  return f;
}

async function run(opts: BenchOptions): Promise<BenchResult> {
  for (const t of ['mksquashfs', 'xorriso', 'nix-store']) requireTool(t, `install ${t} (see .ci/setup)`);
  if (!existsSync(CLI)) throw new BenchSetupError(`the nix-seal CLI is missing: ${CLI} does not exist yet. Build it first (npm run build).`);
  const fx = await ensureFixture(opts.log);
  const env: NodeJS.ProcessEnv = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NIX_'))), NIX_STORE_DIR: fx.storeDir, NIX_STATE_DIR: fx.stateDir, NIX_REMOTE: '' };
  const dbArgv = [process.execPath, CLI, 'closure', fx.root];
  const imageArgv = [process.execPath, CLI, 'closure', fx.root, '--store', `image:${fx.iso}`];
  const failures: string[] = [];
  const a = await runCommand(dbArgv[0]!, dbArgv.slice(1), env);
  const b = await runCommand(imageArgv[0]!, imageArgv.slice(1), env);
  const c = await runCommand('nix-store', ['-qR', fx.root], env);
  if (a.code !== 0 || b.code !== 0 || c.code !== 0) failures.push(`a command failed: ${a.stderr}${b.stderr}${c.stderr}`);
  else if (a.stdout !== b.stdout || a.stdout !== c.stdout) failures.push('the closures differ between the database, the image and nix-store -qR');
  const runs = opts.runs ?? DEFAULT_RUNS;
  const stats = await hyperfine(
    [
      { name: 'nix-seal closure (database)', argv: dbArgv },
      { name: 'nix-seal closure --store image:ISO', argv: imageArgv },
      { name: 'nix-store -qR', argv: ['nix-store', '-qR', fx.root] },
    ],
    { warmup: 1, runs, env, exportJson: join(DIR, 'hyperfine.json') },
  );
  const [db, image, nix] = stats as [(typeof stats)[0], (typeof stats)[0], (typeof stats)[0]];
  const extra = image.median - db.median;
  const ok = failures.length === 0 && extra < TARGET_EXTRA_SECONDS;
  if (extra >= TARGET_EXTRA_SECONDS) failures.push(`the image source costs ${extra.toFixed(2)} s more than the database`);
  const markdown = [
    `Command: \`npm run bench -- image-source\` (\`node dist/bench/run.js image-source\`), ${runs} timed runs after 1 warm-up, load ${loadavg()[0]!.toFixed(1)}.`,
    `Fixture: ${PATHS} store paths in a zstd nix-store.squashfs inside an ISO, with their registration; the same registration loaded into a Nix database with \`nix-store --load-db\`. All three print the same ${PATHS}-path closure.`,
    '',
    '| command | median |',
    '|---|---|',
    `| nix-seal closure ROOT (database) | ${fmtTime(db)} |`,
    `| nix-seal closure ROOT --store image:ISO | ${fmtTime(image)} |`,
    `| nix-store -qR ROOT | ${fmtTime(nix)} |`,
    `| image − database | ${(extra * 1000).toFixed(0)} ms (target < ${TARGET_EXTRA_SECONDS * 1000} ms ${mark(extra < TARGET_EXTRA_SECONDS)}) |`,
  ].join('\n');
  return { ok, failures, markdown, data: { db, image, nix, extra } };
}

export const imageSourceBenchmark: Benchmark = {
  name: 'image-source',
  description: 'closure --store image: on a 2,000-path NixOS-like ISO vs the same closure from a Nix database',
  run,
};
