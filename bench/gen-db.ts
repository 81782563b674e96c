/**
 * Benchmark fixture: a deterministic, nixpkgs-like Nix database with 200,000 store paths,
 * registered with the real `nix-store --load-db` into a private store under
 * `.bench/db-200k/`, plus three roots whose closures are about 250, 45,000 and 190,000 paths.
 *
 * Built once and cached; rebuilt only when `stamp.json` is missing or differs (generator
 * version, parameters, store location or Nix version changed), or with `--force`.
 *
 *   node dist/bench/gen-db.js           # ensure the cache exists, print roots.json
 *   node dist/bench/gen-db.js --force   # rebuild it
 *   node dist/bench/gen-db.js --stats   # only generate the graph in memory and print statistics
 */
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** Bump when the graph model or the output layout changes: the cache is rebuilt. */
export const GEN_VERSION = 1;

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const BENCH_DIR = join(REPO_ROOT, '.bench');
export const DB_DIR = join(BENCH_DIR, 'db-200k');

export const DEFAULT_PARAMS = {
  seed: 0x5ea1_2024,
  totalPaths: 200_000,
  /** Closure sizes wanted for the three roots, each met within ±`tolerance` (relative). */
  targets: { small: 250, medium: 45_000, large: 190_000 },
  tolerance: 0.005,
  /** Out-degree: 1 + geometric with this mean, except `bigDegreeProb` of nodes get 50..400. */
  degreeGeomMean: 3.2,
  bigDegreeProb: 0.004,
  /** Share of reference picks made by preferential attachment (∝ fan-in + 1); the rest are
   * uniform among the `window` most recent paths (packages built in the same era). */
  prefAttach: 0.85,
  window: 3_000,
  /** Probability that a path references glibc directly (on top of the picks above). */
  glibcProb: 0.6,
  selfRefProb: 0.05,
};
export type GenParams = typeof DEFAULT_PARAMS;
/** The parameters in force; `--stats` may override them (BENCH_GEN_PARAMS='{"window":500}') to tune. */
let PARAMS: GenParams = DEFAULT_PARAMS;

export interface RootInfo {
  path: string;
  size: number;
}

export interface BenchDb {
  dir: string;
  storeDir: string;
  stateDir: string;
  logDir: string;
  roots: { small: RootInfo; medium: RootInfo; large: RootInfo };
}

export interface RootsFile extends BenchDb {
  generator: number;
  paths: number;
  references: number;
  loadDbSeconds: number;
  dbBytes: number;
}

/** Environment for running the real Nix against the private store. */
export function nixEnv(db: Pick<BenchDb, 'storeDir' | 'stateDir' | 'logDir'>): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NIX_STORE_DIR: db.storeDir,
    NIX_STATE_DIR: db.stateDir,
    NIX_LOG_DIR: db.logDir,
    NIX_REMOTE: '',
  };
}

/** Extra arguments every nix-store call needs here (running as root without build users). */
export const NIX_ARGS = ['--option', 'build-users-group', ''];

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

/**
 * sfc32: small, fast, good enough, and identical on every platform. Deliberately not the shared
 * test/support/prng.ts: the cached 200k-path database, and the closure sizes of the roots that
 * BENCHMARKS.md quotes, come from this generator; another one would make a different database.
 */
export function makeRng(seed: number): () => number {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 20; i++) next();
  return next;
}

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
const HEX = '0123456789abcdef';

function randomChars(rng: () => number, alphabet: string, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(rng() * alphabet.length)];
  return s;
}

// ---------------------------------------------------------------------------------------------
// The graph

/** References as CSR: the references of node v are refs[refStart[v] .. refStart[v+1]). */
export interface Graph {
  names: string[];
  refStart: Uint32Array;
  refs: Uint32Array;
}

const CORE = [
  'glibc-2.37-8',
  'gcc-12.3.0-lib',
  'libidn2-2.3.4',
  'libunistring-1.1',
  'xgcc-12.3.0-libgcc',
  'bash-5.2-p15',
  'zlib-1.3',
  'coreutils-9.3',
  'openssl-3.0.10',
  'ncurses-6.4',
  'attr-2.5.1',
  'acl-2.3.1',
  'gmp-6.3.0',
  'libffi-3.4.4',
  'bzip2-1.0.8',
  'xz-5.4.4',
  'expat-2.5.0',
  'readline-8.2p1',
  'sqlite-3.43.1',
  'python3-3.11.5',
  'perl-5.38.0',
] as const;

const STEMS = [
  'lib', 'python3.11-', 'perl5.38.0-', 'haskell-', 'node-', 'rust-', 'go-', 'ocaml', 'texlive-',
  'gnome-', 'kde-', 'xorg-', 'qt', 'gst-', 'font-', 'emacs-', 'vim-plugin-', 'r-', 'ruby3.1-', '',
] as const;
const WORDS = [
  'foo', 'bar', 'util', 'core', 'net', 'crypto', 'xml', 'json', 'http', 'ssl', 'png', 'jpeg',
  'gtk', 'glib', 'cairo', 'pango', 'font', 'audio', 'video', 'db', 'sql', 'ssh', 'git', 'zip',
  'text', 'term', 'image', 'math', 'mesa', 'gl', 'vulkan', 'dbus', 'systemd', 'udev', 'pam',
  'curl', 'idn', 'yaml', 'toml', 'test', 'tools', 'daemon', 'client', 'server', 'proto', 'build',
] as const;
const SUFFIXES = ['', '', '', '', '-bin', '-dev', '-lib', '-man', '-doc', '-source', '-hook', '-env'] as const;

function pick<T>(rng: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rng() * xs.length)]!;
}

function randomName(rng: () => number): string {
  const w1 = pick(rng, WORDS);
  const w2 = rng() < 0.4 ? pick(rng, WORDS) : '';
  const ver = `${Math.floor(rng() * 12)}.${Math.floor(rng() * 40)}${rng() < 0.5 ? `.${Math.floor(rng() * 20)}` : ''}`;
  return `${pick(rng, STEMS)}${w1}${w2}-${ver}${pick(rng, SUFFIXES)}`;
}

function outDegree(rng: () => number): number {
  if (rng() < PARAMS.bigDegreeProb) return 50 + Math.floor(rng() * rng() * 350);
  // 1 + geometric(mean m): P(k) = (1-p)^k p with p = 1/(1+m)
  const p = 1 / (1 + PARAMS.degreeGeomMean);
  return 1 + Math.floor(Math.log(1 - rng()) / Math.log(1 - p));
}

/** Grows the base graph of `n` nodes: node i references only nodes < i (and maybe itself). */
export function generateBase(rng: () => number, n: number): { names: string[]; adj: number[][] } {
  const names: string[] = [];
  const adj: number[][] = [];
  const pool: number[] = []; // node v appears 1 + fan-in(v) times: preferential attachment
  const chosen = new Set<number>();
  for (let i = 0; i < n; i++) {
    chosen.clear();
    if (i < CORE.length) {
      names.push(CORE[i]!);
      // Core libraries: each references a few earlier core paths, glibc always.
      if (i > 0) chosen.add(0);
      for (let k = 1; k < i; k++) if (rng() < 0.3) chosen.add(k);
    } else {
      names.push(randomName(rng));
      const d = Math.min(outDegree(rng), i);
      if (rng() < PARAMS.glibcProb) chosen.add(0);
      let guard = 0;
      while (chosen.size < d && guard++ < d * 20) {
        let t: number;
        if (rng() < PARAMS.prefAttach) t = pool[Math.floor(rng() * pool.length)]!;
        else t = i - 1 - Math.floor(rng() * Math.min(PARAMS.window, i));
        chosen.add(t);
      }
    }
    const refs = [...chosen];
    for (const t of refs) pool.push(t);
    if (rng() < PARAMS.selfRefProb) refs.push(i);
    pool.push(i);
    adj.push(refs);
  }
  return { names, adj };
}

export function toCsr(names: string[], adj: number[][]): Graph {
  const refStart = new Uint32Array(adj.length + 1);
  let e = 0;
  for (let v = 0; v < adj.length; v++) {
    refStart[v] = e;
    e += adj[v]!.length;
  }
  refStart[adj.length] = e;
  const refs = new Uint32Array(e);
  let k = 0;
  for (const r of adj) for (const t of r) refs[k++] = t;
  return { names, refStart, refs };
}

/** Closure sizes with a reusable visit stamp, so many small closures cost only their size. */
export class ClosureCounter {
  private readonly stamp: Uint32Array;
  private readonly stack: Uint32Array;
  private epoch = 0;
  constructor(private readonly adj: number[][]) {
    this.stamp = new Uint32Array(adj.length);
    this.stack = new Uint32Array(adj.length);
  }
  /** Starts an empty set. */
  reset(): void {
    this.epoch++;
    this.count = 0;
  }
  count = 0;
  has(v: number): boolean {
    return this.stamp[v] === this.epoch;
  }
  /** Adds the closure of `roots` to the current set; returns the newly added nodes. */
  add(roots: Iterable<number>, limit = Infinity): number[] {
    const added: number[] = [];
    let sp = 0;
    for (const r of roots) {
      if (this.stamp[r] !== this.epoch) {
        this.stamp[r] = this.epoch;
        this.stack[sp++] = r;
        added.push(r);
      }
    }
    while (sp > 0 && added.length <= limit) {
      const v = this.stack[--sp]!;
      for (const w of this.adj[v]!) {
        if (this.stamp[w] !== this.epoch) {
          this.stamp[w] = this.epoch;
          this.stack[sp++] = w;
          added.push(w);
        }
      }
    }
    this.count += added.length;
    return added;
  }
  /** Takes nodes back out of the set (to undo an `add`). */
  remove(nodes: number[]): void {
    for (const v of nodes) this.stamp[v] = 0;
    this.count -= nodes.length;
  }
  /** Closure size of `root`; stops counting a little past `limit`. */
  size(root: number, limit = Infinity): number {
    this.reset();
    return this.add([root], limit).length;
  }
}

export interface Generated {
  graph: Graph;
  roots: { small: number; medium: number; large: number };
  sizes: { small: number; medium: number; large: number };
  stats: string[];
}

/**
 * Builds a top-level path (like a NixOS system or a user profile) whose closure is `target`
 * within tolerance, by referencing a few intermediate "env" paths, each of which references
 * existing paths taken from `candidates` in order. Mutates `adj`/`names`.
 */
function buildTop(
  cc: ClosureCounter,
  adj: number[][],
  names: string[],
  label: string,
  target: number,
  candidates: number[],
  perEnv: number,
): number {
  const lo = Math.round(target * (1 - PARAMS.tolerance / 4));
  const hi = Math.round(target * (1 + PARAMS.tolerance));
  cc.reset();
  const envs: number[] = [];
  let cur: number[] = [];
  const flush = (): void => {
    if (cur.length === 0) return;
    const id = adj.length;
    adj.push(cur);
    names.push(`${label}-env-${envs.length}`);
    envs.push(id);
    cur = [];
  };
  for (const c of candidates) {
    if (cc.count >= lo) break;
    if (cc.has(c)) continue;
    const added = cc.add([c], hi - cc.count);
    if (cc.count > hi) {
      cc.remove(added);
      continue;
    }
    cur.push(c);
    if (cur.length >= perEnv) flush();
  }
  flush();
  if (cc.count < lo) throw new Error(`gen-db: could not reach a closure of ${target} for ${label} (got ${cc.count})`);
  const top = adj.length;
  adj.push(envs);
  names.push(label === 'system' ? `nixos-system-bench-23.11` : `${label}-profile`);
  return top;
}

export function generate(): Generated {
  const rng = makeRng(PARAMS.seed);
  const total = PARAMS.totalPaths;
  // Leave room for the artificial top paths and fill the rest with ordinary paths afterwards.
  const reserve = 2_000;
  const { names, adj } = generateBase(rng, total - reserve);
  const n0 = adj.length;

  const stats: string[] = [];
  const counter = new ClosureCounter(adj);

  // Small: an ordinary late path (an application) with a closure near 250.
  const tol = Math.max(PARAMS.tolerance, 2 / PARAMS.targets.small);
  let small = -1;
  let smallSize = 0;
  for (let v = n0 - 1; v >= 0; v--) {
    const s = counter.size(v, PARAMS.targets.small * 2);
    if (Math.abs(s - PARAMS.targets.small) <= PARAMS.targets.small * tol) {
      small = v;
      smallSize = s;
      break;
    }
  }
  if (small < 0) throw new Error('gen-db: no path with a closure near the small target');

  // Closure size distribution over a sample of ordinary paths (for the report).
  const sample: number[] = [];
  const srng = makeRng(PARAMS.seed ^ 0xabcdef);
  for (let k = 0; k < 400; k++) sample.push(counter.size(Math.floor(srng() * n0)));
  sample.sort((a, b) => a - b);
  const q = (f: number): number => sample[Math.min(sample.length - 1, Math.floor(f * sample.length))]!;
  stats.push(
    `closure sizes of ${sample.length} random paths: p10 ${q(0.1)}, p25 ${q(0.25)}, p50 ${q(0.5)}, p75 ${q(0.75)}, ` +
      `p90 ${q(0.9)}, p99 ${q(0.99)}, max ${q(1)}`,
  );

  // Medium: a user profile over recent packages; large: a whole system over everything.
  // Candidates for large: paths nothing references first (they can only come in directly),
  // newest first, then the rest newest first.
  const fanIn = new Uint32Array(n0);
  for (let v = 0; v < n0; v++) for (const t of adj[v]!) if (t !== v) fanIn[t]!++;
  const newestFirst: number[] = [];
  for (let v = n0 - 1; v >= 0; v--) newestFirst.push(v);
  const mediumCands = newestFirst.filter((v) => v % 3 === 0);
  const medium = buildTop(counter, adj, names, 'user', PARAMS.targets.medium, mediumCands, 400);
  const mediumSize = counter.size(medium);
  const largeCands = [...newestFirst.filter((v) => fanIn[v] === 0), ...newestFirst.filter((v) => fanIn[v] !== 0)];
  const large = buildTop(counter, adj, names, 'system', PARAMS.targets.large, largeCands, 500);
  const largeSize = counter.size(large);

  // Fill up to exactly `total` with ordinary paths (not in any root's closure).
  const fill = total - adj.length;
  if (fill < 0) throw new Error(`gen-db: too many top paths (${adj.length - n0})`);
  stats.push(`ordinary paths ${n0}, top/env paths ${adj.length - n0}, fill ${fill}`);

  const fillRng = makeRng(PARAMS.seed ^ 0x1234567);
  for (let i = 0; i < fill; i++) {
    names.push(randomName(fillRng));
    const d = Math.min(outDegree(fillRng), n0);
    const refs = new Set<number>([0]);
    while (refs.size < d) refs.add(Math.floor(fillRng() * n0));
    adj.push([...refs]);
  }

  let edges = 0;
  let selfRefs = 0;
  let maxOut = 0;
  for (let v = 0; v < adj.length; v++) {
    edges += adj[v]!.length;
    if (adj[v]!.includes(v)) selfRefs++;
    maxOut = Math.max(maxOut, adj[v]!.length);
  }
  const fanInAll = new Uint32Array(adj.length);
  for (let v = 0; v < adj.length; v++) for (const t of adj[v]!) if (t !== v) fanInAll[t]!++;
  const topFan = [...fanInAll.keys()].sort((a, b) => fanInAll[b]! - fanInAll[a]!).slice(0, 5);
  let zeroFan = 0;
  for (let v = 0; v < adj.length; v++) if (fanInAll[v] === 0) zeroFan++;
  stats.unshift(
    `paths ${adj.length}, references ${edges} (mean out-degree ${(edges / adj.length).toFixed(2)}, max ${maxOut}), ` +
      `self references ${selfRefs}, never referenced ${zeroFan}`,
    `largest fan-in: ${topFan.map((v) => `${names[v]} ${fanInAll[v]}`).join(', ')}`,
  );
  return {
    graph: toCsr(names, adj),
    roots: { small, medium, large },
    sizes: { small: smallSize, medium: mediumSize, large: largeSize },
    stats,
  };
}

// ---------------------------------------------------------------------------------------------
// Registration and load-db

function nixVersion(): string {
  const r = spawnSync('nix-store', ['--version'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) throw new Error(`gen-db: nix-store is not usable: ${r.error?.message ?? r.stderr}`);
  return r.stdout.trim();
}

function stampFor(storeDir: string): string {
  return JSON.stringify({ generator: GEN_VERSION, params: PARAMS, storeDir, nix: nixVersion() }, null, 2) + '\n';
}

/** Random, unique, valid store paths for every node. */
function storePaths(storeDir: string, names: string[]): string[] {
  const rng = makeRng(PARAMS.seed ^ 0x77777);
  const seen = new Set<string>();
  const out: string[] = [];
  for (const name of names) {
    let h: string;
    do h = randomChars(rng, NIX32, 32);
    while (seen.has(h));
    seen.add(h);
    out.push(`${storeDir}/${h}-${name}`);
  }
  return out;
}

async function writeRegistration(file: string, g: Graph, paths: string[]): Promise<void> {
  const rng = makeRng(PARAMS.seed ^ 0x3141592);
  const ws = createWriteStream(file);
  let buf = '';
  const flush = async (): Promise<void> => {
    if (!ws.write(buf)) await new Promise<void>((r) => ws.once('drain', () => r()));
    buf = '';
  };
  for (let v = 0; v < paths.length; v++) {
    const start = g.refStart[v]!;
    const end = g.refStart[v + 1]!;
    // narSize: log-uniform between 200 B and ~200 MB.
    const narSize = Math.round(200 * Math.exp(rng() * 13.8));
    buf += `${paths[v]}\nsha256:${randomChars(rng, HEX, 64)}\n${narSize}\n\n${end - start}\n`;
    for (let k = start; k < end; k++) buf += `${paths[g.refs[k]!]}\n`;
    if (buf.length > 1 << 20) await flush();
  }
  await flush();
  await new Promise<void>((res, rej) => ws.end((err?: Error | null) => (err ? rej(err) : res())));
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdinFile?: string): Promise<{ stdout: string; stderr: string; seconds: number }> {
  return new Promise((res, rej) => {
    const fd = stdinFile ? openSync(stdinFile, 'r') : 'ignore';
    const t0 = process.hrtime.bigint();
    const p = spawn(cmd, args, { env, stdio: [fd, 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    p.stdout!.on('data', (b: Buffer) => out.push(b));
    p.stderr!.on('data', (b: Buffer) => err.push(b));
    p.on('error', rej);
    p.on('close', (code) => {
      if (typeof fd === 'number') closeSync(fd);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code !== 0) rej(new Error(`${cmd} ${args.join(' ')} exited with ${code}:\n${stderr}`));
      else res({ stdout, stderr, seconds });
    });
  });
}

function fileSize(f: string): number {
  return existsSync(f) ? statSync(f).size : 0;
}

function loadRoots(): RootsFile {
  return JSON.parse(readFileSync(join(DB_DIR, 'roots.json'), 'utf8')) as RootsFile;
}

/** True when the cached database is present and was built by this generator for this checkout. */
export function dbIsCurrent(): boolean {
  const storeDir = join(DB_DIR, 'store');
  const stampFile = join(DB_DIR, 'stamp.json');
  return (
    existsSync(stampFile) &&
    existsSync(join(DB_DIR, 'roots.json')) &&
    existsSync(join(DB_DIR, 'var', 'db', 'db.sqlite')) &&
    readFileSync(stampFile, 'utf8') === stampFor(storeDir)
  );
}

/** Returns the benchmark database, building it first when missing or stale. */
export async function ensureDb(opts: { force?: boolean; log?: (s: string) => void } = {}): Promise<BenchDb> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  if (!opts.force && dbIsCurrent()) return loadRoots();

  const storeDir = join(DB_DIR, 'store');
  const stateDir = join(DB_DIR, 'var');
  const logDir = join(DB_DIR, 'log');
  log(`gen-db: building the benchmark database in ${DB_DIR} (one-time)`);
  rmSync(DB_DIR, { recursive: true, force: true });
  mkdirSync(DB_DIR, { recursive: true });

  const t0 = Date.now();
  const gen = generate();
  const paths = storePaths(storeDir, gen.graph.names);
  for (const s of gen.stats) log(`gen-db:   ${s}`);
  log(`gen-db:   graph generated in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

  const regFile = join(DB_DIR, 'registration.tmp');
  await writeRegistration(regFile, gen.graph, paths);
  log(`gen-db:   registration text ${(fileSize(regFile) / 1e6).toFixed(1)} MB`);

  const env = nixEnv({ storeDir, stateDir, logDir });
  log('gen-db:   nix-store --load-db …');
  const load = await run('nix-store', ['--load-db', ...NIX_ARGS], env, regFile);
  rmSync(regFile);
  const dbFile = join(stateDir, 'db', 'db.sqlite');
  const dbBytes = fileSize(dbFile) + fileSize(dbFile + '-wal');
  log(`gen-db:   nix-store --load-db took ${load.seconds.toFixed(1)} s; db.sqlite ${(dbBytes / 1e6).toFixed(1)} MB`);

  const roots = {
    small: { path: paths[gen.roots.small]!, size: gen.sizes.small },
    medium: { path: paths[gen.roots.medium]!, size: gen.sizes.medium },
    large: { path: paths[gen.roots.large]!, size: gen.sizes.large },
  };
  // Check the registered database against the generator's own closure sizes.
  for (const [k, r] of Object.entries(roots)) {
    const q = await run('nix-store', ['-qR', r.path, ...NIX_ARGS], env);
    const n = q.stdout.split('\n').filter((l) => l !== '').length;
    log(`gen-db:   ${k}: nix-store -qR gives ${n} paths (expected ${r.size}) in ${q.seconds.toFixed(1)} s`);
    if (n !== r.size) throw new Error(`gen-db: nix-store -qR ${r.path} gave ${n} paths, the generator computed ${r.size}`);
  }

  const out: RootsFile = {
    dir: DB_DIR,
    storeDir,
    stateDir,
    logDir,
    roots,
    generator: GEN_VERSION,
    paths: paths.length,
    references: gen.graph.refs.length,
    loadDbSeconds: Math.round(load.seconds * 10) / 10,
    dbBytes,
  };
  writeFileSync(join(DB_DIR, 'roots.json'), JSON.stringify(out, null, 2) + '\n');
  writeFileSync(join(DB_DIR, 'stamp.json'), stampFor(storeDir));
  log(`gen-db: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return out;
}

export function readDbInfo(): RootsFile {
  return loadRoots();
}

async function main(argv: string[]): Promise<void> {
  if (argv.includes('--stats')) {
    if (process.env.BENCH_GEN_PARAMS) PARAMS = { ...DEFAULT_PARAMS, ...(JSON.parse(process.env.BENCH_GEN_PARAMS) as Partial<GenParams>) };
    const t0 = Date.now();
    const g = generate();
    for (const s of g.stats) console.log(s);
    console.log(`roots: ${JSON.stringify(g.sizes)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return;
  }
  const db = await ensureDb({ force: argv.includes('--force') });
  console.log(JSON.stringify(db, null, 2));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
