/**
 * Writing output files so that a reader never sees half of one: each file is written to a
 * temporary file next to its target (same directory, so the same file system), flushed, and then
 * renamed over the target. On any error every temporary file is removed and no target is touched.
 */
import { randomBytes } from 'node:crypto';
import * as fsSync from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { describeSystemError, errnoCode, NixSealError } from '../errors.js';
import { itemAt } from '../checked-index.js';

export interface FileToWrite {
  path: string;
  data: string | Uint8Array;
}

function writeError(target: string, err: unknown): NixSealError {
  if (err instanceof NixSealError) return err;
  const code = errnoCode(err);
  const dir = path.dirname(target);
  const why = code === 'ENOENT' ? `directory ${dir} does not exist` : code === 'ENOTDIR' ? `${dir} is not a directory` : describeSystemError(err);
  return new NixSealError('EIO', `Cannot write ${target}: ${why}`, { path: target, cause: err });
}

/** `.NAME.nix-seal-PID-RANDOM.tmp` beside `target`: hidden, unique, and clearly ours if left by a crash. */
function tempNameFor(target: string): string {
  return path.join(path.dirname(target), `.${path.basename(target)}.nix-seal-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
}

/** Fails early, before anything is written, when a target is an existing directory (rename would fail late). */
async function checkTarget(target: string): Promise<void> {
  let st: import('node:fs').Stats;
  try {
    st = await fs.lstat(target);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return; // a new file: the usual case
    throw writeError(target, err);
  }
  if (st.isDirectory()) throw new NixSealError('EIO', `Cannot write ${target}: it is a directory`, { path: target });
}

/**
 * Writes every file or none: all contents go to temporary files first, then each is renamed over
 * its target. A failure while writing (missing directory, full disk) leaves every target as it was
 * and no temporary file behind. Files are created with mode 0666 minus the umask, like any
 * ordinary write.
 */
export async function writeFilesAtomic(files: readonly FileToWrite[]): Promise<void> {
  for (const f of files) await checkTarget(f.path);
  const temps: string[] = [];
  let renamed = 0; // the first `renamed` temps are their targets now: the cleanup leaves them
  try {
    for (const f of files) {
      const tmp = tempNameFor(f.path);
      let fh: fs.FileHandle;
      try {
        fh = await fs.open(tmp, 'wx', 0o666);
      } catch (err) {
        throw writeError(f.path, err);
      }
      temps.push(tmp);
      try {
        await fh.writeFile(f.data);
        // Flushed before the rename: after a crash the target is the old file or the whole new one.
        await fh.sync();
      } catch (err) {
        throw writeError(f.path, err);
      } finally {
        await fh.close().catch(() => {});
      }
    }
    for (const [i, { path: target }] of files.entries()) {
      try {
        await fs.rename(itemAt(temps, i), target);
      } catch (err) {
        throw writeError(target, err);
      }
      renamed++;
    }
  } catch (err) {
    for (const t of temps.slice(renamed)) await fs.rm(t, { force: true }).catch(() => {});
    throw err;
  }
}

/** Writes one file atomically (see writeFilesAtomic). */
export async function writeFileAtomic(target: string, data: string | Uint8Array): Promise<void> {
  await writeFilesAtomic([{ path: target, data }]);
}

async function statOrUndefined(p: string): Promise<import('node:fs').Stats | undefined> {
  try {
    return await fs.stat(p);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw writeError(p, err);
  }
}

/**
 * Checks, without creating anything, that `dir` can be an output directory: it is a directory, or
 * it is missing and its parent is a directory. Returns whether it exists. For failing early,
 * before expensive work.
 */
export async function checkOutputDir(dir: string): Promise<boolean> {
  const st = await statOrUndefined(dir);
  if (st !== undefined) {
    if (!st.isDirectory()) throw new NixSealError('EIO', `Cannot write ${dir}: it is not a directory`, { path: dir });
    return true;
  }
  const parent = path.dirname(dir);
  const pst = await statOrUndefined(parent);
  if (pst === undefined) throw new NixSealError('EIO', `Cannot write ${dir}: its parent directory ${parent} does not exist`, { path: dir });
  if (!pst.isDirectory()) throw new NixSealError('EIO', `Cannot write ${dir}: ${parent} is not a directory`, { path: dir });
  return false;
}

/** Checks, without creating anything, that the directory `file` would be written in exists. */
export async function checkOutputFile(file: string): Promise<void> {
  const dir = path.dirname(file);
  const st = await statOrUndefined(dir);
  if (st === undefined) throw new NixSealError('EIO', `Cannot write ${file}: directory ${dir} does not exist`, { path: file });
  if (!st.isDirectory()) throw new NixSealError('EIO', `Cannot write ${file}: ${dir} is not a directory`, { path: file });
  await checkTarget(file);
}

/**
 * Makes sure `dir` exists as a directory: creates it (not its parents) when missing. Returns true
 * when it was created here, so that a caller that then fails can remove it again.
 */
export async function ensureOutputDir(dir: string): Promise<boolean> {
  if (await checkOutputDir(dir)) return false;
  try {
    await fs.mkdir(dir, { mode: 0o777 });
    return true;
  } catch (err) {
    if (errnoCode(err) === 'EEXIST') return false; // created concurrently
    throw new NixSealError('EIO', `Cannot write ${dir}: ${describeSystemError(err)}`, { path: dir, cause: err });
  }
}

/**
 * A file written in pieces (a stream) that appears whole or not at all: `fd` is a temporary file
 * beside the target; `commit()` flushes it to disk, closes it and renames it over the target
 * (returning its size), `abort()` closes and removes it. The one temp-then-rename writer for
 * streamed outputs (the initrd), as writeFilesAtomic is for outputs held in memory.
 */
export interface AtomicOutput {
  readonly fd: number;
  commit(): number;
  abort(): void;
}

export function openAtomicOutput(target: string, mode = 0o644): AtomicOutput {
  const tmp = tempNameFor(target);
  let fd: number;
  try {
    fd = fsSync.openSync(tmp, 'wx', mode);
  } catch (err) {
    throw writeError(target, err);
  }
  let open = true;
  const close = (): void => {
    if (!open) return;
    open = false;
    try {
      fsSync.closeSync(fd);
    } catch {
      // Already closed by a failed stream: nothing left to release.
    }
  };
  return {
    fd,
    commit() {
      try {
        // Flushed before the rename: after a crash the target is the old file or the whole new one.
        fsSync.fsyncSync(fd);
        const size = fsSync.fstatSync(fd).size;
        close();
        fsSync.renameSync(tmp, target);
        return size;
      } catch (err) {
        close();
        fsSync.rmSync(tmp, { force: true });
        throw writeError(target, err);
      }
    },
    abort() {
      close();
      fsSync.rmSync(tmp, { force: true });
    },
  };
}
