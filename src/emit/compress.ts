import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import { NixSealError, usageError } from '../errors.js';
import { findProgram as findProgramPath } from '../io/programs.js';

export const COMPRESSORS = ['zstd', 'gzip', 'xz', 'lz4', 'none'] as const;
export type Compressor = (typeof COMPRESSORS)[number];

export interface CompressorChoice {
  name: Compressor;
  /** Level as given, or the nixpkgs default for that compressor. */
  level: number | undefined;
}

const LEVELS: Record<Compressor, [number, number] | undefined> = {
  zstd: [1, 19],
  gzip: [1, 9],
  xz: [0, 9],
  lz4: [1, 12],
  none: undefined,
};

export function parseCompressor(name: string, level?: string): CompressorChoice {
  if (!(COMPRESSORS as readonly string[]).includes(name)) {
    throw usageError(`--compress '${name}': unknown compressor (expected ${COMPRESSORS.join(', ')})`);
  }
  const c = name as Compressor;
  if (level === undefined) return { name: c, level: undefined };
  const range = LEVELS[c];
  const n = Number(level);
  if (!range || !Number.isInteger(n) || n < range[0] || n > range[1]) {
    throw usageError(
      range ? `--level '${level}': ${c} takes a level from ${range[0]} to ${range[1]}` : `--level: compressor 'none' takes no level`,
    );
  }
  return { name: c, level: n };
}

/** The compressor program `name`, or ECOMPRESS saying which Debian package holds it. */
export function findProgram(name: string): string {
  try {
    return findProgramPath(name);
  } catch {
    throw new NixSealError('ECOMPRESS', `Cannot compress with ${name}: the ${name} program is not installed (apt-get install ${name === 'xz' ? 'xz-utils' : name})`);
  }
}

/**
 * The compressor's argv, matching what nixpkgs' makeInitrd pipes through, so that the same cpio
 * stream gives the same bytes. zstd reads stdin as the pipeline does (a file argument would add
 * the content size to the frame header); with any number of worker threads ≥ 1 its output is the
 * same, so two workers speed it up without changing a byte. Not more: each worker holds its own
 * buffers (measured peak RSS at level 10: 130 MB with one, 190 MB with two, 324 MB with four).
 */
function programArgs(c: CompressorChoice): [string, string[]] {
  switch (c.name) {
    case 'zstd':
      return ['zstd', [`-${c.level ?? 10}`, ...(c.level !== undefined && c.level > 19 ? ['--ultra'] : []), '-T2', '-q', '-c']];
    case 'xz':
      // nixpkgs: xz --check=crc32 --lzma2=dict=512KiB (preset 6); one thread, as threads change the blocks.
      return ['xz', ['--check=crc32', `--lzma2=preset=${c.level ?? 6},dict=512KiB`, '-T1', '-c']];
    case 'lz4':
      // -l: the legacy frame, the only lz4 format the kernel's initramfs unpacker reads.
      return ['lz4', ['-l', `-${c.level ?? 1}`, '-q', '-c']];
    default:
      throw new Error(`no program for ${c.name}`);
  }
}

/** A running compressor: write the archive into `input`, read the compressed bytes from `output`. */
export interface CompressionStage {
  input: Writable;
  output: Readable;
  /** Resolves when the compressor exited successfully; rejects with ECOMPRESS otherwise. */
  done: Promise<void>;
  kill(): void;
}

export function startCompressor(c: CompressorChoice): CompressionStage {
  if (c.name === 'none') {
    const p = new PassThrough({ highWaterMark: 1 << 20 });
    return { input: p, output: p, done: Promise.resolve(), kill: () => p.destroy() };
  }
  if (c.name === 'gzip') {
    // zlib writes mtime 0 and no name, like `gzip -9n`.
    const z: Duplex = zlib.createGzip({ level: c.level ?? 9 });
    return { input: z, output: z, done: Promise.resolve(), kill: () => z.destroy() };
  }
  const [prog, args] = programArgs(c);
  const exe = findProgram(prog);
  const child: ChildProcessByStdio<Writable, Readable, Readable> = spawn(exe, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
  // EPIPE on stdin when the compressor dies is reported through `done`, not as a second error.
  child.stdin.on('error', () => {});
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err) => reject(new NixSealError('ECOMPRESS', `Cannot run ${exe}: ${err.message}`, { cause: err })));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else {
        const why = stderr.trim().split('\n').pop() || (signal ? `killed by ${signal}` : `exit code ${code}`);
        reject(new NixSealError('ECOMPRESS', `Cannot compress with ${prog}: ${why}`));
      }
    });
  });
  return { input: child.stdin, output: child.stdout, done, kill: () => child.kill('SIGKILL') };
}
