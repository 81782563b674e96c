/**
 * Shared plumbing for the benchmarks: running commands, hyperfine, GNU time, machine facts,
 * `.bench/results.json` and the generated sections of BENCHMARKS.md.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, REPO_ROOT } from './gen-db.js';

export { BENCH_DIR, REPO_ROOT };
export const RESULTS_FILE = join(BENCH_DIR, 'results.json');
export const BENCHMARKS_MD = join(REPO_ROOT, 'BENCHMARKS.md');

/** Options every benchmark gets from run.ts. */
export interface BenchOptions {
  /** Overrides the number of timed runs per command (hyperfine --runs). */
  runs?: number | undefined;
  log: (s: string) => void;
}

export interface BenchResult {
  /** False when the benchmark itself failed (e.g. wrong output): run.ts exits non-zero. */
  ok: boolean;
  failures: string[];
  /** Markdown for the terminal and for BENCHMARKS.md (without markers). */
  markdown: string;
  /** Figures for .bench/results.json. */
  data: unknown;
}

export interface Benchmark {
  name: string;
  description: string;
  run(opts: BenchOptions): Promise<BenchResult>;
}

/** A benchmark could not even start (missing tool, missing CLI): reported without a stack. */
export class BenchSetupError extends Error {}

export function which(cmd: string): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() || undefined : undefined;
}

export function requireTool(cmd: string, hint: string): string {
  const p = cmd.startsWith('/') ? (existsSync(cmd) ? cmd : undefined) : which(cmd);
  if (!p) throw new BenchSetupError(`${cmd} is missing: ${hint}`);
  return p;
}

export interface RunOutput {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** Runs a command to completion, collecting its output ('inherit': both streams go to our stderr, keeping stdout for the report); never throws for a non-zero exit. */
export function runCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdio: 'pipe' | 'inherit' = 'pipe'): Promise<RunOutput> {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, args, { env, stdio: stdio === 'pipe' ? ['ignore', 'pipe', 'pipe'] : ['ignore', 2, 2] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout?.on('data', (b: Buffer) => out.push(b));
    p.stderr?.on('data', (b: Buffer) => err.push(b));
    p.on('error', rej);
    p.on('close', (code) =>
      res({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        seconds: Number(process.hrtime.bigint() - t0) / 1e9,
      }),
    );
  });
}

export interface TimedRun extends RunOutput {
  /** GNU time's "Maximum resident set size", in kB. */
  maxRssKb: number;
}

/** Runs `argv` under `/usr/bin/time -v`: its output plus peak RSS. */
export async function runWithTime(argv: string[], env: NodeJS.ProcessEnv): Promise<TimedRun> {
  const time = requireTool('/usr/bin/time', 'install GNU time (apt-get install -y time)');
  const r = await runCommand(time, ['-v', ...argv], env);
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`/usr/bin/time -v gave no "Maximum resident set size" for ${argv.join(' ')}:\n${r.stderr}`);
  // Drop GNU time's own report from stderr, keep the command's.
  const stderr = r.stderr.replace(/\tCommand being timed:[\s\S]*$/, '').replace(/Command exited with non-zero status \d+\n?/, '');
  return { ...r, stderr, maxRssKb: Number(m[1]) };
}

export interface HyperfineStats {
  command: string;
  mean: number;
  stddev: number;
  median: number;
  min: number;
  max: number;
  runs: number;
}

interface HyperfineJson {
  results: { command: string; mean: number; stddev: number | null; median: number; min: number; max: number; times?: number[] }[];
}

/** Quotes a word for hyperfine's shell-words splitting (used with --shell=none). */
function shellWord(w: string): string {
  return /^[A-Za-z0-9_\-./=:,@+%]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/**
 * Times commands with hyperfine (no intermediate shell), all under the same environment.
 * Progress goes to the terminal; the figures come from --export-json.
 */
export async function hyperfine(
  commands: { name: string; argv: string[] }[],
  opts: { warmup: number; runs: number; env: NodeJS.ProcessEnv; exportJson: string },
): Promise<HyperfineStats[]> {
  const hf = requireTool('hyperfine', 'install hyperfine (apt-get install -y hyperfine)');
  const args = ['--shell=none', '--warmup', String(opts.warmup), '--runs', String(opts.runs), '--export-json', opts.exportJson, '--style', 'basic'];
  for (const c of commands) args.push('--command-name', c.name, c.argv.map(shellWord).join(' '));
  const r = await runCommand(hf, args, opts.env, 'inherit');
  if (r.code !== 0) throw new Error(`hyperfine failed (exit ${r.code}): ${commands.map((c) => c.argv.join(' ')).join(' | ')}`);
  const json = JSON.parse(readFileSync(opts.exportJson, 'utf8')) as HyperfineJson;
  return json.results.map((x) => ({
    command: x.command,
    mean: x.mean,
    stddev: x.stddev ?? 0,
    median: x.median,
    min: x.min,
    max: x.max,
    runs: x.times?.length ?? opts.runs,
  }));
}

export interface MachineInfo {
  date: string;
  nproc: number;
  cpu: string;
  memoryGB: number;
  node: string;
  nix: string;
  hyperfine: string;
  /** 1-minute load average when the benchmark started (other work on the machine skews timings). */
  loadAvg1: number;
}

function firstLine(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return r.status === 0 ? (r.stdout.split('\n')[0] ?? '').trim() : 'unavailable';
}

export function machineInfo(): MachineInfo {
  let cpu = cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1]!.trim();
  } catch {
    // not Linux: keep os.cpus()
  }
  const nproc = Number(firstLine('nproc', [])) || cpus().length;
  return {
    date: new Date().toISOString(),
    nproc,
    cpu,
    memoryGB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    nix: firstLine('nix-store', ['--version']),
    hyperfine: firstLine('hyperfine', ['--version']),
    loadAvg1: Math.round((loadavg()[0] ?? 0) * 100) / 100,
  };
}

export function machineMarkdown(m: MachineInfo): string {
  return [
    `Last run: ${m.date.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}`,
    '',
    `- CPU: ${m.cpu}, \`nproc\` = ${m.nproc}, ${m.memoryGB} GB RAM`,
    `- Node ${m.node}; ${m.nix}; ${m.hyperfine}`,
    `- Load average (1 min) when the run started: ${m.loadAvg1}`,
  ].join('\n');
}

/** Merges one benchmark's figures into .bench/results.json (other benchmarks' entries stay). */
export function saveResults(name: string, machine: MachineInfo, data: unknown): void {
  mkdirSync(BENCH_DIR, { recursive: true });
  let all: Record<string, unknown> = {};
  try {
    all = JSON.parse(readFileSync(RESULTS_FILE, 'utf8')) as Record<string, unknown>;
  } catch {
    // first run or unreadable: start afresh
  }
  all.machine = machine;
  all[name] = { date: machine.date, ...(data as object) };
  writeFileSync(RESULTS_FILE, JSON.stringify(all, null, 2) + '\n');
}

const INTRO = `# Benchmarks

Generated by \`npm run bench\` (\`tsc -p tsconfig.json && node dist/bench/run.js\`); run one
benchmark with \`node dist/bench/run.js <name>\` (e.g. \`closure\`). The sections between the
\`<!-- …:start -->\` / \`<!-- …:end -->\` markers are rewritten by each run; the raw figures are
in \`.bench/results.json\` (git-ignored).

What is measured: wall-clock time (hyperfine, 1 warm-up run, mean ± σ over the timed runs) of
\`nix-seal\` against the real Nix on the same input, after checking that both print the same
output, and nix-seal's peak memory (GNU \`time -v\`, maximum resident set size). The input is a
synthetic but nixpkgs-like Nix database of 200,000 store paths built once by
\`bench/gen-db.ts\` with the real \`nix-store --load-db\` into a private store under
\`.bench/db-200k/\`.

## Machine

<!-- bench-machine:start -->
<!-- bench-machine:end -->
`;

/** Replaces the text between `<!-- key:start -->` and `<!-- key:end -->`, appending the markers if absent. */
export function replaceSection(doc: string, key: string, body: string): string {
  const start = `<!-- ${key}:start -->`;
  const end = `<!-- ${key}:end -->`;
  const block = `${start}\n${body.trimEnd()}\n${end}`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i >= 0 && j > i) return doc.slice(0, i) + block + doc.slice(j + end.length);
  return doc.trimEnd() + '\n\n' + block + '\n';
}

/** Writes a benchmark's section of BENCHMARKS.md (creating the file with its intro if missing). */
export function updateBenchmarksMd(sectionKey: string, body: string, machine: MachineInfo): void {
  let doc = existsSync(BENCHMARKS_MD) ? readFileSync(BENCHMARKS_MD, 'utf8') : INTRO;
  doc = replaceSection(doc, 'bench-machine', machineMarkdown(machine));
  doc = replaceSection(doc, sectionKey, body);
  writeFileSync(BENCHMARKS_MD, doc);
}

// Formatting -----------------------------------------------------------------------------------

export function fmtSeconds(s: number): string {
  if (s < 1) return `${(s * 1000).toFixed(s < 0.1 ? 1 : 0)} ms`;
  return `${s.toFixed(s < 10 ? 2 : 1)} s`;
}

export function fmtTime(h: HyperfineStats): string {
  return `${fmtSeconds(h.mean)} ± ${fmtSeconds(h.stddev)}`;
}

export function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}

export function fmtMB(kb: number): string {
  return `${((kb * 1024) / 1e6).toFixed(0)} MB`;
}

export function mark(ok: boolean): string {
  return ok ? '✅' : '❌';
}

/** The seeded PRNG the tests use too: generated fixtures are the same on every machine. */
export { prng } from '../test/support/prng.js';
