/**
 * nar-hash benchmark: `nix-seal hash PATH` against `nix-hash --type sha256 --base32 PATH` (both
 * hash the NAR serialisation of PATH), in the same run, on
 *
 * - one 1 GiB file of random bytes (throughput: GB/s of contents hashed), and
 * - a tree of 20,000 small files (~200 MB; sizes log-uniform from 64 B to 70 kB, 10% executable,
 *   one symlink per directory) in 20 × 10 directories (per-file overhead).
 *
 * The inputs are generated once under `.bench/nar-hash/` (reused while `fixture.json` matches).
 * First one run of each under GNU time: the hashes must be equal, and nix-seal's NAR size must be
 * `nix-store --dump PATH | wc -c` (a difference fails the benchmark loudly); then hyperfine times
 * both (1 warm-up). nix-seal's fixed cost (node start-up, loading the CLI) is timed on an empty
 * file and reported next to the throughput.
 */
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { CLI } from './closure.js';
import { hyperfineCpu } from './initrd.js';
import {
  BENCH_DIR,
  BenchSetupError,
  fmtInt,
  fmtMB,
  fmtTime,
  hyperfine,
  machineInfo,
  mark,
  requireTool,
  runWithTime,
  type Benchmark,
  type BenchOptions,
  type BenchResult,
  type HyperfineStats,
  prng,
} from './lib.js';

export const NAR_DIR = join(BENCH_DIR, 'nar-hash');
const FIXTURE_FILE = join(NAR_DIR, 'fixture.json');
const FIXTURE_VERSION = 1;
const BIG_BYTES = 1 << 30;
const TREE = { top: 20, sub: 10, filesPerDir: 100, minSize: 64, maxSize: 70_000, execShare: 0.1, seed: 0x4e_41_52 };
const DEFAULT_RUNS = 5;

export const TARGETS = {
  /** nix-seal hash on the 1 GiB file, end to end (node start-up included). */
  minBigGBps: 1.0,
} as const;

interface Fixture {
  version: number;
  big: { path: string; bytes: number };
  tree: { path: string; files: number; symlinks: number; dirs: number; bytes: number; params: typeof TREE };
  empty: string;
  seconds: number;
}


function readFixture(): Fixture | undefined {
  try {
    const f = JSON.parse(readFileSync(FIXTURE_FILE, 'utf8')) as Fixture;
    if (f.version !== FIXTURE_VERSION || JSON.stringify(f.tree.params) !== JSON.stringify(TREE)) return undefined;
    if (!existsSync(f.big.path) || statSync(f.big.path).size !== BIG_BYTES || !existsSync(f.tree.path) || !existsSync(f.empty)) return undefined;
    return f;
  } catch {
    return undefined;
  }
}

export function ensureNarFixture(log: (s: string) => void): Fixture {
  const cached = readFixture();
  if (cached) {
    log(`nar-hash: reusing the inputs in ${NAR_DIR}`);
    return cached;
  }
  log(`nar-hash: generating a 1 GiB random file and a tree of ${fmtInt(TREE.top * TREE.sub * TREE.filesPerDir)} files in ${NAR_DIR} …`);
  const t0 = process.hrtime.bigint();
  rmSync(NAR_DIR, { recursive: true, force: true });
  mkdirSync(NAR_DIR, { recursive: true });
  const big = join(NAR_DIR, 'big.bin');
  const chunk = Buffer.allocUnsafe(16 << 20);
  const fd = openSync(big, 'w');
  try {
    for (let done = 0; done < BIG_BYTES; done += chunk.length) writeSync(fd, randomFillSync(chunk), 0, Math.min(chunk.length, BIG_BYTES - done));
  } finally {
    closeSync(fd);
  }
  const tree = join(NAR_DIR, 'tree');
  const rnd = prng(TREE.seed);
  const pool = randomFillSync(Buffer.allocUnsafe(TREE.maxSize + 4096));
  let files = 0;
  let bytes = 0;
  let symlinks = 0;
  let dirs = 1;
  const logRange = Math.log(TREE.maxSize / TREE.minSize);
  for (let i = 0; i < TREE.top; i++) {
    for (let j = 0; j < TREE.sub; j++) {
      const dir = join(tree, `pkg-${String(i).padStart(2, '0')}`, `lib-${j}`);
      mkdirSync(dir, { recursive: true });
      dirs += j === 0 ? 2 : 1;
      let first = '';
      for (let k = 0; k < TREE.filesPerDir; k++) {
        const size = Math.floor(TREE.minSize * Math.exp(rnd() * logRange));
        const off = Math.floor(rnd() * 4096);
        const name = `file-${String(k).padStart(3, '0')}.${['so', 'h', 'py', 'txt', 'dat'][k % 5]}`;
        first ||= name;
        const p = join(dir, name);
        // Distinct contents per file (a random window of the pool, with the file's number in front).
        const buf = pool.subarray(off, off + size);
        buf.writeUInt32LE(files, 0);
        writeFileSync(p, buf);
        if (rnd() < TREE.execShare) chmodSync(p, 0o755);
        files++;
        bytes += size;
      }
      symlinkSync(first, join(dir, 'link-to-first'));
      symlinks++;
    }
  }
  const empty = join(NAR_DIR, 'empty');
  writeFileSync(empty, '');
  const f: Fixture = {
    version: FIXTURE_VERSION,
    big: { path: big, bytes: BIG_BYTES },
    tree: { path: tree, files, symlinks, dirs, bytes, params: TREE },
    empty,
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
  };
  writeFileSync(FIXTURE_FILE, JSON.stringify(f, null, 2) + '\n');
  log(`nar-hash: inputs generated in ${f.seconds.toFixed(0)} s`);
  return f;
}

/** Bytes of `nix-store --dump PATH`, counted as they stream. */
function narSizeByNix(path: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const p = spawn('nix-store', ['--dump', path], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let n = 0;
    let err = '';
    p.stdout.on('data', (b: Buffer) => (n += b.length));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(n) : reject(new Error(`nix-store --dump ${path} failed (exit ${code}): ${err.trim()}`))));
  });
}

function loud(log: (s: string) => void, title: string, body: string): void {
  const bar = '#'.repeat(100);
  log(`\n${bar}\n### BENCHMARK FAILURE: ${title}\n${body.replace(/^/gm, '### ')}\n${bar}\n`);
}

type Case = 'big' | 'tree';

interface CaseResult {
  path: string;
  /** Bytes of file contents (what GB/s is computed from). */
  contentBytes: number;
  narSize?: number;
  nixHash?: string;
  sealHash?: string;
  outputsMatch: boolean;
  mismatch?: string;
  peakRssKb: { nixHash: number; nixSeal: number };
  nixHashT?: HyperfineStats;
  nixSealT?: HyperfineStats;
  /** Mean CPU seconds (user + system). */
  cpuSeconds?: { nixHash: number; nixSeal: number };
  gbps?: { nixHash: number; nixSeal: number };
  /** nix-hash mean / nix-seal mean (> 1: nix-seal is faster). */
  speedup?: number;
}

async function runNarHash(opts: BenchOptions): Promise<BenchResult> {
  const { log } = opts;
  requireTool('nix-hash', 'install Nix (apt-get install -y nix-bin)');
  requireTool('nix-store', 'install Nix (apt-get install -y nix-bin)');
  requireTool('hyperfine', 'install hyperfine (apt-get install -y hyperfine)');
  requireTool('/usr/bin/time', 'install GNU time (apt-get install -y time)');
  if (!existsSync(CLI)) throw new BenchSetupError(`the nix-seal CLI is missing: ${CLI} does not exist yet. Build it first (npm run build).`);
  const loadStart = loadavg().map((x) => Math.round(x * 100) / 100);
  const fx = ensureNarFixture(log);
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NIX_')));
  const nixArgv = (p: string): string[] => ['nix-hash', '--type', 'sha256', '--base32', p];
  const sealArgv = (p: string): string[] => [process.execPath, CLI, 'hash', p];
  const runs = opts.runs ?? DEFAULT_RUNS;
  const failures: string[] = [];
  const results = {} as Record<Case, CaseResult>;

  for (const c of ['big', 'tree'] as Case[]) {
    const path = c === 'big' ? fx.big.path : fx.tree.path;
    const contentBytes = c === 'big' ? fx.big.bytes : fx.tree.bytes;
    log(`\nnar-hash/${c}: ${path} (${(contentBytes / 1e9).toFixed(2)} GB of contents)`);
    const nixRun = await runWithTime(nixArgv(path), env);
    if (nixRun.code !== 0) throw new Error(`nix-hash failed (exit ${nixRun.code}):\n${nixRun.stderr}`);
    const sealRun = await runWithTime(sealArgv(path), env);
    const r: CaseResult = { path, contentBytes, outputsMatch: false, peakRssKb: { nixHash: nixRun.maxRssKb, nixSeal: sealRun.maxRssKb } };
    results[c] = r;
    r.nixHash = nixRun.stdout.trim();
    if (sealRun.code !== 0) {
      r.mismatch = `nix-seal hash exited with ${sealRun.code}:\n${sealRun.stderr.trim()}`;
      failures.push(`${c}: nix-seal hash failed`);
      loud(log, `nix-seal hash failed on ${path}`, r.mismatch);
      continue;
    }
    const narSize = await narSizeByNix(path, env);
    r.narSize = narSize;
    const want = `sha256:${r.nixHash} ${narSize} ${path}`;
    r.sealHash = sealRun.stdout.trim();
    if (r.sealHash !== want) {
      r.mismatch = `nix-hash + nix-store --dump | wc -c: ${want}\nnix-seal hash:                     ${r.sealHash}`;
      failures.push(`${c}: nix-seal hash differs from nix-hash`);
      loud(log, `nix-seal hash output differs from nix-hash (${c})`, r.mismatch);
    } else {
      r.outputsMatch = true;
      log(`nar-hash/${c}: hashes equal (sha256:${r.nixHash}), NAR size ${fmtInt(narSize)} as nix-store --dump`);
    }
    const [nixT, sealT] = await hyperfine(
      [
        { name: `nix-hash (${c})`, argv: nixArgv(path) },
        { name: `nix-seal hash (${c})`, argv: sealArgv(path) },
      ],
      { warmup: 1, runs, env, exportJson: join(BENCH_DIR, `hyperfine-nar-hash-${c}.json`) },
    );
    if (!nixT || !sealT) throw new Error('hyperfine returned fewer results than commands');
    const [nixCpu, sealCpu] = hyperfineCpu(join(BENCH_DIR, `hyperfine-nar-hash-${c}.json`));
    if (nixCpu && sealCpu) r.cpuSeconds = { nixHash: nixCpu.user + nixCpu.system, nixSeal: sealCpu.user + sealCpu.system };
    r.nixHashT = nixT;
    r.nixSealT = sealT;
    r.gbps = { nixHash: contentBytes / nixT.mean / 1e9, nixSeal: contentBytes / sealT.mean / 1e9 };
    r.speedup = nixT.mean / sealT.mean;
  }

  log('\nnar-hash: fixed cost (empty file)');
  const [nixEmpty, sealEmpty] = await hyperfine(
    [
      { name: 'nix-hash (empty file)', argv: nixArgv(fx.empty) },
      { name: 'nix-seal hash (empty file)', argv: sealArgv(fx.empty) },
    ],
    { warmup: 1, runs: Math.max(runs, 5), env, exportJson: join(BENCH_DIR, 'hyperfine-nar-hash-empty.json') },
  );
  const [nixEmptyCpu, sealEmptyCpu] = hyperfineCpu(join(BENCH_DIR, 'hyperfine-nar-hash-empty.json'));
  const loadEnd = loadavg().map((x) => Math.round(x * 100) / 100);
  const bigGbps = results.big.gbps?.nixSeal;
  const bigMet = bigGbps !== undefined && bigGbps >= TARGETS.minBigGBps;
  const data = {
    ok: failures.length === 0,
    failures,
    fixture: fx,
    targets: TARGETS,
    targetsMet: { bigGBps: bigMet },
    cases: results,
    fixedCost: {
      nixHash: nixEmpty,
      nixSeal: sealEmpty,
      cpuSeconds: nixEmptyCpu && sealEmptyCpu ? { nixHash: nixEmptyCpu.user + nixEmptyCpu.system, nixSeal: sealEmptyCpu.user + sealEmptyCpu.system } : undefined,
    },
    loadAvg: { start: loadStart, end: loadEnd },
  };
  return { ok: failures.length === 0, failures, markdown: narMarkdown(data), data };
}

function narMarkdown(d: {
  failures: string[];
  fixture: Fixture;
  cases: Record<Case, CaseResult>;
  fixedCost: { nixHash?: HyperfineStats | undefined; nixSeal?: HyperfineStats | undefined; cpuSeconds?: { nixHash: number; nixSeal: number } | undefined };
  targetsMet: { bigGBps: boolean };
  loadAvg: { start: number[]; end: number[] };
}): string {
  const m = machineInfo();
  const fx = d.fixture;
  const row = (c: Case, label: string): string => {
    const r = d.cases[c];
    const g = r.gbps;
    const cpu = r.cpuSeconds;
    return (
      `| ${label} | ${r.nixHashT ? fmtTime(r.nixHashT) : 'n/a'} | ${cpu ? `${cpu.nixHash.toFixed(2)} s` : 'n/a'} | ${g ? g.nixHash.toFixed(2) : 'n/a'} | ` +
      `${r.nixSealT ? fmtTime(r.nixSealT) : 'n/a'} | ${cpu ? `${cpu.nixSeal.toFixed(2)} s` : 'n/a'} | ${g ? `**${g.nixSeal.toFixed(2)}**` : 'n/a'} | ` +
      `${r.speedup !== undefined ? (1 / r.speedup).toFixed(2) : 'n/a'} | ${cpu ? (cpu.nixSeal / cpu.nixHash).toFixed(2) : 'n/a'} | ` +
      `${fmtMB(r.peakRssKb.nixSeal)} / ${fmtMB(r.peakRssKb.nixHash)} | ${r.outputsMatch ? 'equal ✅' : '**DIFFERENT** ❌'} |`
    );
  };
  const fixed = d.fixedCost;
  const big = d.cases.big;
  const hashOnly =
    big.nixSealT && fixed.nixSeal && big.nixSealT.mean > fixed.nixSeal.mean ? big.contentBytes / (big.nixSealT.mean - fixed.nixSeal.mean) / 1e9 : undefined;
  return [
    '## NAR hash: `nix-seal hash` vs `nix-hash --type sha256 --base32`',
    '',
    `Run: \`node dist/bench/run.js nar-hash\` (part of \`npm run bench\`), ${m.date.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}; ` +
      `${m.cpu}, ${m.nproc} cores, ${m.memoryGB} GB RAM; Node ${m.node}; ${m.nix}. ` +
      `Load average (1/5/15 min) at the start ${d.loadAvg.start.join(' / ')}, at the end ${d.loadAvg.end.join(' / ')} ` +
      '(other jobs were running: wall-clock figures are noisy).',
    '',
    `Inputs (generated once under \`.bench/nar-hash/\`, in the page cache while timed): a 1 GiB file of random bytes, and a tree of ` +
      `${fmtInt(fx.tree.files)} files (${(fx.tree.bytes / 1e6).toFixed(0)} MB, sizes log-uniform 64 B–70 kB, 10% executable) plus ` +
      `${fmtInt(fx.tree.symlinks)} symlinks in ${fmtInt(fx.tree.dirs)} directories. Commands: \`nix-hash --type sha256 --base32 PATH\` and ` +
      `\`node bin/nix-seal.js hash PATH\`; both hash the NAR serialisation. The hashes must be equal and nix-seal's NAR size must be ` +
      `\`nix-store --dump PATH | wc -c\`. hyperfine, 1 warm-up, ${big.nixSealT?.runs ?? '–'} timed runs. GB/s = bytes of file contents / mean wall-clock time ` +
      '(process start-up included).',
    '',
    '| input | nix-hash wall (mean ± σ) | CPU | GB/s | nix-seal hash wall | CPU | GB/s | nix-seal / nix-hash (wall) | (CPU) | peak RSS nix-seal / nix-hash | hashes |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|',
    row('big', '1 GiB file'),
    row('tree', `${fmtInt(fx.tree.files)} files, ${(fx.tree.bytes / 1e6).toFixed(0)} MB`),
    '',
    `- nix-seal on the 1 GiB file: **${big.gbps ? big.gbps.nixSeal.toFixed(2) : 'n/a'} GB/s** end to end (target ≥ ${TARGETS.minBigGBps} GB/s) ${mark(d.targetsMet.bigGBps)}.`,
    `- Fixed cost (an empty file): nix-seal ${fixed.nixSeal ? fmtTime(fixed.nixSeal) : 'n/a'} (node start-up, loading the CLI), nix-hash ${fixed.nixHash ? fmtTime(fixed.nixHash) : 'n/a'}` +
      (fixed.cpuSeconds ? ` (CPU ${fixed.cpuSeconds.nixSeal.toFixed(2)} s vs ${fixed.cpuSeconds.nixHash.toFixed(2)} s)` : '') +
      (hashOnly !== undefined ? `; without it nix-seal hashes the 1 GiB file at ~${hashOnly.toFixed(2)} GB/s (wall).` : '.'),
    ...(big.cpuSeconds
      ? [
          `- Per CPU-second (less sensitive to the machine's load than wall-clock): nix-seal ${(big.contentBytes / big.cpuSeconds.nixSeal / 1e9).toFixed(2)} GB/s, ` +
            `nix-hash ${(big.contentBytes / big.cpuSeconds.nixHash / 1e9).toFixed(2)} GB/s on the 1 GiB file.`,
        ]
      : []),
    '',
    ...(['big', 'tree'] as Case[])
      .filter((c) => d.cases[c].mismatch !== undefined)
      .flatMap((c) => [`Mismatch on ${c}:`, '', '```', d.cases[c].mismatch!, '```', '']),
    d.failures.length ? `**BENCHMARK FAILED**: ${d.failures.join('; ')}.` : d.targetsMet.bigGBps ? 'Hashes equal; target met.' : 'Hashes equal; target not met (❌).',
  ].join('\n');
}

export const narHashBenchmark: Benchmark = {
  name: 'nar-hash',
  description: 'nix-seal hash vs nix-hash --type sha256 --base32 on a 1 GiB file and 20,000 small files',
  run: runNarHash,
};
