import * as fs from 'node:fs';
import * as path from 'node:path';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { describeSystemError, errnoCode, NixSealError, usageError } from '../errors.js';
import { CpioNewcWriter } from '../formats/cpio-newc.js';
import type { RefGraph } from '../graph/ref-graph.js';
import type { PathMask } from '../graph/closure.js';
import { baseNameOf } from '../store/store-path.js';
import { startCompressor, type CompressorChoice } from './compress.js';
import { openAtomicOutput } from './atomic-write.js';
import { itemAt } from '../checked-index.js';

/** One thing in the image, named without the leading '/' ("nix/store/…-qemu/bin/qemu"). */
type Entry =
  | { kind: 'dir'; name: string; mode: number }
  | { kind: 'file'; name: string; mode: number; size: number; source: string | Buffer }
  | { kind: 'symlink'; name: string; target: string };

export interface InitrdSpec {
  graph: RefGraph;
  kept: PathMask;
  /** Where the store's files really are (differs from the store dir for `local?root=`). */
  realStoreDir: string;
  /**
   * Where the store dir whose modes the directories above the store take is (default
   * `realStoreDir`): the logical store dir when `realStoreDir` is a temporary copy.
   */
  modesFrom?: string;
  /** Symlinks to add: image path (absolute) → target. `/init` → the --init path. */
  links: { dest: string; target: string }[];
  /** Extra files: image path (absolute) → contents (the registration). */
  files: { dest: string; contents: Buffer }[];
  /** Uncompressed cpio archives to put first (CPU microcode). */
  prepend: string[];
  compressor: CompressorChoice;
  /** Create the output's directory (one level) when it is missing. */
  mkdir?: boolean;
  /** Called as archive bytes are produced, with the total expected. */
  progress?: (done: number, total: number) => void;
}

export interface InitrdResult {
  output: string;
  entries: number;
  storePaths: number;
  /** Bytes of file contents archived (before compression). */
  contentBytes: number;
  cpioBytes: number;
  outputBytes: number;
}

const fail = (p: string, err: unknown, action = 'read'): never => {
  throw new NixSealError('EIO', `Cannot ${action} ${p}: ${describeSystemError(err)}`, { path: p, cause: err });
};

/** Every entry below a store path on disk, by lstat; contents are streamed later. */
function walkStorePath(realPath: string, name: string, out: Entry[]): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(realPath);
  } catch (err) {
    return fail(realPath, err);
  }
  const mode = st.mode & 0o7777;
  if (st.isSymbolicLink()) {
    let target: string;
    try {
      target = fs.readlinkSync(realPath);
    } catch (err) {
      return fail(realPath, err);
    }
    out.push({ kind: 'symlink', name, target });
  } else if (st.isDirectory()) {
    out.push({ kind: 'dir', name, mode });
    let names: string[];
    try {
      names = fs.readdirSync(realPath);
    } catch (err) {
      return fail(realPath, err);
    }
    for (const n of names) walkStorePath(path.join(realPath, n), `${name}/${n}`, out);
  } else if (st.isFile()) {
    out.push({ kind: 'file', name, mode, size: st.size, source: realPath });
  } else {
    throw new NixSealError('EFORMAT', `Cannot put ${realPath} into an initrd: it is neither a file, a directory nor a symlink`, {
      path: realPath,
    });
  }
}

/** "a/b/c" → ["a", "a/b"]: directories an entry needs above it. */
function parents(name: string): string[] {
  const out: string[] = [];
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) out.push(name.slice(0, i));
  return out;
}

/**
 * The modes `cp -p --parents` gives the directories above the store paths: those of the store dir
 * and its ancestors on disk (for `local?root=DIR` the real ones under DIR), by depth from the
 * store dir; 0755 where one cannot be read (the store is not on this machine: the paths came from
 * a binary cache or an image; 0755 is what a single-user Nix gives its store dir).
 */
function storeDirModes(storeDir: string, realStoreDir: string): Map<string, number> {
  const modes = new Map<string, number>();
  let logical = storeDir;
  let real = realStoreDir;
  while (logical !== '/' && logical !== '.') {
    let mode = 0o755;
    try {
      mode = fs.statSync(real).mode & 0o7777;
    } catch {
      // A file source describing a store that is not here: nothing to copy the mode from.
    }
    modes.set(logical.replace(/^\/+/, ''), mode);
    logical = path.posix.dirname(logical);
    real = path.dirname(real);
  }
  return modes;
}

/** Directories nixpkgs' make-initrd.sh creates in every image ("needed for splash_helper"). */
const MAKE_INITRD_DIRS = ['dev', 'proc', 'sys'];

/**
 * Lists the image as nixpkgs' current make-initrd.sh lays it out: `dev`, `proc` and `sys`, the
 * links (their directories 0755, as `mkdir -p`), the sealed closure copied with `cp -prd
 * --parents` (so the directories above the store paths have the modes of the store dir and its
 * parents), archived from inside the root with `find * .[^.*] -print0 | sort -z` (no "." entry;
 * byte-wise order, so "a-b" sorts before "a/x"), with directory link counts as the file system
 * reports them for such a tree (2 + subdirectories), so that GNU cpio over a copy gives the same
 * bytes.
 */
export function planInitrd(spec: InitrdSpec): Entry[] {
  const g = spec.graph;
  const storeName = g.storeDir.replace(/^\/+/, '');
  const entries: Entry[] = [];
  for (let i = 0; i < g.paths.length; i++) {
    if (!spec.kept[i]) continue;
    const base = baseNameOf(itemAt(g.paths, i));
    walkStorePath(path.join(spec.realStoreDir, base), `${storeName}/${base}`, entries);
  }
  const taken = new Map<string, Entry>(entries.map((e) => [e.name, e]));
  const add = (e: Entry, what: string): void => {
    const clash = taken.get(e.name);
    if (clash && !(clash.kind === 'dir' && e.kind === 'dir')) {
      throw usageError(`${what}: /${e.name} is already in the image`);
    }
    if (!clash) {
      taken.set(e.name, e);
      entries.push(e);
    }
  };
  for (const l of spec.links) add({ kind: 'symlink', name: l.dest.replace(/^\/+/, ''), target: l.target }, `--link ${l.dest}`);
  for (const f of spec.files) {
    add({ kind: 'file', name: f.dest.replace(/^\/+/, ''), mode: 0o444, size: f.contents.length, source: f.contents }, f.dest);
  }
  for (const d of MAKE_INITRD_DIRS) add({ kind: 'dir', name: d, mode: 0o755 }, `/${d}`);
  // Directories above everything: the store dir and its parents with their modes on disk, a
  // link's parents 0755.
  const storeModes = storeDirModes(g.storeDir, spec.modesFrom ?? spec.realStoreDir);
  for (const e of [...entries]) for (const d of parents(e.name)) add({ kind: 'dir', name: d, mode: storeModes.get(d) ?? 0o755 }, `/${d}`);
  const keyed = entries.map((e) => ({ e, k: Buffer.from(e.name) }));
  keyed.sort((a, b) => Buffer.compare(a.k, b.k));
  return keyed.map((x) => x.e);
}

function subdirCounts(entries: Entry[]): Map<string, number> {
  const count = new Map<string, number>();
  for (const e of entries) {
    if (e.kind !== 'dir' || e.name === '.') continue;
    const slash = e.name.lastIndexOf('/');
    const parent = slash < 0 ? '.' : e.name.slice(0, slash);
    count.set(parent, (count.get(parent) ?? 0) + 1);
  }
  return count;
}

/**
 * Writes the initrd: prepended archives, then the compressed cpio stream, into a temporary file
 * next to `output` that is renamed at the end. Memory stays bounded: file contents stream from
 * disk through the compressor with back-pressure, nothing is staged.
 */
export async function writeInitrd(spec: InitrdSpec, output: string): Promise<InitrdResult> {
  const dir = path.dirname(path.resolve(output));
  // --mkdir: a Nix build has no shell to create $out before writing $out/initrd.
  let madeDir = false;
  if (spec.mkdir && !fs.existsSync(dir)) {
    try {
      fs.mkdirSync(dir);
      madeDir = true;
    } catch (err) {
      fail(dir, err, 'create');
    }
  }
  try {
    if (!fs.statSync(dir).isDirectory()) throw Object.assign(new Error(), { code: 'ENOTDIR' });
  } catch (err) {
    fail(dir, err, `write ${output} into`);
  }
  const entries = planInitrd(spec);
  const subdirs = subdirCounts(entries);
  const contentBytes = entries.reduce((a, e) => a + (e.kind === 'file' ? e.size : 0), 0);
  const target = openAtomicOutput(output);
  // The stream leaves the descriptor open: commit() flushes and closes it before the rename.
  const out = fs.createWriteStream('', { fd: target.fd, autoClose: false, highWaterMark: 1 << 20 });
  const stage = startCompressor(spec.compressor);
  const writer = new CpioNewcWriter();
  try {
    for (const p of spec.prepend) {
      try {
        for await (const chunk of fs.createReadStream(p)) if (!out.write(chunk)) await once(out, 'drain');
      } catch (err) {
        fail(p, err);
      }
    }
    const produce = (async () => {
      let done = 0;
      for (const e of entries) {
        if (e.kind === 'dir') await writer.addDirectory(e.name, e.mode, { nlink: 2 + (subdirs.get(e.name) ?? 0) });
        else if (e.kind === 'symlink') await writer.addSymlink(e.name, e.target);
        else if (typeof e.source !== 'string') await writer.addFile(e.name, e.mode, e.size, e.source);
        else {
          const src = e.source;
          const stream = fs.createReadStream(src, { highWaterMark: 1 << 20 });
          stream.on('error', () => {}); // reported by the writer's iteration below
          try {
            await writer.addFile(e.name, e.mode, e.size, stream);
          } catch (err) {
            stream.destroy();
            // The output closing is a consequence of another stage's failure: keep it as is, ranked below.
            if (err instanceof NixSealError && (err.code !== 'EIO' || err.reason === 'closed')) throw err;
            if (errnoCode(err)) fail(src, err);
            throw new NixSealError('EIO', `Cannot read ${src}: ${(err as Error).message}`, { path: src, cause: err });
          }
          done += e.size;
          spec.progress?.(done, contentBytes);
        }
      }
      await writer.finish();
    })();
    // Every stage settles before we decide; the first failure stops the others. The most telling
    // error wins: a file we could not read, then the compressor's own complaint, then the rest.
    const errors: unknown[] = [];
    const stop = (err: unknown): void => {
      errors.push(err);
      stage.kill();
      writer.readable.destroy();
    };
    const tasks = [produce, pipeline(writer.readable, stage.input), pipeline(stage.output, out), stage.done];
    await Promise.allSettled(tasks.map((t) => t.catch(stop)));
    if (errors.length > 0) {
      const rank = (e: unknown): number =>
        e instanceof NixSealError ? (e.code === 'ECOMPRESS' ? 1 : e.reason === 'closed' ? 2 : 0) : 3;
      throw errors.sort((a, b) => rank(a) - rank(b))[0];
    }
    const outputBytes = target.commit();
    return {
      output,
      entries: entries.length,
      storePaths: spec.kept.reduce((a, b) => a + b, 0),
      contentBytes,
      cpioBytes: writer.bytesWritten,
      outputBytes,
    };
  } catch (err) {
    stage.kill();
    writer.readable.destroy();
    out.destroy();
    target.abort();
    if (madeDir) fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
