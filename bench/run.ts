/**
 * Runs the benchmarks: `node dist/bench/run.js [name…] [--runs N]` (all of them without names).
 * Each benchmark is a module exporting a `Benchmark`; add new ones (initrd, hashing, …) to
 * BENCHMARKS below. Each prints a markdown section, merges its figures into .bench/results.json
 * and rewrites its section of BENCHMARKS.md (between `<!-- NAME-bench:start/end -->`).
 * Exit status 1 when a benchmark fails (wrong output, missing CLI or tool).
 */
import { auditBenchmark } from './audit.js';
import { binaryCacheBenchmark } from './binary-cache.js';
import { closureBenchmark } from './closure.js';
import { imageSourceBenchmark } from './image-source.js';
import { initrdBenchmark } from './initrd.js';
import { narHashBenchmark } from './nar-hash.js';
import { reportBenchmark } from './report.js';
import { scanBenchmark } from './scan.js';
import { suggestBenchmark } from './suggest.js';
import { BenchSetupError, BENCHMARKS_MD, machineInfo, RESULTS_FILE, saveResults, updateBenchmarksMd, type Benchmark } from './lib.js';

const BENCHMARKS: Benchmark[] = [closureBenchmark, initrdBenchmark, narHashBenchmark, scanBenchmark, suggestBenchmark, auditBenchmark, imageSourceBenchmark, reportBenchmark, binaryCacheBenchmark];

function usage(): string {
  return [
    'usage: node dist/bench/run.js [NAME…] [--runs N]',
    '',
    'benchmarks:',
    ...BENCHMARKS.map((b) => `  ${b.name.padEnd(10)} ${b.description}`),
    '',
    '--runs N   timed runs per command (default: per benchmark)',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const names: string[] = [];
  let runs: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '-h' || a === '--help') {
      console.log(usage());
      return 0;
    } else if (a === '--runs') {
      runs = Number(argv[++i]);
      if (!Number.isInteger(runs) || runs < 2) {
        console.error('--runs needs an integer ≥ 2');
        return 2;
      }
    } else if (a.startsWith('-')) {
      console.error(`unknown option ${a}\n\n${usage()}`);
      return 2;
    } else names.push(a);
  }
  const unknown = names.filter((n) => !BENCHMARKS.some((b) => b.name === n));
  if (unknown.length) {
    console.error(`unknown benchmark ${unknown.join(', ')}\n\n${usage()}`);
    return 2;
  }
  const selected = names.length ? BENCHMARKS.filter((b) => names.includes(b.name)) : BENCHMARKS;
  const log = (s: string): void => void process.stderr.write(s + '\n');

  let status = 0;
  const summary: string[] = [];
  for (const b of selected) {
    log(`\n=== benchmark: ${b.name} — ${b.description}`);
    try {
      const machine = machineInfo();
      const res = await b.run({ runs, log });
      // A benchmark whose figures depend on the Node running it names its own section.
      const key = (b as { sectionKey?: () => string }).sectionKey?.() ?? b.name;
      saveResults(key, machine, res.data);
      updateBenchmarksMd(`${key}-bench`, res.markdown, machine);
      console.log('\n' + res.markdown + '\n');
      if (!res.ok) {
        status = 1;
        summary.push(`${b.name}: FAILED — ${res.failures.join('; ')}`);
      } else summary.push(`${b.name}: ok`);
    } catch (e) {
      status = 1;
      const msg = e instanceof BenchSetupError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e);
      console.error(`\nbenchmark ${b.name} could not run: ${msg}\n`);
      summary.push(`${b.name}: FAILED — could not run (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
    }
  }
  log(`\nResults: ${RESULTS_FILE}; report: ${BENCHMARKS_MD}`);
  for (const s of summary) log(`  ${s}`);
  return status;
}

process.exitCode = await main(process.argv.slice(2));
