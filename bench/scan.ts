/**
 * Reference scanner benchmark: throughput of src/scan's ReferenceScanner (Nix's reference search,
 * every occurrence reported) on 1 GiB inputs of several kinds, fed in 4 MiB chunks like a file:
 *
 * - random:   random bytes (compressed data): mostly bytes outside the nix32 alphabet;
 * - mixed:    segments of random binary, zeros, English and C-like text, UTF-16 text and
 *             store-path lines (like an ELF file with its string tables and RPATHs);
 * - text:     English and C-like text only (many short runs of nix32 letters);
 * - paths:    store-path lines (`/nix/store/<hash>-name-1.2\n`): base32-heavy;
 * - nix32:    random nix32 characters without a break: the worst case (every window is in the
 *             alphabet, so only the candidate filter can move the window).
 *
 * Candidate hashes planted in the inputs are counted: the scanner must report each of them (and
 * nothing else). For comparison, on a 64 MiB sample of each: Nix's own search loop ported to JS
 * (references.cc, a set lookup for every all-nix32 window) and a plain JS loop over every byte
 * (XOR), which shows what this machine (and its current load) gives a byte loop. Then the whole
 * path: scanPath over a 1 GiB mixed file on disk (page cache warm).
 *
 *   node dist/bench/scan.js [--size MiB] [--runs N] [--candidates N]
 *
 * Writes a markdown table to stdout (progress to stderr). Exports `scanBenchmark` for bench/run.ts.
 */
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HashPartSet, ReferenceScanner } from '../src/scan/reference-scanner.js';
import { scanPath } from '../src/scan/scan-path.js';
import { NIX32_ALPHABET } from '../src/store/nix32.js';
import type { Benchmark, BenchOptions, BenchResult } from './lib.js';
import { prng } from '../test/support/prng.js';

const MiB = 1 << 20;
const CHUNK = 4 * MiB;
const SAMPLE = 64 * MiB;
/** Nix's loop looks up a string for every window of nix32 text: a smaller sample keeps it bearable. */
const NIX_SAMPLE = 8 * MiB;
/** The speed target: GB/s on the mixed input. */
export const TARGET_GBPS = 2;

const KINDS = ['random', 'mixed', 'text', 'paths', 'nix32'] as const;
type Kind = (typeof KINDS)[number];

/** Deterministic PRNG, so every run scans the same bytes. */
const rng = prng;

const WORDS = (
  'the of and to in is that for it as was with be by on not he this are or his from at which but have an they you ' +
  'were her she there been one all we their has would when if so no what out up said about into than them can only ' +
  'int char void static const return struct unsigned size_t if else while for break case switch sizeof NULL ' +
  'printf malloc free memcpy strlen error warning config shared library path usr lib bin share include'
).split(' ');
const NAMES = ['glibc-2.39-52', 'gcc-13.3.0-lib', 'zlib-1.3.1', 'openssl-3.0.14', 'bash-5.2p32', 'python3-3.12.5', 'systemd-256.4', 'perl-5.38.2'];

const NIX32_BYTES = Buffer.from(NIX32_ALPHABET, 'latin1');
const POOL = 32 * MiB;

/** Text, UTF-16 text and store-path lines, generated once: inputs copy slices of them. */
interface Pools {
  text: Buffer;
  utf16: Buffer;
  paths: Buffer;
  /** Start of each line of `paths`, plus its length at the end. */
  lineStarts: Int32Array;
}

function makePools(rand: () => number): Pools {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const parts: string[] = [];
  let len = 0;
  while (len < POOL) {
    const w = pick(WORDS) + (rand() < 0.1 ? (rand() < 0.5 ? ';\n' : '.\n') : rand() < 0.1 ? '(' : ' ');
    parts.push(w);
    len += w.length;
  }
  const text = Buffer.from(parts.join(''), 'latin1').subarray(0, POOL);
  const utf16 = Buffer.from(text.subarray(0, POOL / 2).toString('latin1'), 'utf16le');
  const paths = Buffer.alloc(POOL);
  const starts: number[] = [];
  let pos = 0;
  const hash = Buffer.alloc(32);
  for (;;) {
    const name = `-${pick(NAMES)}/lib\n`;
    if (pos + 11 + 32 + name.length > POOL) break;
    starts.push(pos);
    pos += paths.write('/nix/store/', pos, 'latin1');
    for (let i = 0; i < 32; i++) hash[i] = NIX32_BYTES[Math.floor(rand() * 32)]!;
    pos += hash.copy(paths, pos);
    pos += paths.write(name, pos, 'latin1');
  }
  starts.push(pos);
  return { text, utf16, paths: paths.subarray(0, pos), lineStarts: Int32Array.from(starts) };
}

class Builder {
  readonly buf: Buffer;
  pos = 0;
  planted = 0;
  constructor(
    size: number,
    readonly rand: () => number,
    readonly candidates: Buffer[],
    readonly pools: Pools,
  ) {
    this.buf = Buffer.alloc(size);
  }
  get full(): boolean {
    return this.pos >= this.buf.length;
  }
  private room(n: number): number {
    return Math.min(n, this.buf.length - this.pos);
  }
  binary(n: number): void {
    const m = this.room(n);
    randomFillSync(this.buf, this.pos, m);
    this.pos += m;
  }
  zeros(n: number): void {
    this.pos += this.room(n); // Buffer.alloc: already zero
  }
  /** Random nix32 characters. */
  nix32(n: number): void {
    const m = this.room(n);
    randomFillSync(this.buf, this.pos, m);
    for (let i = this.pos; i < this.pos + m; i++) this.buf[i] = NIX32_BYTES[this.buf[i]! & 31]!;
    this.pos += m;
  }
  /** A slice of a pool, starting at a random even offset (so UTF-16 stays aligned). */
  private fromPool(pool: Buffer, n: number): void {
    let m = this.room(n);
    while (m > 0) {
      const from = Math.floor((this.rand() * pool.length) / 2) * 2;
      const k = Math.min(m, pool.length - from);
      pool.copy(this.buf, this.pos, from, from + k);
      this.pos += k;
      m -= k;
    }
  }
  text(n: number): void {
    this.fromPool(this.pools.text, n);
  }
  utf16(n: number): void {
    this.fromPool(this.pools.utf16, n);
  }
  /** Whole store-path lines (spaces fill the rest); `plantRate` of them get a candidate's hash. */
  paths(n: number, plantRate: number): void {
    const end = this.pos + this.room(n);
    const { paths, lineStarts } = this.pools;
    const lines = lineStarts.length - 1;
    while (this.pos < end) {
      let a = Math.floor(this.rand() * lines);
      const from = lineStarts[a]!;
      let b = a;
      while (b < lines && lineStarts[b + 1]! - from <= end - this.pos) b++;
      if (b === a) {
        this.buf.fill(0x20, this.pos, end);
        this.pos = end;
        break;
      }
      const base = this.pos - from;
      paths.copy(this.buf, this.pos, from, lineStarts[b]!);
      this.pos += lineStarts[b]! - from;
      for (; a < b; a++) {
        if (this.rand() >= plantRate) continue;
        this.candidates[Math.floor(this.rand() * this.candidates.length)]!.copy(this.buf, base + lineStarts[a]! + 11);
        this.planted++;
      }
    }
  }
}

let pools: Pools | undefined;

/** A `size`-byte input of the given kind, and how many candidate occurrences were planted in it. */
export function makeInput(kind: Kind, size: number, candidates: string[], seed = 1): { bytes: Buffer; planted: number } {
  pools ??= makePools(rng(12345));
  const rand = rng(seed * 7919 + KINDS.indexOf(kind));
  const b = new Builder(
    size,
    rand,
    candidates.map((c) => Buffer.from(c, 'latin1')),
    pools,
  );
  const seg = (): number => 256 + Math.floor(rand() * 64 * 1024);
  switch (kind) {
    case 'random':
      b.binary(size);
      break;
    case 'mixed':
      while (!b.full) {
        const r = rand();
        if (r < 0.4) b.binary(seg());
        else if (r < 0.55) b.zeros(seg());
        else if (r < 0.85) b.text(seg());
        else if (r < 0.9) b.utf16(seg());
        else b.paths(Math.floor(seg() / 8), 0.3);
      }
      break;
    case 'text':
      b.text(size);
      break;
    case 'paths':
      b.paths(size, 0.01);
      break;
    case 'nix32':
      b.nix32(size);
      // A candidate at the end of every MiB, inside the run of nix32 characters.
      for (let o = MiB - 32; o + 32 <= size; o += MiB) {
        b.candidates[b.planted % b.candidates.length]!.copy(b.buf, o);
        b.planted++;
      }
      break;
  }
  return { bytes: b.buf, planted: b.planted };
}

interface Timing {
  wallGBps: number;
  cpuGBps: number;
}

/** Runs `fn` `runs` times; the best wall-clock and CPU-time throughputs for `bytes` bytes. */
function timeIt(bytes: number, runs: number, fn: () => void): Timing {
  let best: Timing = { wallGBps: 0, cpuGBps: 0 };
  for (let r = 0; r < runs; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    fn();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const cu = process.cpuUsage(c0);
    const cpu = (cu.user + cu.system) / 1e6;
    best = { wallGBps: Math.max(best.wallGBps, bytes / wall / 1e9), cpuGBps: Math.max(best.cpuGBps, bytes / Math.max(cpu, 1e-6) / 1e9) };
  }
  return best;
}

async function timeItAsync(bytes: number, runs: number, fn: () => Promise<void>): Promise<Timing> {
  let best: Timing = { wallGBps: 0, cpuGBps: 0 };
  for (let r = 0; r < runs; r++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await fn();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const cu = process.cpuUsage(c0);
    const cpu = (cu.user + cu.system) / 1e6;
    best = { wallGBps: Math.max(best.wallGBps, bytes / wall / 1e9), cpuGBps: Math.max(best.cpuGBps, bytes / Math.max(cpu, 1e-6) / 1e9) };
  }
  return best;
}

/** Nix's `search` (references.cc) ported to JS: the set of candidates found. */
function nixSearch(s: Uint8Array, hashes: Set<string>, seen: Set<string>): void {
  const isBase32 = NIX_IS_BASE32;
  for (let i = 0; i + 32 <= s.length; ) {
    let j = 31;
    for (; j >= 0; --j) if (isBase32[s[i + j]!] === 0) break;
    if (j >= 0) {
      i += j + 1;
      continue;
    }
    const ref = Buffer.from(s.buffer, s.byteOffset + i, 32).toString('latin1');
    if (hashes.delete(ref)) seen.add(ref);
    ++i;
  }
}
const NIX_IS_BASE32 = new Uint8Array(256);
for (const c of NIX32_ALPHABET) NIX_IS_BASE32[c.charCodeAt(0)] = 1;

let sink = 0;
function byteLoop(b: Uint8Array): void {
  let x = 0;
  for (let i = 0; i < b.length; i++) x ^= b[i]!;
  sink ^= x;
}

function candidateHashes(n: number): string[] {
  const rand = rng(42);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    for (let j = 0; j < 32; j++) s += NIX32_ALPHABET[Math.floor(rand() * 32)];
    out.push(s);
  }
  return out;
}

interface Row {
  kind: Kind | 'mixed (scanPath, file)';
  sizeMiB: number;
  planted: number;
  hits: number;
  scanner: Timing;
  nixPort?: Timing;
  byteLoop?: Timing;
}

export interface ScanBenchConfig {
  sizeMiB: number;
  runs: number;
  candidates: number;
  log: (s: string) => void;
}

export async function runScanBench(cfg: ScanBenchConfig): Promise<{ rows: Row[]; failures: string[] }> {
  const size = cfg.sizeMiB * MiB;
  const cands = candidateHashes(cfg.candidates);
  const set = new HashPartSet(cands);
  const rows: Row[] = [];
  const failures: string[] = [];
  for (const kind of KINDS) {
    cfg.log(`${kind}: generating ${cfg.sizeMiB} MiB`);
    const { bytes, planted } = makeInput(kind, size, cands);
    const scanner = new ReferenceScanner(set);
    let hits = 0;
    cfg.log(`${kind}: scanning (${cfg.runs} runs)`);
    const t = timeIt(size, cfg.runs, () => {
      scanner.reset();
      hits = 0;
      for (let o = 0; o < size; o += CHUNK) hits += scanner.feed(bytes.subarray(o, Math.min(size, o + CHUNK))).length;
      hits += scanner.end().length;
    });
    if (hits !== planted) failures.push(`${kind}: ${hits} hits, but ${planted} candidates were planted`);
    // Comparisons on a sample: Nix's loop is slow on nix32 text, and the byte loop shows the machine.
    const sample = bytes.subarray(0, Math.min(size, SAMPLE));
    cfg.log(`${kind}: Nix's loop and a byte loop`);
    const nixSample = bytes.subarray(0, Math.min(size, NIX_SAMPLE));
    const nixPort = timeIt(nixSample.length, cfg.runs, () => {
      const hashes = new Set(cands);
      const seen = new Set<string>();
      for (let o = 0; o < nixSample.length; o += CHUNK) nixSearch(nixSample.subarray(o, Math.min(nixSample.length, o + CHUNK)), hashes, seen);
    });
    const loop = timeIt(sample.length, cfg.runs, () => {
      for (let o = 0; o < sample.length; o += CHUNK) byteLoop(sample.subarray(o, Math.min(sample.length, o + CHUNK)));
    });
    rows.push({ kind, sizeMiB: cfg.sizeMiB, planted, hits, scanner: t, nixPort, byteLoop: loop });
    cfg.log(`${kind}: ${t.wallGBps.toFixed(2)} GB/s (CPU time: ${t.cpuGBps.toFixed(2)}), ${hits} hits`);
  }

  // The whole path on a file: reads (page cache) plus scanning.
  const dir = mkdtempSync(join(tmpdir(), 'nix-seal-scan-bench-'));
  try {
    cfg.log(`mixed file: writing ${cfg.sizeMiB} MiB to ${dir}`);
    const { bytes, planted } = makeInput('mixed', size, cands);
    writeFileSync(join(dir, 'data'), bytes);
    let hits = 0;
    cfg.log(`mixed file: scanPath (${cfg.runs} runs)`);
    const t = await timeItAsync(size, cfg.runs, async () => {
      hits = (await scanPath(dir, set)).length;
    });
    if (hits !== planted) failures.push(`mixed file: ${hits} hits, but ${planted} candidates were planted`);
    rows.push({ kind: 'mixed (scanPath, file)', sizeMiB: cfg.sizeMiB, planted, hits, scanner: t });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { rows, failures };
}

export function markdown(rows: Row[], cfg: Omit<ScanBenchConfig, 'log'>): string {
  const f = (x: number | undefined): string => (x === undefined ? '–' : x >= 0.1 ? x.toFixed(2) : x.toPrecision(2));
  const mixed = rows.find((r) => r.kind === 'mixed');
  const met = mixed !== undefined && mixed.scanner.wallGBps >= TARGET_GBPS;
  return [
    '## Reference scanner: `nix-seal`\'s scanner vs Nix\'s search loop',
    '',
    `Run: \`node dist/bench/run.js scan\` (part of \`npm run bench\`), ${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC. ` +
      `${cfg.candidates} candidate hashes, best of ${cfg.runs} runs, 4 MiB chunks.`,
    '',
    '| input | size | hits (planted) | scanner GB/s | scanner GB/s (CPU time) | Nix\'s loop in JS, GB/s | byte loop, GB/s |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.kind} | ${r.sizeMiB} MiB | ${r.hits} (${r.planted})${r.hits === r.planted ? '' : ' ❌'} | ${f(r.scanner.wallGBps)} | ${f(r.scanner.cpuGBps)} | ${f(r.nixPort?.wallGBps)} | ${f(r.byteLoop?.wallGBps)} |`,
    ),
    '',
    `Target: ≥ ${TARGET_GBPS} GB/s on mixed input: ${met ? '✅' : '❌'} (${f(mixed?.scanner.wallGBps)} GB/s). ` +
      `Nix's loop (references.cc's \`search\` ported to JS) runs on the first ${NIX_SAMPLE / MiB} MiB of each input, ` +
      `the byte loop (XOR over every byte) on the first ${SAMPLE / MiB} MiB; ` +
      `the byte loop shows what the machine gives JS at the time (load average ${loadavg()[0]?.toFixed(2)}).`,
  ].join('\n');
}

export const scanBenchmark: Benchmark = {
  name: 'scan',
  description: 'reference scanner throughput (GB/s) on 1 GiB of random, mixed, text and nix32-heavy input',
  async run(opts: BenchOptions): Promise<BenchResult> {
    const cfg = { sizeMiB: 1024, runs: opts.runs ?? 3, candidates: 1000 };
    const { rows, failures } = await runScanBench({ ...cfg, log: opts.log });
    const mixed = rows.find((r) => r.kind === 'mixed');
    if (mixed && mixed.scanner.wallGBps < TARGET_GBPS) failures.push(`mixed: ${mixed.scanner.wallGBps.toFixed(2)} GB/s < ${TARGET_GBPS} GB/s`);
    return { ok: failures.length === 0, failures, markdown: markdown(rows, cfg), data: { ...cfg, rows } };
  },
};

async function main(argv: string[]): Promise<number> {
  const cfg = { sizeMiB: 1024, runs: 3, candidates: 1000 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 1) throw new Error(`${a} needs a positive integer`);
      return v;
    };
    if (a === '--size') cfg.sizeMiB = num();
    else if (a === '--runs') cfg.runs = num();
    else if (a === '--candidates') cfg.candidates = num();
    else {
      console.error('usage: node dist/bench/scan.js [--size MiB] [--runs N] [--candidates N]');
      return 2;
    }
  }
  const { rows, failures } = await runScanBench({ ...cfg, log: (s) => void process.stderr.write(s + '\n') });
  console.log(markdown(rows, cfg));
  for (const f of failures) console.error(`FAILED: ${f}`);
  return failures.length === 0 ? 0 : 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
void sink;
