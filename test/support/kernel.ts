/**
 * A real Linux kernel for boot tests: Debian's stock amd64 kernel, fetched once with apt and
 * cached in <repo>/.cache/kernel/ (git-ignored).
 *
 * Only the package's /boot directory is unpacked (vmlinuz + config, ~8 MB): the modules (~400 MB)
 * are useless to us, since the initrds under test carry no modules. Everything a test boot needs
 * is built into Debian's kernel: initramfs decompression (gzip, bzip2, lzma, xz, lzo, lz4, zstd),
 * the 8250 serial console (ttyS0), devtmpfs (not auto-mounted: /init must mount it), ACPI
 * power-off, `#!` scripts.
 *
 * Overrides: NIX_SEAL_TEST_KERNEL=/path/to/vmlinuz uses that image (no apt at all);
 * NIX_SEAL_KERNEL_CACHE=/dir moves the cache.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface DebianKernel {
  /** Absolute path of the bzImage. */
  vmlinuz: string;
  /** Kernel release, e.g. "6.1.0-56-amd64" (the part after "vmlinuz-"). */
  version: string;
  /** The matching /boot/config-<version>, when known (undefined for NIX_SEAL_TEST_KERNEL without one beside it). */
  config: string | undefined;
  /** The Debian package it came from, e.g. "linux-image-6.1.0-56-amd64 6.1.192-2" (undefined for an override). */
  packageName: string | undefined;
}

/** The repository root: the nearest ancestor of this file holding package.json (works from test/ and dist/test/). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/** Where kernels are cached: $NIX_SEAL_KERNEL_CACHE or <repo>/.cache/kernel. */
export function kernelCacheDir(): string {
  return resolve(process.env.NIX_SEAL_KERNEL_CACHE ?? join(repoRoot(), '.cache', 'kernel'));
}

class KernelError extends Error {
  constructor(message: string) {
    super(`Cannot get a Debian kernel: ${message}`);
    this.name = 'KernelError';
  }
}

/** Last non-empty line of a failed command's stderr (or its message). */
function lastLine(err: unknown): string {
  const e = err as { stderr?: Buffer | string; message?: string };
  const text = (e.stderr !== undefined ? e.stderr.toString() : '') || e.message || String(err);
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    // apt's "W: Download is performed unsandboxed as root…" is noise, not the cause.
    .filter((l) => l !== '' && !/unsandboxed/.test(l));
  return lines[lines.length - 1] ?? text.trim();
}

function run(cmd: string, args: string[], what: string, cwd?: string): string {
  try {
    return execFileSync(cmd, args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, LC_ALL: 'C' },
      maxBuffer: 64 << 20,
    });
  } catch (err) {
    throw new KernelError(`${what} failed: ${lastLine(err)}`);
  }
}

/** The vmlinuz-* (and its config-*) inside an unpacked package dir, if any. */
function findImage(pkgDir: string): { vmlinuz: string; version: string; config: string | undefined } | undefined {
  const boot = join(pkgDir, 'boot');
  if (!existsSync(boot)) return undefined;
  const image = readdirSync(boot).find((f) => f.startsWith('vmlinuz-'));
  if (image === undefined) return undefined;
  const version = image.slice('vmlinuz-'.length);
  const config = join(boot, `config-${version}`);
  return { vmlinuz: join(boot, image), version, config: existsSync(config) ? config : undefined };
}

/** Compare Debian-ish version strings well enough to pick the newest cached kernel ("6.1.0-56" > "6.1.0-9"). */
function compareNatural(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

/** Kernels already in the cache, newest first. Cache entries are <cache>/<package>_<version>/boot/…. */
function cachedKernels(cache: string): DebianKernel[] {
  if (!existsSync(cache)) return [];
  const found: DebianKernel[] = [];
  for (const entry of readdirSync(cache)) {
    if (entry.startsWith('.')) continue; // in-progress downloads
    const img = findImage(join(cache, entry));
    if (img !== undefined) found.push({ ...img, packageName: entry.replace('_', ' ') });
  }
  return found.sort((x, y) => compareNatural(y.version, x.version));
}

/** Real kernel packages that linux-image-amd64 depends on (first = apt's choice), e.g. ["linux-image-6.1.0-56-amd64"]. */
function candidatePackages(): string[] {
  const out = run('apt-cache', ['depends', 'linux-image-amd64'], 'apt-cache depends linux-image-amd64');
  const pkgs: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*\|?Depends:\s*(linux-image-\S+)/.exec(line);
    if (m?.[1] !== undefined && m[1] !== 'linux-image-amd64') pkgs.push(m[1].replace(/:amd64$/, ''));
  }
  // The signed package carries the vmlinuz; "-unsigned" also does. Try both, signed first.
  const withUnsigned = pkgs.flatMap((p) => (p.endsWith('-unsigned') ? [p] : [p, `${p}-unsigned`]));
  return [...new Set(withUnsigned)];
}

/** apt-cache's candidate version of pkg, or undefined when apt doesn't know the package. */
function candidateVersion(pkg: string): string | undefined {
  let out: string;
  try {
    out = execFileSync('apt-cache', ['policy', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' } });
  } catch {
    return undefined;
  }
  const v = /Candidate:\s*(\S+)/.exec(out)?.[1];
  return v === undefined || v === '(none)' ? undefined : v;
}

/** Download pkg into the cache and unpack its /boot; returns the kernel, or undefined if the package has no vmlinuz. */
function fetchPackage(cache: string, pkg: string, version: string): DebianKernel | undefined {
  const final = join(cache, `${pkg}_${version}`);
  const ready = findImage(final);
  if (ready !== undefined) return { ...ready, packageName: `${pkg} ${version}` };

  // Work in a private dir, then rename into place: concurrent test processes may race here.
  const work = mkdtempSync(join(cache, '.fetch-'));
  try {
    run('apt-get', ['download', `${pkg}=${version}`], `apt-get download ${pkg}=${version}`, work);
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (deb === undefined) throw new KernelError(`apt-get download ${pkg}=${version} produced no .deb in ${work}`);
    const unpacked = join(work, 'pkg');
    mkdirSync(unpacked);
    // Like `dpkg-deb -x`, restricted to ./boot (skips ~400 MB of modules). pipefail: a broken .deb must fail here.
    run(
      'bash',
      ['-o', 'pipefail', '-c', 'dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" --wildcards "./boot/*"', 'sh', join(work, deb), unpacked],
      `unpacking ${deb} (dpkg-deb --fsys-tarfile | tar -x ./boot)`,
    );
    if (findImage(unpacked) === undefined) return undefined;
    try {
      renameSync(unpacked, final);
    } catch (err) {
      // Another process won the race: use its copy.
      if (findImage(final) === undefined) throw new KernelError(`cannot move the kernel into ${final}: ${lastLine(err)}`);
    }
    const img = findImage(final);
    return img === undefined ? undefined : { ...img, packageName: `${pkg} ${version}` };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

let memo: DebianKernel | undefined;

/**
 * Find or fetch a Debian amd64 kernel. Order: $NIX_SEAL_TEST_KERNEL; the newest kernel already in
 * the cache (no apt, works offline); else `apt-get download` of the package linux-image-amd64
 * depends on (running `apt-get update` once if apt knows no candidate yet), unpacked into the cache.
 * Throws "Cannot get a Debian kernel: …" naming the step that failed.
 */
export function debianKernel(): DebianKernel {
  if (memo !== undefined) return memo;

  const override = process.env.NIX_SEAL_TEST_KERNEL;
  if (override !== undefined && override !== '') {
    const vmlinuz = resolve(override);
    if (!existsSync(vmlinuz)) throw new KernelError(`NIX_SEAL_TEST_KERNEL=${override} does not exist`);
    const version = basename(vmlinuz).replace(/^vmlinuz-?/, '') || 'unknown';
    const config = join(dirname(vmlinuz), `config-${version}`);
    return (memo = { vmlinuz, version, config: existsSync(config) ? config : undefined, packageName: undefined });
  }

  const cache = kernelCacheDir();
  const cached = cachedKernels(cache)[0];
  if (cached !== undefined) return (memo = cached);

  try {
    mkdirSync(cache, { recursive: true });
  } catch (err) {
    throw new KernelError(`cannot create the cache dir ${cache}: ${lastLine(err)}`);
  }

  let pkgs: string[];
  try {
    pkgs = candidatePackages();
    if (pkgs.length === 0) throw new KernelError('apt-cache depends linux-image-amd64 lists no linux-image-* dependency');
  } catch (first) {
    // A fresh container has empty apt lists ("E: No packages found"): update once, then retry.
    const why = (first as Error).message.replace(/^Cannot get a Debian kernel: /, '');
    run('apt-get', ['update'], `apt-get update (run because ${why})`);
    pkgs = candidatePackages();
    if (pkgs.length === 0) throw new KernelError('apt-cache depends linux-image-amd64 lists no linux-image-* dependency, even after apt-get update');
  }

  const tried: string[] = [];
  for (const pkg of pkgs) {
    const version = candidateVersion(pkg);
    if (version === undefined) {
      tried.push(`${pkg} (unknown to apt)`);
      continue;
    }
    const k = fetchPackage(cache, pkg, version);
    if (k !== undefined) return (memo = k);
    tried.push(`${pkg}=${version} (no /boot/vmlinuz-* inside)`);
  }
  throw new KernelError(`no usable kernel package; tried ${tried.join(', ')}`);
}

/** CONFIG_* options of a kernel config file: name → value ("y", "m", "\"…\""); unset options are absent. */
export function kernelConfig(configPath: string): Map<string, string> {
  const opts = new Map<string, string>();
  for (const line of readFileSync(configPath, 'utf8').split('\n')) {
    const m = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) opts.set(m[1], m[2]);
  }
  return opts;
}

export type InitrdCompressor = 'gzip' | 'bzip2' | 'lzma' | 'xz' | 'lzo' | 'lz4' | 'zstd';

/** The initramfs compressors built into this kernel (CONFIG_RD_*=y); undefined when the kernel has no config file to tell. */
export function initrdCompressors(kernel: DebianKernel): Set<InitrdCompressor> | undefined {
  const all: InitrdCompressor[] = ['gzip', 'bzip2', 'lzma', 'xz', 'lzo', 'lz4', 'zstd'];
  if (kernel.config === undefined) return undefined;
  const cfg = kernelConfig(kernel.config);
  if (cfg.get('CONFIG_BLK_DEV_INITRD') !== 'y') return new Set();
  return new Set(all.filter((c) => cfg.get(`CONFIG_RD_${c.toUpperCase()}`) === 'y'));
}
