/**
 * Closure benchmark: `nix-seal closure <root> --store local?store=…&state=…` against
 * `nix-store -qR <root>` on the 200k-path database from gen-db.ts, for three roots
 * (closures of ~250, ~45,000 and ~190,000 paths).
 *
 * For each root: first one run of each under GNU time, whose outputs must be identical line for
 * line (same paths, same order) — a difference fails the benchmark loudly — and which give the
 * peak RSS; then hyperfine (1 warm-up, a few timed runs) of the two. The small closure is mostly
 * Node's start-up, so `node -e 0` is timed beside it and the target is on what nix-seal adds to
 * that; on Node ≥ 22.1 also nix-seal without Node's compile cache (bin/nix-seal.js switches it on
 * there; NODE_DISABLE_COMPILE_CACHE=1 turns it off), to show what the cache buys.
 *
 * Runs on the Node that runs it (process.execPath): `node dist/bench/run.js closure` for Node 20,
 * `.cache/node24/bin/node dist/bench/run.js closure` for Node 24; each Node has its own section.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDb, nixEnv, NIX_ARGS, readDbInfo, type RootInfo } from './gen-db.js';
import {
  BENCH_DIR,
  BenchSetupError,
  fmtInt,
  fmtMB,
  fmtSeconds,
  fmtTime,
  hyperfine,
  mark,
  REPO_ROOT,
  requireTool,
  runWithTime,
  type Benchmark,
  type BenchOptions,
  type BenchResult,
  type HyperfineStats,
} from './lib.js';

/** The CLI under test; BENCH_CLI=/path/to/nix-seal.js overrides it (e.g. to compare builds). */
export const CLI = process.env.BENCH_CLI || join(REPO_ROOT, 'bin', 'nix-seal.js');

type Size = 'small' | 'medium' | 'large';
const NODE_MAJOR = Number(process.versions.node.split('.')[0]);
const [nodeMajor, nodeMinor] = process.versions.node.split('.').map(Number) as [number, number];
/** module.enableCompileCache / NODE_COMPILE_CACHE: Node ≥ 22.1. */
const hasCompileCache = nodeMajor > 22 || (nodeMajor === 22 && nodeMinor >= 1);
const SIZES: Size[] = ['small', 'medium', 'large'];
const DEFAULT_RUNS: Record<Size, number> = { small: 10, medium: 5, large: 3 };

/** Targets: speedup = nix-store time / nix-seal time. */
export const TARGETS = {
  small: { maxSlowdown: 1.5 }, // (nix-seal − node -e 0) / nix-store ≤ 1.5
  medium: { minSpeedup: 10 },
  large: { minSpeedup: 20 },
  largePeakRssBytes: 300e6,
} as const;

interface SizeResult {
  root: string;
  closureSize: number;
  outputsMatch: boolean;
  mismatch?: string;
  nixStore?: HyperfineStats;
  nixSeal?: HyperfineStats;
  /** nix-store mean / nix-seal mean. */
  speedup?: number;
  /** Small closure: `node -e 0`, and nix-seal with NODE_DISABLE_COMPILE_CACHE=1 (Node ≥ 22.1). */
  nodeBaseline?: HyperfineStats;
  nixSealCompileCache?: HyperfineStats;
  /** Small closure: (nix-seal − node -e 0) / nix-store. */
  addedRatio?: number;
  /** Mean CPU seconds (user + system) per run, by command name: steadier than wall-clock on a busy machine. */
  cpu?: Record<string, number>;
  targetMet?: boolean;
  peakRssKb: { nixStore: number; nixSeal: number };
}

/** Describes how two closure listings differ, or undefined when identical. */
export function diffListings(nix: string[], seal: string[]): string | undefined {
  if (nix.length === seal.length && nix.every((l, i) => l === seal[i])) return undefined;
  const lines: string[] = [`nix-store -qR printed ${nix.length} paths, nix-seal closure ${seal.length}.`];
  const a = new Set(nix);
  const b = new Set(seal);
  const missing = nix.filter((p) => !b.has(p));
  const extra = seal.filter((p) => !a.has(p));
  if (b.size !== seal.length) lines.push(`nix-seal printed ${seal.length - b.size} duplicate lines.`);
  if (missing.length || extra.length) {
    lines.push(`Different sets: ${missing.length} missing from nix-seal, ${extra.length} extra.`);
    for (const p of missing.slice(0, 5)) lines.push(`  missing: ${p}`);
    for (const p of extra.slice(0, 5)) lines.push(`  extra:   ${p}`);
  } else {
    const i = nix.findIndex((l, k) => l !== seal[k]);
    lines.push(`Same set, different order: first difference at line ${i + 1}.`);
    for (let k = Math.max(0, i - 2); k < Math.min(nix.length, i + 3); k++) {
      lines.push(`  ${k + 1}: nix-store ${nix[k]}`);
      lines.push(`  ${k + 1}: nix-seal  ${seal[k]}`);
    }
  }
  return lines.join('\n');
}

/** user + system CPU seconds (means) per command, from hyperfine's JSON export. */
function cpuSeconds(file: string): Record<string, number> {
  const json = JSON.parse(readFileSync(file, 'utf8')) as { results: { command: string; user?: number; system?: number }[] };
  return Object.fromEntries(json.results.map((x) => [x.command, (x.user ?? NaN) + (x.system ?? NaN)]));
}

function loud(log: (s: string) => void, title: string, body: string): void {
  const bar = '#'.repeat(100);
  log(`\n${bar}\n### BENCHMARK FAILURE: ${title}\n${body.replace(/^/gm, '### ')}\n${bar}\n`);
}

function splitLines(s: string): string[] {
  const lines = s.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

async function runClosure(opts: BenchOptions): Promise<BenchResult> {
  const { log } = opts;
  requireTool('nix-store', 'install Nix (apt-get install -y nix-bin)');
  requireTool('hyperfine', 'install hyperfine (apt-get install -y hyperfine)');
  requireTool('/usr/bin/time', 'install GNU time (apt-get install -y time)');
  if (!existsSync(CLI)) {
    throw new BenchSetupError(
      `the nix-seal CLI is missing: ${CLI} does not exist yet, so there is nothing to compare nix-store -qR with. ` +
        'Build it first (npm run build), then rerun the benchmark.',
    );
  }
  await ensureDb({ log });
  const db = readDbInfo();
  const env = nixEnv(db);
  const storeUrl = `local?store=${db.storeDir}&state=${db.stateDir}`;
  const nixArgv = (root: string): string[] => ['nix-store', '-qR', root, ...NIX_ARGS];
  const sealArgv = (root: string): string[] => [process.execPath, CLI, 'closure', root, '--store', storeUrl];
  // nix-seal must find the store from --store alone: give it no NIX_* variables.
  const sealEnv: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NIX_')));

  const failures: string[] = [];
  const results = {} as Record<Size, SizeResult>;
  for (const size of SIZES) {
    const root: RootInfo = db.roots[size];
    log(`\nclosure/${size}: ${fmtInt(root.size)} paths, root ${root.path}`);
    const nixRun = await runWithTime(nixArgv(root.path), env);
    if (nixRun.code !== 0) throw new Error(`nix-store -qR ${root.path} failed (exit ${nixRun.code}):\n${nixRun.stderr}`);
    const nixOut = splitLines(nixRun.stdout);
    if (nixOut.length !== root.size) {
      throw new Error(`nix-store -qR printed ${nixOut.length} paths, roots.json says ${root.size}: the database in ${db.dir} is stale; delete it`);
    }
    const sealRun = await runWithTime(sealArgv(root.path), sealEnv);
    const r: SizeResult = {
      root: root.path,
      closureSize: root.size,
      outputsMatch: false,
      peakRssKb: { nixStore: nixRun.maxRssKb, nixSeal: sealRun.maxRssKb },
    };
    results[size] = r;
    if (sealRun.code !== 0) {
      r.mismatch = `nix-seal exited with ${sealRun.code}:\n${sealRun.stderr.trim()}`;
      failures.push(`${size}: nix-seal closure failed (exit ${sealRun.code})`);
      loud(log, `nix-seal closure failed on the ${size} root`, `${sealArgv(root.path).join(' ')}\n${r.mismatch}`);
      continue; // hyperfine would abort on the failing command anyway
    }
    const diff = diffListings(nixOut, splitLines(sealRun.stdout));
    if (diff !== undefined) {
      r.mismatch = diff;
      failures.push(`${size}: nix-seal closure output differs from nix-store -qR`);
      loud(log, `nix-seal closure output differs from nix-store -qR (${size} root)`, diff);
    } else {
      r.outputsMatch = true;
      log(`closure/${size}: outputs identical (${fmtInt(nixOut.length)} lines)`);
    }
    const runs = opts.runs ?? DEFAULT_RUNS[size];
    const extra: { name: string; argv: string[] }[] = [];
    if (size === 'small') {
      extra.push({ name: 'node -e 0', argv: [process.execPath, '-e', '0'] });
      if (hasCompileCache) {
        extra.push({ name: 'nix-seal closure, NODE_DISABLE_COMPILE_CACHE=1 (small)', argv: ['env', 'NODE_DISABLE_COMPILE_CACHE=1', ...sealArgv(root.path)] });
      }
    }
    const hfJson = join(BENCH_DIR, `hyperfine-closure-${size}-node${NODE_MAJOR}.json`);
    const [nixT, sealT, baseT, cacheT] = await hyperfine(
      [
        { name: `nix-store -qR (${size})`, argv: nixArgv(root.path) },
        { name: `nix-seal closure (${size})`, argv: sealArgv(root.path) },
        ...extra,
      ],
      { warmup: 1, runs, env, exportJson: hfJson },
    );
    r.cpu = cpuSeconds(hfJson);
    if (!nixT || !sealT) throw new Error('hyperfine returned fewer results than commands');
    r.nixStore = nixT;
    r.nixSeal = sealT;
    r.speedup = nixT.mean / sealT.mean;
    if (size === 'small') {
      if (!baseT) throw new Error('hyperfine returned no node -e 0 result');
      r.nodeBaseline = baseT;
      if (cacheT) r.nixSealCompileCache = cacheT;
      r.addedRatio = (sealT.mean - baseT.mean) / nixT.mean;
      r.targetMet = r.addedRatio <= TARGETS.small.maxSlowdown;
    } else {
      r.targetMet = r.speedup >= (size === 'medium' ? TARGETS.medium.minSpeedup : TARGETS.large.minSpeedup);
    }
  }

  const large = results.large;
  const memTargetMet = large.peakRssKb.nixSeal * 1024 < TARGETS.largePeakRssBytes;
  const targetText = (size: Size): string =>
    size === 'small' ? `(nix-seal − node)/nix ≤ ${TARGETS.small.maxSlowdown}` : `≥ ${size === 'medium' ? TARGETS.medium.minSpeedup : TARGETS.large.minSpeedup}×`;
  /** CPU seconds of nix-store and nix-seal, and their ratio (small: what nix-seal adds to node -e 0, over nix-store). */
  const cpuCell = (size: Size): string => {
    const c = results[size].cpu;
    const nix = c?.[`nix-store -qR (${size})`];
    const seal = c?.[`nix-seal closure (${size})`];
    if (nix === undefined || seal === undefined) return 'n/a';
    const base = c?.['node -e 0'];
    const ratio = size === 'small' && base !== undefined ? `(nix-seal − node)/nix ${((seal - base) / nix).toFixed(2)}` : `${(nix / seal).toFixed(1)}×`;
    return `${fmtSeconds(nix)} / ${fmtSeconds(seal)} (${ratio})`;
  };
  const rows = SIZES.map((size) => {
    const r = results[size];
    const speed =
      r.speedup === undefined
        ? 'n/a'
        : size === 'small'
          ? `${r.speedup.toFixed(2)}× ((nix-seal − node)/nix **${r.addedRatio?.toFixed(2)}**)`
          : `**${r.speedup.toFixed(1)}×**`;
    const target = r.targetMet === undefined ? `${targetText(size)} ❌` : `${targetText(size)} ${mark(r.targetMet)}`;
    return (
      `| ${size} | ${fmtInt(r.closureSize)} | ${r.nixStore ? fmtTime(r.nixStore) : 'n/a'} | ${r.nixSeal ? fmtTime(r.nixSeal) : 'n/a'} | ` +
      `${speed} | ${target} | ${cpuCell(size)} | ${fmtMB(r.peakRssKb.nixSeal)} / ${fmtMB(r.peakRssKb.nixStore)} | ${r.outputsMatch ? 'identical ✅' : '**DIFFERENT** ❌'} |`
    );
  });
  const info = db;
  const allTargets = SIZES.every((s) => results[s].targetMet === true) && memTargetMet;
  const md = [
    `## Closure: \`nix-seal closure\` vs \`nix-store -qR\` (Node ${NODE_MAJOR})`,
    '',
    `Run: \`${NODE_MAJOR === 20 ? 'node' : `.cache/node${NODE_MAJOR}/bin/node`} dist/bench/run.js closure\` (Node ${process.versions.node}; \`npm run bench\` runs it on the machine's Node).`,
    '',
    `Database: ${fmtInt(info.paths)} paths, ${fmtInt(info.references)} references, db.sqlite ${(info.dbBytes / 1e6).toFixed(0)} MB ` +
      `(\`nix-store --load-db\` took ${info.loadDbSeconds.toFixed(0)} s, once). Commands: \`nix-store -qR ROOT\` and ` +
      `\`node bin/nix-seal.js closure ROOT --store 'local?store=…&state=…'\`. ` +
      `Timed runs: ${SIZES.map((s) => `${s} ${results[s].nixStore?.runs ?? '–'}`).join(', ')}, after 1 warm-up.`,
    '',
    '| closure | paths | nix-store -qR | nix-seal closure | speedup | target | CPU nix-store / nix-seal (ratio) | peak RSS nix-seal / nix-store | output |',
    '|---|--:|--:|--:|--:|---|--:|--:|---|',
    ...rows,
    '',
    `Peak memory of nix-seal on the large closure: ${fmtMB(large.peakRssKb.nixSeal)} (target < ${TARGETS.largePeakRssBytes / 1e6} MB) ${mark(memTargetMet)}.`,
    '',
    ...(results.small.nodeBaseline
      ? [
          `Small closure, start-up: \`node -e 0\` ${fmtTime(results.small.nodeBaseline)} (CPU ${fmtSeconds(results.small.cpu?.['node -e 0'] ?? NaN)}); nix-seal adds ` +
            `${fmtSeconds(results.small.nixSeal!.mean - results.small.nodeBaseline.mean)} to it, nix-store -qR takes ${fmtTime(results.small.nixStore!)}` +
            (results.small.nixSealCompileCache
              ? `; without Node's compile cache (NODE_DISABLE_COMPILE_CACHE=1) nix-seal takes ${fmtTime(results.small.nixSealCompileCache)}, CPU ` +
                `${fmtSeconds(results.small.cpu?.['nix-seal closure, NODE_DISABLE_COMPILE_CACHE=1 (small)'] ?? NaN)} (with it, as bin/nix-seal.js runs: ${fmtTime(results.small.nixSeal!)}, CPU ${fmtSeconds(results.small.cpu?.['nix-seal closure (small)'] ?? NaN)}).`
              : '.'),
        ]
      : []),
    '',
    failures.length
      ? `**BENCHMARK FAILED**: ${failures.join('; ')}.`
      : allTargets
        ? 'Outputs identical for all three roots; all targets met.'
        : 'Outputs identical for all three roots; some targets not met (❌).',
    ...SIZES.filter((s) => results[s].mismatch !== undefined).flatMap((s) => [
      '',
      `Output of nix-seal on the ${s} root (\`${results[s].root}\`):`,
      '',
      '```',
      results[s].mismatch!,
      '```',
    ]),
  ].join('\n');

  return {
    ok: failures.length === 0,
    failures,
    markdown: md,
    data: {
      ok: failures.length === 0,
      failures,
      db: { dir: db.dir, paths: info.paths, references: info.references, dbBytes: info.dbBytes, loadDbSeconds: info.loadDbSeconds },
      targets: TARGETS,
      targetsMet: { small: results.small.targetMet ?? false, medium: results.medium.targetMet ?? false, large: results.large.targetMet ?? false, memory: memTargetMet },
      sizes: results,
    },
  };
}

export const closureBenchmark: Benchmark & { sectionKey(): string } = {
  name: 'closure',
  /** Each Node its own section of BENCHMARKS.md and .bench/results.json (Node 20 keeps the old one). */
  sectionKey: () => (NODE_MAJOR === 20 ? 'closure' : `closure-node${NODE_MAJOR}`),
  description: 'nix-seal closure vs nix-store -qR on 250 / 45k / 190k-path closures',
  run: runClosure,
};
