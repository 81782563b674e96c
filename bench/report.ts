/**
 * Report benchmark: `nix-seal report` on a 10,000-path closure (a generated registration, sealed
 * with '*.iso') and on the 200,000-path database's largest closure (gen-db.ts). For each: the
 * command's time and peak RSS (GNU time), beside `nix-seal info` on the same closure (the
 * analysis alone, so the ratio is what the page costs), the file size, and the time until the
 * page is interactive in headless chromium (navigation start → the script's `report-ready`
 * mark, i.e. list, search and treemap usable), then how long a search takes to filter the list.
 * Budgets (issue 14): 10,000 paths: file ≤ 8 MB, interactive ≤ 2 s.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CHROMIUM, launchChromium } from '../test/support/chromium.js';
import { writeRandomRegistration } from '../test/support/random-registration.js';
import { CLI } from './closure.js';
import { ensureDb, readDbInfo } from './gen-db.js';
import { BENCH_DIR, BenchSetupError, fmtInt, fmtMB, fmtSeconds, mark, requireTool, runWithTime, type Benchmark, type BenchOptions, type BenchResult } from './lib.js';

export const REPORT_TARGETS = { fileBytes: 8e6, interactiveSeconds: 2 } as const;

interface PageTiming {
  /** navigation start → report-ready, seconds, per run, in a fresh browser. */
  interactive: number[];
  /** The same, opened a second time in that browser. */
  warm: number[];
  /** typing a query → the list filtered, seconds (first run). */
  search: number;
  query: string;
  matches: number;
}

interface CaseResult {
  paths: number;
  root: string;
  reportSeconds: number;
  reportRssKb: number;
  infoSeconds: number;
  fileBytes: number;
  page?: PageTiming;
  pageError?: string | undefined;
}

async function pageTiming(file: string, runs: number, query: string, timeoutMs: number): Promise<PageTiming> {
  const interactive: number[] = [];
  const warm: number[] = [];
  let search = NaN;
  let matches = -1;
  for (let i = 0; i < runs; i++) {
    const b = await launchChromium();
    try {
      const page = await b.ctx.newPage();
      page.setDefaultTimeout(timeoutMs);
      await page.goto(pathToFileURL(file).href, { timeout: timeoutMs });
      await page.waitForSelector('body[data-ready=true]', { timeout: timeoutMs });
      const ready = (await page.evaluate("performance.getEntriesByName('report-ready')[0].startTime")) as number;
      interactive.push(ready / 1000);
      // Opened again in the same browser: what a second look costs (caches warm).
      const again = await b.ctx.newPage();
      await again.goto(pathToFileURL(file).href, { timeout: timeoutMs });
      await again.waitForSelector('body[data-ready=true]', { timeout: timeoutMs });
      warm.push(((await again.evaluate("performance.getEntriesByName('report-ready')[0].startTime")) as number) / 1000);
      await again.close();
      if (i === 0) {
        const t = (await page.evaluate(
          `(function () { var s = document.getElementById('search'); var t0 = performance.now(); s.value = ${JSON.stringify(query)}; s.dispatchEvent(new Event('input')); return performance.now() - t0; })()`,
        )) as number;
        search = t / 1000;
        const count = (await page.textContent('#count')) ?? '';
        matches = Number(count.split(' ')[0]);
      }
    } finally {
      await b.close();
    }
  }
  return { interactive, warm, search, query, matches };
}

async function measure(args: string[], file: string, runs: number, query: string, timeoutMs: number, log: (s: string) => void): Promise<CaseResult> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NIX_')));
  const info = await runWithTime([process.execPath, CLI, 'info', ...args], env);
  if (info.code !== 0) throw new Error(`nix-seal info failed: ${info.stderr}`);
  const rep = await runWithTime([process.execPath, CLI, 'report', ...args, '-o', file], env);
  if (rep.code !== 0) throw new Error(`nix-seal report failed: ${rep.stderr}`);
  const paths = Number(/full closure:\s+([\d,]+) paths/.exec(info.stdout)?.[1]?.replace(/,/g, '') ?? NaN);
  const r: CaseResult = { paths, root: args[0]!, reportSeconds: rep.seconds, reportRssKb: rep.maxRssKb, infoSeconds: info.seconds, fileBytes: statSync(file).size };
  log(`report: ${fmtInt(paths)} paths: report ${fmtSeconds(rep.seconds)} (info ${fmtSeconds(info.seconds)}), ${(r.fileBytes / 1e6).toFixed(1)} MB`);
  try {
    r.page = await pageTiming(file, runs, query, timeoutMs);
    log(`report: interactive after ${r.page.interactive.map(fmtSeconds).join(', ')}; search ${fmtSeconds(r.page.search)}`);
  } catch (e) {
    r.pageError = (e as Error).message.split('\n')[0];
    log(`report: the page did not open: ${r.pageError}`);
  }
  return r;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function runReport(opts: BenchOptions): Promise<BenchResult> {
  const { log } = opts;
  requireTool('/usr/bin/time', 'install GNU time (apt-get install -y time)');
  requireTool(CHROMIUM, 'install Debian chromium (apt-get install -y chromium)');
  if (!existsSync(CLI)) throw new BenchSetupError(`the nix-seal CLI is missing: ${CLI}; build it first (npm run build)`);
  mkdirSync(BENCH_DIR, { recursive: true });
  const runs = opts.runs ?? 3;

  const reg = writeRandomRegistration(join(BENCH_DIR, 'report-10k.reg'), 10_000, { seed: 7 });
  const small = await measure([reg.root, '--store', `registration:${reg.file}`, '--seal', '*.iso'], join(BENCH_DIR, 'report-10k.html'), runs, 'pkg-77', 60_000, log);

  await ensureDb({ log });
  const db = readDbInfo();
  const store = `local?store=${db.storeDir}&state=${db.stateDir}`;
  const large = await measure([db.roots.large.path, '--store', store], join(BENCH_DIR, 'report-large.html'), 1, 'lib', 600_000, log);

  const tti = small.page ? median(small.page.interactive) : NaN;
  const failures: string[] = [];
  const fileOk = small.fileBytes <= REPORT_TARGETS.fileBytes;
  const ttiOk = tti <= REPORT_TARGETS.interactiveSeconds;
  if (!small.page) failures.push(`10,000 paths: the page did not open (${small.pageError})`);
  if (!large.page) failures.push(`200k database: the page did not open (${large.pageError})`);
  const row = (name: string, c: CaseResult): string =>
    `| ${name} | ${fmtInt(c.paths)} | ${fmtSeconds(c.reportSeconds)} (info: ${fmtSeconds(c.infoSeconds)}, ×${(c.reportSeconds / c.infoSeconds).toFixed(1)}) | ${fmtMB(c.reportRssKb)} | ${(c.fileBytes / 1e6).toFixed(1)} MB | ` +
    `${c.page ? `${fmtSeconds(median(c.page.interactive))} (${c.page.interactive.length} run${c.page.interactive.length === 1 ? '' : 's'})` : `did not open: ${c.pageError}`} | ` +
    `${c.page ? fmtSeconds(median(c.page.warm)) : 'n/a'} | ` +
    `${c.page ? `${fmtSeconds(c.page.search)} ('${c.page.query}': ${fmtInt(c.page.matches)} rows)` : 'n/a'} |`;
  const md = [
    '## Report: `nix-seal report` and its page in headless chromium',
    '',
    "Commands: `node bin/nix-seal.js report ROOT --store … -o FILE` (and `info`, the analysis alone, on the same closure) under GNU time; the page opened from file:// in Debian's chromium (headless, playwright-core); *interactive* is navigation start → the page's `report-ready` mark (list, search, treemap usable), median of the runs, each in a fresh browser (the budget's figure), then *opened again* in that browser; *search* is typing a query → the list filtered.",
    '10,000 paths: `test/support/random-registration.ts` (seed 7), sealed with `*.iso`. 200k: the closure benchmark database, largest root, no seal.',
    '',
    '| closure | paths | report (info) | peak RSS | file | interactive (fresh browser) | opened again | search |',
    '|---|--:|--:|--:|--:|--:|--:|--:|',
    row('10,000-path registration', small),
    row('200k database, largest root', large),
    '',
    `Load average at the end: ${loadavg().map((x) => x.toFixed(1)).join(', ')} (the machine is shared; figures vary with it).`,
    '',
    `Budgets for 10,000 paths: file ≤ ${REPORT_TARGETS.fileBytes / 1e6} MB ${mark(fileOk)}, interactive ≤ ${REPORT_TARGETS.interactiveSeconds} s ${mark(ttiOk)}.`,
    failures.length ? `\n**BENCHMARK FAILED**: ${failures.join('; ')}.` : '',
  ].join('\n');
  return { ok: failures.length === 0, failures, markdown: md, data: { small, large, targets: REPORT_TARGETS, budgetsMet: { file: fileOk, interactive: ttiOk } } };
}

export const reportBenchmark: Benchmark = {
  name: 'report',
  description: 'nix-seal report: file size, time to interactive in headless chromium (10,000 paths; the 200k database’s largest closure)',
  run: runReport,
};
