/**
 * suggest benchmark: what `nix-seal suggest` and `--seal-images` cost on top of the closure, on a
 * closure of 3,001 paths holding six multi-GiB images, and against the real alternative on the
 * same files: libmagic (`file -b`), which is what a user would script to find the images.
 *
 * The fixture is generated once (deterministic PRNG) under `.bench/suggest-store-v1/` and reused
 * while its `fixture.json` matches; it is regenerated when missing or stale:
 *
 * - `store/`: 2,994 "packages" with valid store names (`<32 nix32 chars>-<name>`): most are
 *   directories with `bin/<name>` (a shell script naming the store paths of its dependencies) and
 *   `lib/lib<name>.so` (4 KiB of random bytes), some are a single script file; the references form
 *   a DAG (each package refers to 0–5 earlier ones);
 * - six images, each referring to the packages it holds (a cluster that nothing else refers to,
 *   plus its closure):
 *   1. a single-file ISO (`xorriso -as mkisofs -R -J`) of a `nix/store/<basename>` tree, extended
 *      to 4 GiB with `truncate` (sparse: the disk stays small);
 *   2. an isoImage-like directory output: `iso/<name>.iso` (the same, 3 GiB) and
 *      `nix-support/hydra-build-products`;
 *   3. a squashfs (`mksquashfs PATHS… -keep-as-directory -all-root -comp gzip`: basenames at its
 *      root, the layout of NixOS's nix-store.squashfs), extended to 2 GiB;
 *   4. a raw 4 GiB disk image with an MBR partition table (`sfdisk`) and a path listing at 1 MiB;
 *   5. a qcow2 (`qemu-img create -f qcow2 … 8G`);
 *   6. a zstd-compressed tar of a few packages;
 * - a root (a launcher script) referring to every package no other path refers to and to every
 *   image: its closure is all 3,001 paths;
 * - `graph`: the reference graph in exportReferencesGraph format, read with
 *   `--store export-graph:FILE` (nix-seal then reads the paths' files from the store dir the file
 *   names, i.e. `store/`).
 *
 * Measured with hyperfine in one run, page cache warm (1 warm-up, 10 timed runs):
 *
 *   A  nix-seal closure ROOT --store export-graph:FILE                 (the closure alone)
 *   B  nix-seal suggest ROOT --store export-graph:FILE                 (+ sniffing, containment)
 *   C  nix-seal closure ROOT --store export-graph:FILE --seal-images   (+ sniffing)
 *   D  xargs -a LIST sh -c 'find "$@" -type f -exec file -b {} +'   (libmagic, same candidates)
 *
 * D runs over the regular files of the candidate paths nix-seal sniffs (those with a reference).
 * Reported: medians, B−A and C−A (target: well under a second), D/(B−A), and the bytes each
 * nix-seal command reads (`rchar` of /proc/self/io, from a `node --import` probe, one run each).
 * Correctness: `suggest --json` must list exactly the six images and the full and sealed counts
 * must be the fixture's, and `closure --seal-images` must print the sealed closure's size;
 * otherwise the benchmark fails.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLI } from './closure.js';
import {
  BENCH_DIR,
  BenchSetupError,
  fmtInt,
  fmtSeconds,
  fmtTime,
  hyperfine,
  mark,
  requireTool,
  runCommand,
  type Benchmark,
  type BenchOptions,
  type BenchResult,
  type HyperfineStats,
  prng,
} from './lib.js';

export const SUGGEST_DIR = join(BENCH_DIR, 'suggest-store-v1');
const STORE_DIR = join(SUGGEST_DIR, 'store');
const GRAPH_FILE = join(SUGGEST_DIR, 'graph');
const FIXTURE_FILE = join(SUGGEST_DIR, 'fixture.json');
/** Bump when the generator changes: the fixture is rebuilt. */
const FIXTURE_VERSION = 1;
const DEFAULT_RUNS = 10;
const GiB = 2 ** 30;
const MiB = 2 ** 20;

const PARAMS = {
  seed: 0x5e_a1_50_99,
  /** Packages (the images and the root come on top: 3,000 store paths, 3,001 in the closure). */
  packages: 2994,
  /** The first `base` packages refer only to each other (small closures, like a stdenv). */
  base: 40,
  /** A package's references: 0..maxRefs, `baseShare` of them into the base, the rest among the `window` previous packages. */
  maxRefs: 5,
  baseShare: 0.3,
  window: 300,
  /** Share of packages that are a single script file instead of a directory. */
  singleFileShare: 0.15,
  soBytes: 4096,
} as const;

type ImageKey = 'iso' | 'iso-dir' | 'squashfs' | 'raw' | 'qcow2' | 'tar-zst';
/** The images, each with the size of the package cluster only it refers to, and its apparent size. */
const IMAGES: { key: ImageKey; name: string; cluster: number; bytes: number; what: string }[] = [
  { key: 'iso', name: 'nixos-minimal-bench-x86_64-linux.iso', cluster: 20, bytes: 4 * GiB, what: 'ISO 9660 file (xorriso -R -J), 4 GiB' },
  { key: 'iso-dir', name: 'nixos-iso-image-bench', cluster: 20, bytes: 3 * GiB, what: 'directory: iso/….iso (3 GiB) + nix-support/hydra-build-products' },
  { key: 'squashfs', name: 'squashfs.img', cluster: 20, bytes: 2 * GiB, what: 'squashfs (gzip, basenames at the root), 2 GiB' },
  { key: 'raw', name: 'nixos.img', cluster: 5, bytes: 4 * GiB, what: 'raw disk image, MBR (sfdisk), 4 GiB' },
  { key: 'qcow2', name: 'nixos.qcow2', cluster: 5, bytes: 8 * GiB, what: 'qcow2 (qemu-img create), 8 GiB virtual' },
  { key: 'tar-zst', name: 'bundle.tar.zst', cluster: 5, bytes: 0, what: 'tar of 5 packages, zstd' },
];
const ISO_DIR_FILE = 'iso/nixos-bench-installer.iso';

export const TARGETS = {
  /** B−A and C−A (medians): "well under a second" beyond the closure itself. */
  maxExtraSeconds: 0.5,
  /** Extra bytes read by suggest over closure, per candidate path (a few KiB: never whole images). */
  maxExtraBytesPerCandidate: 16 * 1024,
} as const;

interface FixtureImage {
  key: ImageKey;
  path: string;
  what: string;
  /** Apparent size of the image file (what a naive reader would read). */
  bytes: number;
  /** Bytes on disk (sparse files). */
  diskBytes: number;
  /** Store paths it embeds (= its references). */
  refs: number;
  /** Paths erased when only this image is sealed. */
  erased: number;
}

/**
 * Whether nix-seal reads the tree the image holds (and so can prove it): ISO 9660, squashfs and a
 * compressed tar do; the raw disk's partitions hold no file system and the qcow2 is empty. Decided
 * here, not stored in the fixture, so that an older fixture is judged by today's readers.
 */
const readableImage = (key: string): boolean => key === 'iso' || key === 'iso-dir' || key === 'squashfs' || key === 'tar-zst';

interface Fixture {
  version: number;
  params: typeof PARAMS;
  storeDir: string;
  graphFile: string;
  root: string;
  paths: number;
  references: number;
  /** The closure with all six images sealed (paths). */
  sealedAll: number;
  images: FixtureImage[];
  /** Store paths with at least one reference (what nix-seal sniffs), sorted. */
  candidates: string[];
  /** Regular files of the candidates (what `file` reads). */
  candidateFiles: number;
  seconds: number;
}


const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
const WORDS = (
  'zlib openssl curl glibc bash coreutils gnugrep gnused gawk findutils diffutils xz bzip2 zstd lz4 ' +
  'ncurses readline sqlite libffi expat pcre2 libxml2 libxslt icu gmp mpfr libidn2 libunistring ' +
  'systemd dbus util-linux kmod e2fsprogs iproute2 iptables openssh gnupg python3 perl ruby nodejs'
).split(' ');

function readFixture(): Fixture | undefined {
  try {
    const f = JSON.parse(readFileSync(FIXTURE_FILE, 'utf8')) as Fixture;
    if (f.version !== FIXTURE_VERSION || JSON.stringify(f.params) !== JSON.stringify(PARAMS) || f.storeDir !== STORE_DIR) return undefined;
    if (!existsSync(f.graphFile) || !existsSync(f.root)) return undefined;
    for (const im of f.images) {
      const file = im.key === 'iso-dir' ? join(im.path, ISO_DIR_FILE) : im.path;
      if (!existsSync(file) || (im.bytes > 0 && im.key !== 'qcow2' && statSync(file).size !== im.bytes)) return undefined;
    }
    return f;
  } catch {
    return undefined;
  }
}

/** Runs a tool, throwing with its output when it fails. */
function tool(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], maxBuffer: 64 * MiB });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status}):\n${(r.stdout + r.stderr).trim()}`);
  return r.stdout;
}

/** Paths reachable from `roots`; a seal is kept but its references are not followed. */
function reachable(refs: number[][], roots: number[], seals: Set<number> = new Set()): Set<number> {
  const seen = new Set<number>(roots);
  const stack = [...roots];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (seals.has(v)) continue;
    for (const w of refs[v]!) {
      if (!seen.has(w)) {
        seen.add(w);
        stack.push(w);
      }
    }
  }
  return seen;
}

function generate(log: (s: string) => void): Fixture {
  const t0 = process.hrtime.bigint();
  log(`suggest: generating the fixture in ${SUGGEST_DIR}`);
  rmSync(SUGGEST_DIR, { recursive: true, force: true });
  mkdirSync(STORE_DIR, { recursive: true });
  const rand = prng(PARAMS.seed);
  const int = (n: number): number => Math.floor(rand() * n);

  // Store paths: packages, then the images, then the root.
  const nImages = IMAGES.length;
  const total = PARAMS.packages + nImages + 1;
  const hashes = new Set<string>();
  const paths: string[] = [];
  const names: string[] = [];
  for (let i = 0; i < total; i++) {
    let h: string;
    do {
      h = '';
      for (let k = 0; k < 32; k++) h += NIX32[int(32)];
    } while (hashes.has(h));
    hashes.add(h);
    const name =
      i < PARAMS.packages ? `${WORDS[i % WORDS.length]}-${1 + int(9)}.${i}` : i < PARAMS.packages + nImages ? IMAGES[i - PARAMS.packages]!.name : 'bench-launcher';
    names.push(name);
    paths.push(`${STORE_DIR}/${h}-${name}`);
  }
  const imageId = (k: number): number => PARAMS.packages + k;
  const rootId = total - 1;

  // References. Clusters (one per image, at the end of the packages) are referred to by nothing
  // but their image: sealing it erases them.
  const refs: number[][] = paths.map(() => []);
  const clusterSize = IMAGES.reduce((s, im) => s + im.cluster, 0);
  const mainEnd = PARAMS.packages - clusterSize;
  const clusterOf: { start: number; end: number }[] = [];
  let c0 = mainEnd;
  for (const im of IMAGES) {
    clusterOf.push({ start: c0, end: c0 + im.cluster });
    c0 += im.cluster;
  }
  const addRef = (from: number, to: number): void => {
    if (to !== from && !refs[from]!.includes(to)) refs[from]!.push(to);
  };
  for (let i = 0; i < PARAMS.packages; i++) {
    if (i < PARAMS.base) {
      const k = int(3);
      for (let j = 0; j < k && i > 0; j++) addRef(i, int(i));
    } else if (i < mainEnd) {
      const k = int(PARAMS.maxRefs + 1);
      for (let j = 0; j < k; j++) {
        const lo = Math.max(0, i - PARAMS.window);
        addRef(i, rand() < PARAMS.baseShare ? int(PARAMS.base) : lo + int(i - lo));
      }
    } else {
      const c = clusterOf.find((x) => i >= x.start && i < x.end)!;
      const k = int(4);
      for (let j = 0; j < k; j++) addRef(i, rand() < 0.5 && i > c.start ? c.start + int(i - c.start) : int(PARAMS.base));
    }
  }
  // Each image refers to its cluster's closure: what it embeds (what Nix's scan would find).
  const embeds: number[][] = IMAGES.map((_, k) => {
    const c = clusterOf[k]!;
    const seeds: number[] = [];
    for (let i = c.start; i < c.end; i++) seeds.push(i);
    return [...reachable(refs, seeds)].sort((a, b) => a - b);
  });
  IMAGES.forEach((_, k) => {
    for (const p of embeds[k]!) addRef(imageId(k), p);
  });
  const referred = new Uint8Array(total);
  for (const r of refs) for (const w of r) referred[w] = 1;
  for (let i = 0; i < PARAMS.packages; i++) if (!referred[i]) addRef(rootId, i);
  for (let k = 0; k < nImages; k++) addRef(rootId, imageId(k));

  // Packages on disk.
  const so = Buffer.alloc(PARAMS.soBytes);
  let candidateFiles = 0;
  const isFile = new Uint8Array(total);
  for (let i = 0; i < PARAMS.packages; i++) {
    const p = paths[i]!;
    const name = names[i]!.replace(/-[\d.]+$/, '');
    const single = rand() < PARAMS.singleFileShare;
    const script = [
      '#!/bin/sh',
      `# ${names[i]} (a stand-in generated by nix-seal's suggest benchmark)`,
      ...refs[i]!.map((d) => (isFile[d] ? `# uses ${paths[d]}` : `export PATH=${paths[d]}/bin:$PATH LD_LIBRARY_PATH=${paths[d]}/lib:$LD_LIBRARY_PATH`)),
      `echo "${name} $*"`,
      '',
    ].join('\n');
    const hasRefs = refs[i]!.length > 0;
    if (single) {
      isFile[i] = 1;
      writeFileSync(p, script, { mode: 0o755 });
      if (hasRefs) candidateFiles++;
    } else {
      mkdirSync(join(p, 'bin'), { recursive: true });
      mkdirSync(join(p, 'lib'));
      writeFileSync(join(p, 'bin', name), script, { mode: 0o755 });
      for (let o = 0; o + 4 <= so.length; o += 4) so.writeUInt32LE(Math.floor(rand() * 4294967296), o);
      writeFileSync(join(p, 'lib', `lib${name}.so`), so);
      if (hasRefs) candidateFiles += 2;
    }
  }

  // Images.
  const tmp = join(SUGGEST_DIR, 'tmp');
  const storeTree = (k: number): string => {
    const tree = join(tmp, IMAGES[k]!.key);
    mkdirSync(join(tree, 'nix', 'store'), { recursive: true });
    for (const p of embeds[k]!) cpSync(paths[p]!, join(tree, 'nix', 'store', basename(paths[p]!)), { recursive: true });
    mkdirSync(join(tree, 'boot'));
    writeFileSync(join(tree, 'boot', 'README'), `nix-seal suggest benchmark image ${IMAGES[k]!.name}\n`);
    return tree;
  };
  const extend = (file: string, bytes: number): void => void tool('truncate', ['-s', String(bytes), file]);
  const images: FixtureImage[] = [];
  IMAGES.forEach((im, k) => {
    const out = paths[imageId(k)]!;
    log(`suggest: image ${im.key}: ${im.what}`);
    let file = out;
    switch (im.key) {
      case 'iso':
        tool('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-J', '-V', 'NIXOS_BENCH', '-o', out, storeTree(k)]);
        extend(out, im.bytes);
        break;
      case 'iso-dir': {
        file = join(out, ISO_DIR_FILE);
        mkdirSync(join(out, 'iso'), { recursive: true });
        mkdirSync(join(out, 'nix-support'));
        tool('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-J', '-V', 'NIXOS_BENCH_DIR', '-o', file, storeTree(k)]);
        extend(file, im.bytes);
        writeFileSync(join(out, 'nix-support', 'hydra-build-products'), `file iso ${file}\n`);
        break;
      }
      case 'squashfs':
        tool('mksquashfs', [...embeds[k]!.map((p) => paths[p]!), out, '-keep-as-directory', '-all-root', '-comp', 'gzip', '-no-progress', '-processors', '2']);
        extend(out, im.bytes);
        break;
      case 'raw': {
        extend(out, im.bytes);
        tool('sfdisk', ['-q', out], 'label: dos\n,,L\n');
        // A listing of what the "installed system" holds, inside the partition.
        const fd = openSync(out, 'r+');
        try {
          writeSync(fd, Buffer.from(embeds[k]!.map((p) => paths[p]!).join('\n') + '\n'), 0, undefined, MiB);
        } finally {
          closeSync(fd);
        }
        break;
      }
      case 'qcow2':
        tool('qemu-img', ['create', '-q', '-f', 'qcow2', out, String(im.bytes)]);
        break;
      case 'tar-zst': {
        const tar = join(tmp, 'bundle.tar');
        mkdirSync(tmp, { recursive: true });
        tool('tar', ['-C', STORE_DIR, '--transform', 's,^,nix/store/,', '--owner=0', '--group=0', '--mtime=@1', '-cf', tar, ...embeds[k]!.map((p) => basename(paths[p]!))]);
        tool('zstd', ['-q', '-f', tar, '-o', out]);
        break;
      }
    }
    const st = statSync(file);
    images.push({
      key: im.key,
      path: out,
      what: im.what,
      bytes: st.size,
      diskBytes: st.blocks * 512,
      refs: refs[imageId(k)]!.length,
      erased: 0,
    });
    candidateFiles += im.key === 'iso-dir' ? 2 : 1;
  });
  rmSync(tmp, { recursive: true, force: true });

  // The root: a launcher naming everything it refers to.
  writeFileSync(paths[rootId]!, ['#!/bin/sh', '# bench launcher: refers to every top-level package and every image', ...refs[rootId]!.map((d) => `# ${paths[d]}`), ''].join('\n'), {
    mode: 0o755,
  });
  candidateFiles++;
  chmodSync(paths[rootId]!, 0o755);

  // The graph, in exportReferencesGraph's format: path, deriver (empty), count, references.
  const lines: string[] = [];
  let references = 0;
  for (let i = 0; i < total; i++) {
    const r = refs[i]!.map((d) => paths[d]!).sort();
    references += r.length;
    lines.push(paths[i]!, '', String(r.length), ...r);
  }
  writeFileSync(GRAPH_FILE, lines.join('\n') + '\n');

  // Expected results.
  const full = reachable(refs, [rootId]);
  if (full.size !== total) throw new Error(`fixture generator: the root's closure has ${full.size} paths, not ${total}`);
  const imageIds = new Set(IMAGES.map((_, k) => imageId(k)));
  const sealedAll = reachable(refs, [rootId], imageIds).size;
  images.forEach((im, k) => (im.erased = total - reachable(refs, [rootId], new Set([imageId(k)])).size));
  const candidates = paths.filter((_, i) => refs[i]!.length > 0).sort();

  const fx: Fixture = {
    version: FIXTURE_VERSION,
    params: PARAMS,
    storeDir: STORE_DIR,
    graphFile: GRAPH_FILE,
    root: paths[rootId]!,
    paths: total,
    references,
    sealedAll,
    images,
    candidates,
    candidateFiles,
    seconds: Number(process.hrtime.bigint() - t0) / 1e9,
  };
  writeFileSync(FIXTURE_FILE, JSON.stringify(fx, null, 1) + '\n');
  log(`suggest: fixture ready in ${fx.seconds.toFixed(1)} s: ${fmtInt(total)} paths, ${fmtInt(references)} references, ${candidates.length} candidates`);
  return fx;
}

export function ensureFixture(log: (s: string) => void): Fixture {
  return readFixture() ?? generate(log);
}

// Measuring -------------------------------------------------------------------------------------

/** `node --import PROBE` copies /proc/self/io to $NIX_SEAL_BENCH_IO_FILE at exit. */
function ioProbe(): string {
  const probe = join(SUGGEST_DIR, 'io-probe.mjs');
  writeFileSync(
    probe,
    "import { readFileSync, writeFileSync } from 'node:fs';\n" +
      "process.on('exit', () => { const f = process.env.NIX_SEAL_BENCH_IO_FILE; if (f) writeFileSync(f, readFileSync('/proc/self/io', 'utf8')); });\n",
  );
  return probe;
}

interface IoCount {
  /** Bytes read by read(2)-like calls (page cache included). */
  rchar: number;
  /** Read calls. */
  syscr: number;
  /** Bytes fetched from the block device (0 with a warm cache). */
  readBytes: number;
}

async function measureIo(argv: string[], env: NodeJS.ProcessEnv, probe: string): Promise<IoCount | undefined> {
  const file = join(SUGGEST_DIR, `io-${process.pid}.txt`);
  rmSync(file, { force: true });
  const r = await runCommand(argv[0]!, ['--import', pathToFileURL(probe).href, ...argv.slice(1)], { ...env, NIX_SEAL_BENCH_IO_FILE: file });
  if (r.code !== 0 || !existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8');
  rmSync(file, { force: true });
  const get = (k: string): number => Number(new RegExp(`^${k}: (\\d+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { rchar: get('rchar'), syscr: get('syscr'), readBytes: get('read_bytes') };
}

interface SuggestJson {
  roots: string[];
  full: { count: number; narSize: number | null };
  sealedAll: { count: number; narSize: number | null };
  sealedProven: { count: number; narSize: number | null };
  images: {
    path: string;
    reason: string;
    files: { file: string; format: string; why: string }[];
    alone: { count: number };
    exclusive: { count: number };
    inside: { verified: number; contained: number; differs: number; notFound: number; opaque: string[] };
    proven: boolean;
  }[];
  flags: string[];
  warnings: { code: string; message: string }[];
}

function loud(log: (s: string) => void, title: string, body: string): void {
  const bar = '#'.repeat(100);
  log(`\n${bar}\n### BENCHMARK FAILURE: ${title}\n${body.replace(/^/gm, '### ')}\n${bar}\n`);
}

const fmtBytes = (n: number | undefined): string =>
  n === undefined || Number.isNaN(n) ? 'n/a' : n >= GiB ? `${(n / GiB).toFixed(n % GiB === 0 ? 0 : 1)} GiB` : n >= 10 * MiB ? `${(n / MiB).toFixed(0)} MiB` : n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
const fmtMs = (s: number): string => `${(s * 1000).toFixed(0)} ms`;

async function runSuggest(opts: BenchOptions): Promise<BenchResult> {
  const { log } = opts;
  requireTool('hyperfine', 'install hyperfine (apt-get install -y hyperfine)');
  requireTool('file', 'install file (apt-get install -y file)');
  requireTool('xorriso', 'install xorriso (apt-get install -y xorriso)');
  requireTool('mksquashfs', 'install squashfs-tools (apt-get install -y squashfs-tools)');
  requireTool('sfdisk', 'install fdisk (apt-get install -y fdisk)');
  requireTool('qemu-img', 'install qemu-utils (apt-get install -y qemu-utils)');
  requireTool('zstd', 'install zstd (apt-get install -y zstd)');
  requireTool('truncate', 'install coreutils');
  if (!existsSync(CLI)) {
    throw new BenchSetupError(`the nix-seal CLI is missing: ${CLI} does not exist yet. Build it first (npm run build), then rerun the benchmark.`);
  }
  const fx = ensureFixture(log);
  const runs = opts.runs ?? DEFAULT_RUNS;
  const store = `export-graph:${fx.graphFile}`;
  // nix-seal must find the store from --store alone: give it no NIX_* variables.
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('NIX_')));
  const closureArgv = [process.execPath, CLI, 'closure', fx.root, '--store', store];
  // --quick: this benchmark measures detection and the look inside, not hashing multi-GiB copies.
  const suggestArgv = [process.execPath, CLI, 'suggest', '--quick', fx.root, '--store', store];
  const sealArgv = [...closureArgv, '--seal-images'];
  // xargs hands the candidates to `sh -c 'find … -exec file -b {} +'` (one command line would be
  // too long for hyperfine: Linux caps one argument at 128 KiB).
  const listFile = join(SUGGEST_DIR, 'candidates.txt');
  writeFileSync(listFile, fx.candidates.join('\n') + '\n');
  const fileArgv = ['xargs', '-d', '\\n', '-a', listFile, 'sh', '-c', 'find "$@" -type f -exec file -b {} +', 'sh'];

  const failures: string[] = [];
  const notes: string[] = [];
  const fail = (title: string, body: string): void => {
    failures.push(title);
    loud(log, title, body);
  };

  // Correctness, one run each (these are the warm-up of the page cache as well).
  log(`suggest: checking outputs (${fmtInt(fx.paths)} paths, ${fx.candidates.length} candidates)`);
  const closureRun = await runCommand(closureArgv[0]!, closureArgv.slice(1), env);
  if (closureRun.code !== 0) throw new Error(`nix-seal closure failed (exit ${closureRun.code}):\n${closureRun.stderr.trim()}`);
  const closureCount = closureRun.stdout.split('\n').filter((l) => l !== '').length;
  if (closureCount !== fx.paths) fail('nix-seal closure printed the wrong closure', `${closureCount} paths, the fixture has ${fx.paths}`);

  const jsonRun = await runCommand(suggestArgv[0]!, [...suggestArgv.slice(1), '--json'], env);
  let suggest: SuggestJson | undefined;
  if (jsonRun.code !== 0) fail('nix-seal suggest failed', `exit ${jsonRun.code}:\n${jsonRun.stderr.trim()}`);
  else {
    try {
      suggest = JSON.parse(jsonRun.stdout) as SuggestJson;
    } catch (e) {
      fail('nix-seal suggest --json printed no JSON', `${(e as Error).message}\n${jsonRun.stdout.slice(0, 2000)}`);
    }
  }
  const want = new Set(fx.images.map((i) => i.path));
  const got = new Set((suggest?.images ?? []).map((i) => i.path));
  const missing = [...want].filter((p) => !got.has(p));
  const extra = [...got].filter((p) => !want.has(p));
  if (suggest && (missing.length > 0 || extra.length > 0 || got.size !== suggest.images.length)) {
    fail(
      `suggest listed ${suggest.images.length} images, not exactly the ${want.size} of the fixture`,
      [
        ...missing.map((p) => `missing: ${p} (${fx.images.find((i) => i.path === p)!.what})`),
        ...extra.map((p) => `extra:   ${p} (${suggest!.images.find((i) => i.path === p)?.reason ?? ''})`),
      ].join('\n'),
    );
  }
  if (suggest && suggest.full.count !== fx.paths) fail('suggest: wrong full closure', `full.count ${suggest.full.count}, the fixture has ${fx.paths}`);
  if (suggest && missing.length === 0 && extra.length === 0 && suggest.sealedAll.count !== fx.sealedAll) {
    fail('suggest: wrong sealed closure', `sealedAll.count ${suggest.sealedAll.count}, expected ${fx.sealedAll} (all six images sealed)`);
  }
  if (suggest) {
    for (const im of fx.images) {
      const s = suggest.images.find((x) => x.path === im.path);
      if (!s) continue;
      if (s.alone.count !== im.erased) notes.push(`${im.key}: sealing it alone erases ${s.alone.count} paths, the fixture expects ${im.erased}`);
      if (readableImage(im.key) && !s.proven) notes.push(`${im.key}: readable image not proven (${s.inside.contained} contained, ${s.inside.notFound} not found, opaque: ${s.inside.opaque.join(', ') || 'none'})`);
      if (!readableImage(im.key) && s.proven && im.erased > 0) notes.push(`${im.key}: an image nix-seal cannot read is marked proven`);
    }
    for (const w of suggest.warnings) notes.push(`warning: ${w.message}`);
  }
  const sealRun = await runCommand(sealArgv[0]!, sealArgv.slice(1), env);
  if (sealRun.code !== 0) fail('nix-seal closure --seal-images failed', `exit ${sealRun.code}:\n${sealRun.stderr.trim()}`);
  else {
    // It must agree with suggest, and with the fixture when suggest found the right images.
    const n = sealRun.stdout.split('\n').filter((l) => l !== '').length;
    if (suggest && n !== suggest.sealedAll.count) {
      fail('closure --seal-images and suggest disagree', `closure --seal-images printed ${n} paths, suggest's sealedAll.count is ${suggest.sealedAll.count}`);
    } else if (missing.length === 0 && extra.length === 0 && n !== fx.sealedAll) {
      fail('closure --seal-images printed the wrong sealed closure', `${n} paths, expected ${fx.sealedAll}`);
    }
  }

  // What libmagic says about the same files (its output is discarded while timed).
  const fileRun = await runCommand(fileArgv[0]!, fileArgv.slice(1), env);
  if (fileRun.code !== 0) throw new Error(`find … -exec file -b failed (exit ${fileRun.code}):\n${fileRun.stderr.trim()}`);
  const fileLines = fileRun.stdout.split('\n').filter((l) => l !== '');
  const libmagicImages = fileLines.filter((l) => /ISO 9660|Squashfs|QEMU QCOW|DOS\/MBR boot sector|Zstandard compressed/i.test(l));
  if (fileLines.length !== fx.candidateFiles) notes.push(`file -b printed ${fileLines.length} lines for ${fx.candidateFiles} files`);

  // Bytes read, one run each.
  const probe = ioProbe();
  const io = {
    closure: await measureIo(closureArgv, env, probe),
    suggest: await measureIo(suggestArgv, env, probe),
    sealImages: await measureIo(sealArgv, env, probe),
  };
  const extraRead = io.closure && io.suggest ? io.suggest.rchar - io.closure.rchar : undefined;
  const extraReadSeal = io.closure && io.sealImages ? io.sealImages.rchar - io.closure.rchar : undefined;
  const perCandidate = extraRead === undefined ? undefined : extraRead / fx.candidates.length;

  // Timing: everything in one hyperfine run. A failing command would abort it: leave those out.
  let a: HyperfineStats | undefined;
  let b: HyperfineStats | undefined;
  let c: HyperfineStats | undefined;
  let d: HyperfineStats | undefined;
  const cmds = [
    { key: 'A', name: 'A: nix-seal closure', argv: closureArgv, ok: closureRun.code === 0 },
    { key: 'B', name: 'B: nix-seal suggest', argv: suggestArgv, ok: jsonRun.code === 0 },
    { key: 'C', name: 'C: nix-seal closure --seal-images', argv: sealArgv, ok: sealRun.code === 0 },
    { key: 'D', name: 'D: find … -exec file -b {} +', argv: fileArgv, ok: true },
  ].filter((x) => x.ok);
  const stats = await hyperfine(
    cmds.map(({ name, argv }) => ({ name, argv })),
    { warmup: 1, runs, env, exportJson: join(BENCH_DIR, 'hyperfine-suggest.json') },
  );
  cmds.forEach((cmd, i) => {
    const s = stats[i];
    if (cmd.key === 'A') a = s;
    else if (cmd.key === 'B') b = s;
    else if (cmd.key === 'C') c = s;
    else d = s;
  });
  const bMinusA = a && b ? b.median - a.median : undefined;
  const cMinusA = a && c ? c.median - a.median : undefined;
  const ratio = d && bMinusA !== undefined && bMinusA > 0 ? d.median / bMinusA : undefined;
  const ratioSeal = d && cMinusA !== undefined && cMinusA > 0 ? d.median / cMinusA : undefined;
  const extraMet = (x: number | undefined): boolean => x !== undefined && x < TARGETS.maxExtraSeconds;
  const bytesMet = perCandidate !== undefined && perCandidate <= TARGETS.maxExtraBytesPerCandidate;

  // Report.
  const apparent = fx.images.reduce((s, i) => s + i.bytes, 0);
  const row = (h: HyperfineStats | undefined, label: string, minusA: string, read: string): string =>
    `| ${label} | ${h ? fmtSeconds(h.median) : 'n/a'} | ${h ? fmtTime(h) : 'n/a'} | ${minusA} | ${read} |`;
  const imageRows = fx.images.map((im) => {
    const s = suggest?.images.find((x) => x.path === im.path);
    const formats = s ? [...new Set(s.files.map((f) => f.format))].join(', ') : '**not detected** ❌';
    const inside = s ? `${s.inside.contained} / ${s.alone.count}${s.inside.opaque.length > 0 ? ' (opaque)' : ''}` : '–';
    return `| ${im.key} | ${im.what} | ${fmtBytes(im.bytes)} (${fmtBytes(im.diskBytes)} on disk) | ${im.refs} | ${formats} | ${inside} | ${s ? (s.proven ? 'yes' : 'no') : '–'} |`;
  });
  const md = [
    '## Suggest: `nix-seal suggest` and `--seal-images` vs libmagic (`file -b`)',
    '',
    `Run: \`node dist/bench/run.js suggest\` (part of \`npm run bench\`), ${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC.`,
    '',
    `Fixture (\`bench/suggest.ts\`, generated once in ${fx.seconds.toFixed(0)} s under \`.bench/suggest-store-v1/\`): ` +
      `a closure of ${fmtInt(fx.paths)} store paths (${fmtInt(fx.references)} references) read with \`--store export-graph:FILE\`, ` +
      `${fmtInt(fx.candidates.length)} of them with references (the candidates nix-seal sniffs: ${fmtInt(fx.candidateFiles)} regular files), ` +
      `holding six images of ${(apparent / GiB).toFixed(0)} GiB apparent size in all (sparse files). ` +
      `hyperfine, same run, page cache warm, 1 warm-up and ${a?.runs ?? runs} timed runs; load average ${loadavg()[0]?.toFixed(2)}.`,
    '',
    '| command | median | mean ± σ | minus A (medians) | bytes read (rchar, one run) |',
    '|---|--:|--:|--:|--:|',
    row(a, 'A: `nix-seal closure ROOT --store export-graph:FILE`', '–', fmtBytes(io.closure?.rchar)),
    row(b, 'B: `nix-seal suggest ROOT --store export-graph:FILE`', bMinusA === undefined ? 'n/a' : `**${fmtMs(bMinusA)}** ${mark(extraMet(bMinusA))}`, fmtBytes(io.suggest?.rchar)),
    row(c, 'C: `nix-seal closure ROOT --store export-graph:FILE --seal-images`', cMinusA === undefined ? 'n/a' : `**${fmtMs(cMinusA)}** ${mark(extraMet(cMinusA))}`, fmtBytes(io.sealImages?.rchar)),
    row(d, 'D: `xargs -a CANDIDATES sh -c \'find "$@" -type f -exec file -b {} +\'` (libmagic)', '–', '–'),
    '',
    `- Sniffing and the containment check (B−A): ${bMinusA === undefined ? 'n/a' : fmtMs(bMinusA)}; sniffing alone (C−A): ` +
      `${cMinusA === undefined ? 'n/a' : fmtMs(cMinusA)} (target: under ${fmtMs(TARGETS.maxExtraSeconds)} each, "well under a second" beyond the closure) ` +
      `${mark(extraMet(bMinusA) && extraMet(cMinusA))}.`,
    `- libmagic on the same candidates (D) against nix-seal's extra time: D/(B−A) = ${ratio === undefined ? 'n/a (B−A within noise)' : `**${ratio.toFixed(1)}×**`}` +
      `, D/(C−A) = ${ratioSeal === undefined ? 'n/a' : `${ratioSeal.toFixed(1)}×`}. libmagic named ${libmagicImages.length} of the ${fmtInt(fileLines.length)} files an image or archive ` +
      `(ISO 9660, squashfs, qcow2, DOS/MBR, zstd); it says nothing about references or what the images hold.`,
    `- Extra bytes read by suggest over closure: ${fmtBytes(extraRead)} (${perCandidate === undefined ? 'n/a' : `${(perCandidate / 1024).toFixed(1)} KiB`} per candidate; ` +
      `target ≤ ${TARGETS.maxExtraBytesPerCandidate / 1024} KiB ${mark(bytesMet)}); closure --seal-images: ${fmtBytes(extraReadSeal)}. ` +
      `Reading the images whole would be ${(apparent / GiB).toFixed(0)} GiB.`,
    '',
    '| image | what | size | references | detected as | erased paths contained | proven |',
    '|---|---|--:|--:|---|--:|---|',
    ...imageRows,
    '',
    failures.length
      ? `**BENCHMARK FAILED**: ${failures.join('; ')}.`
      : `\`suggest --json\` listed exactly the six images; full closure ${fmtInt(fx.paths)}, sealed closure ${fmtInt(fx.sealedAll)} paths (suggest and closure --seal-images agree).`,
    ...(notes.length ? ['', 'Notes:', '', ...notes.map((n) => `- ${n}`)] : []),
  ].join('\n');

  return {
    ok: failures.length === 0,
    failures,
    markdown: md,
    data: {
      ok: failures.length === 0,
      failures,
      notes,
      fixture: {
        dir: SUGGEST_DIR,
        paths: fx.paths,
        references: fx.references,
        candidates: fx.candidates.length,
        candidateFiles: fx.candidateFiles,
        sealedAll: fx.sealedAll,
        images: fx.images,
        seconds: fx.seconds,
      },
      targets: TARGETS,
      timings: { closure: a, suggest: b, sealImages: c, libmagic: d },
      extraSeconds: { suggest: bMinusA, sealImages: cMinusA },
      ratio: { libmagicOverSuggest: ratio, libmagicOverSealImages: ratioSeal },
      io,
      extraRead: { suggest: extraRead, sealImages: extraReadSeal, perCandidate },
      libmagicImages: libmagicImages.length,
      detected: suggest?.images.map((s) => ({ path: s.path, formats: s.files.map((f) => f.format), alone: s.alone.count, inside: s.inside, proven: s.proven })),
      targetsMet: { suggest: extraMet(bMinusA), sealImages: extraMet(cMinusA), bytes: bytesMet },
    },
  };
}

export const suggestBenchmark: Benchmark = {
  name: 'suggest',
  description: 'nix-seal suggest / --seal-images over the closure alone, and libmagic on the same 3,001-path closure with 6 multi-GiB images',
  run: runSuggest,
};

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--fixture') {
    const fx = ensureFixture((s) => void process.stderr.write(s + '\n'));
    console.log(JSON.stringify({ ...fx, candidates: fx.candidates.length }, null, 2));
    return 0;
  }
  console.error('usage: node dist/bench/suggest.js --fixture   (generate the fixture; run the benchmark with node dist/bench/run.js suggest)');
  return 2;
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
