/**
 * NARs on demand: when a command needs the bytes of paths that are not on disk and the graph came
 * from a binary cache, each NAR is streamed from the cache, decompressed, checked (FileSize and
 * FileHash of the download, NarSize and NarHash of the NAR, all while streaming) and unpacked into
 * a temporary store directory with the modes Nix gives store files. A mismatch is an error and the
 * path's tree is removed.
 */
import { spawn } from 'node:child_process';
import { createHash, type Hash as CryptoHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { NixSealError } from '../errors.js';
import { findProgram } from '../io/programs.js';
import { formatHashNix32, hashesEqual, parseHash } from '../store/hash.js';
import type { NarInfoRecord } from '../store/narinfo.js';
import { baseNameOf, type StorePath } from '../store/store-path.js';
import { removeTree, type CacheClient } from './binary-cache-fetch.js';

export { removeTree };

const SLASH = Buffer.from('/');
const SLASH_BYTE = 0x2f;
/** Deepest directory nesting accepted in a NAR (a hostile cache must not exhaust the stack). */
const MAX_DEPTH = 256;
/** Longest name or symlink target token (Nix caps names at 255 bytes; targets at PATH_MAX). */
const MAX_STRING = 4096;

/** Pulls exact byte counts out of an async stream of chunks; `offset` counts what was consumed. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly it: AsyncIterator<Buffer>;
  offset = 0;
  private ended = false;
  constructor(
    src: AsyncIterable<Buffer>,
    private readonly fail: (why: string, offset: number) => NixSealError,
  ) {
    this.it = src[Symbol.asyncIterator]();
  }
  private async fill(n: number): Promise<void> {
    while (this.buf.length < n) {
      const r = this.ended ? { done: true as const, value: undefined } : await this.it.next();
      if (r.done) {
        this.ended = true;
        throw this.fail('the NAR is truncated', this.offset + this.buf.length);
      }
      this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    }
  }
  async take(n: number): Promise<Buffer> {
    await this.fill(n);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    this.offset += n;
    return out;
  }
  /** Up to `n` bytes as they arrive, for file contents. */
  async *stream(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.buf.length === 0) await this.fill(1);
      const k = Math.min(n, this.buf.length);
      const out = this.buf.subarray(0, k);
      this.buf = this.buf.subarray(k);
      this.offset += k;
      n -= k;
      yield out;
    }
  }
  /** Whether anything follows (trailing bytes after the root node are an error). */
  async atEnd(): Promise<boolean> {
    if (this.buf.length > 0) return false;
    for (;;) {
      const r = await this.it.next();
      if (r.done) return true;
      if (r.value.length > 0) {
        this.buf = r.value;
        return false;
      }
    }
  }
}

/**
 * Unpacks a NAR stream at `dest` (which must not exist): directories 0555, files 0444 or 0555 as
 * the executable flag says, symlinks as recorded, as a Nix store holds them. Names are checked
 * (no '/', '.', '..', empty, NUL; strictly ascending) so a hostile NAR cannot write outside `dest`.
 */
export async function unpackNar(src: AsyncIterable<Buffer>, dest: string, what: string): Promise<void> {
  const fail = (why: string, offset: number) => new NixSealError('EFORMAT', `Cannot unpack ${what}: ${why} (at byte ${offset})`, { path: what, offset });
  const r = new ByteReader(src, fail);
  const u64 = async (): Promise<number> => {
    const at = r.offset;
    const b = await r.take(8);
    const n = b.readBigUInt64LE(0);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw fail('a length is too large', at);
    return Number(n);
  };
  const pad = async (len: number): Promise<void> => {
    const p = (8 - (len % 8)) % 8;
    if (p === 0) return;
    const at = r.offset;
    const b = await r.take(p);
    if (b.some((x) => x !== 0)) throw fail('non-zero padding', at);
  };
  const str = async (max = MAX_STRING): Promise<Buffer> => {
    const at = r.offset;
    const len = await u64();
    if (len > max) throw fail(`a string of ${len} bytes`, at);
    const b = Buffer.from(await r.take(len));
    await pad(len);
    return b;
  };
  const expect = async (want: string): Promise<void> => {
    const at = r.offset;
    const got = (await str()).toString('latin1');
    if (got !== want) throw fail(`expected '${want}', found '${got.slice(0, 40)}'`, at);
  };
  const node = async (p: Buffer, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) throw fail(`directories nested deeper than ${MAX_DEPTH}`, r.offset);
    await expect('(');
    await expect('type');
    const at = r.offset;
    const type = (await str()).toString('latin1');
    if (type === 'regular') {
      let tag = (await str()).toString('latin1');
      let executable = false;
      if (tag === 'executable') {
        executable = true;
        await expect('');
        tag = (await str()).toString('latin1');
      }
      if (tag !== 'contents') throw fail(`expected 'contents', found '${tag.slice(0, 40)}'`, r.offset);
      const len = await u64();
      const fh = await fs.promises.open(p, 'wx', 0o644);
      try {
        for await (const chunk of r.stream(len)) await fh.write(chunk);
      } finally {
        await fh.close();
      }
      await pad(len);
      await fs.promises.chmod(p, executable ? 0o555 : 0o444);
    } else if (type === 'symlink') {
      await expect('target');
      const target = await str();
      if (target.length === 0 || target.includes(0)) throw fail('an empty or NUL-holding symlink target', r.offset);
      await fs.promises.symlink(target, p);
    } else if (type === 'directory') {
      await fs.promises.mkdir(p, { mode: 0o755 });
      let prev: Buffer | undefined;
      for (;;) {
        const tagAt = r.offset;
        const tag = (await str()).toString('latin1');
        if (tag === ')') break;
        if (tag !== 'entry') throw fail(`expected 'entry' or ')', found '${tag.slice(0, 40)}'`, tagAt);
        await expect('(');
        await expect('name');
        const nameAt = r.offset;
        const name = await str(255);
        if (name.length === 0 || name.includes(0) || name.includes(SLASH_BYTE) || name.equals(Buffer.from('.')) || name.equals(Buffer.from('..'))) {
          throw fail(`bad entry name '${name.toString('latin1').slice(0, 40)}'`, nameAt);
        }
        if (prev && Buffer.compare(prev, name) >= 0) throw fail('entry names not in ascending order', nameAt);
        prev = name;
        await expect('node');
        await node(Buffer.concat([p, SLASH, name]), depth + 1);
        await expect(')');
      }
      await fs.promises.chmod(p, 0o555);
      return;
    } else {
      throw fail(`unknown node type '${type.slice(0, 40)}'`, at);
    }
    await expect(')');
  };
  await expect('nix-archive-1');
  await node(Buffer.from(dest), 0);
  if (!(await r.atEnd())) throw fail('bytes after the end of the archive', r.offset);
}

/** Passes chunks through, hashing and counting them. */
async function* tap(src: AsyncIterable<Buffer>, h: CryptoHash | undefined, count: { n: number }): AsyncGenerator<Buffer> {
  for await (const c of src) {
    h?.update(c);
    count.n += c.length;
    yield c;
  }
}

/** Decompresses a stream: gzip with node:zlib; xz, zstd and bzip2 through Debian's programs (as the initrd's compressors). */
async function* decompress(kind: string, src: AsyncIterable<Buffer>, what: string): AsyncGenerator<Buffer> {
  if (kind === 'none' || kind === '') {
    yield* src;
    return;
  }
  if (kind === 'gzip') {
    const gunzip = zlib.createGunzip();
    const feeding = pipeline(Readable.from(src), gunzip).catch((err: unknown) => {
      throw new NixSealError('EFORMAT', `Cannot decompress ${what} (gzip): ${(err as Error).message}`, { path: what, cause: err });
    });
    feeding.catch(() => {});
    for await (const c of gunzip) yield c as Buffer;
    await feeding;
    return;
  }
  const program = kind === 'xz' ? 'xz' : kind === 'zstd' ? 'zstd' : kind === 'bzip2' ? 'bzip2' : undefined;
  if (program === undefined) throw new NixSealError('EFORMAT', `Cannot decompress ${what}: unknown compression '${kind}'`, { path: what });
  let exe: string;
  try {
    exe = findProgram(program);
  } catch {
    throw new NixSealError('EFORMAT', `Cannot decompress ${what}: the ${program} program is not installed`, { path: what });
  }
  const child = spawn(exe, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((res) => child.on('close', (code) => res(code)));
  const feeding = pipeline(Readable.from(src), child.stdin);
  feeding.catch(() => {});
  try {
    for await (const c of child.stdout) yield c as Buffer;
    const code = await exited;
    await feeding.catch((err: unknown) => {
      if (err instanceof NixSealError) throw err;
    });
    if (code !== 0) {
      const why = stderr.trim().split('\n').pop()?.replace(/^[^:]*: \(stdin\): /, '') ?? '';
      throw new NixSealError('EFORMAT', `Cannot decompress ${what} (${kind}): ${why || `${program} exited with ${code}`}`, { path: what });
    }
  } finally {
    if (child.exitCode === null) child.kill();
  }
}

/**
 * Fetches `info`'s NAR from the cache and unpacks it at `dest`, verifying the download's FileSize
 * and FileHash and the NAR's NarSize and NarHash. On any failure `dest` is removed.
 */
export async function fetchNarInto(client: CacheClient, info: NarInfoRecord, dest: string): Promise<void> {
  const url = `${client.display}/${info.url}`;
  const what = `the NAR of ${info.storePath} from ${url}`;
  const body = await client.getStream(info.url);
  if (body === undefined) {
    throw new NixSealError('EINVALIDPATH', `Cannot fetch the NAR of ${info.storePath}: ${url} is not in the cache`, { path: info.storePath });
  }
  const fileHash = info.fileHash === undefined ? undefined : parseHash(info.fileHash, 'sha256');
  const narHash = parseHash(info.narHash, 'sha256');
  const fh = fileHash ? createHash(fileHash.algo) : undefined;
  const nh = createHash(narHash.algo);
  const fileBytes = { n: 0 };
  const narBytes = { n: 0 };
  const mismatch = (field: string, got: string, want: string) =>
    new NixSealError('EFORMAT', `Cannot unpack ${what}: its ${field} is ${got}, but the narinfo says ${want}`, { path: info.storePath });
  try {
    try {
      await unpackNar(tap(decompress(info.compression, tap(body, fh, fileBytes), what), nh, narBytes), dest, what);
    } catch (err) {
      // A download cut short shows as a bad NAR; the size says why.
      if (info.fileSize !== undefined && fileBytes.n < info.fileSize && !(err instanceof NixSealError && err.code === 'EIO')) {
        throw new NixSealError('EFORMAT', `Cannot unpack ${what}: the file is truncated (${fileBytes.n} of ${info.fileSize} bytes)`, { path: info.storePath, cause: err });
      }
      throw err;
    }
    if (info.fileSize !== undefined && fileBytes.n !== info.fileSize) throw mismatch('FileSize', String(fileBytes.n), String(info.fileSize));
    if (fileHash && fh) {
      const got = { algo: fileHash.algo, digest: Uint8Array.from(fh.digest()) };
      if (!hashesEqual(got, fileHash)) throw mismatch('FileHash', formatHashNix32(got), info.fileHash!);
    }
    if (narBytes.n !== info.narSize) throw mismatch('NarSize', String(narBytes.n), String(info.narSize));
    const got = { algo: narHash.algo, digest: Uint8Array.from(nh.digest()) };
    if (!hashesEqual(got, narHash)) throw mismatch('NarHash', formatHashNix32(got), info.narHash);
  } catch (err) {
    removeTree(dest);
    throw err;
  }
}

/**
 * Puts the files of `paths` into `dir` (by base name): each copied from `localDir` when it is
 * there, else its NAR fetched from the cache (`infos` holds its narinfo), verified and unpacked;
 * up to `connections` at once. On a failure the failing path leaves nothing behind.
 */
export async function fillStoreDir(
  client: CacheClient,
  infos: ReadonlyMap<StorePath, NarInfoRecord>,
  paths: readonly StorePath[],
  localDir: string,
  dir: string,
  connections = 4,
): Promise<void> {
  const onDisk = (p: StorePath) => fs.existsSync(path.join(localDir, baseNameOf(p)));
  const todo = [...paths];
  let failed = false;
  const worker = async (): Promise<void> => {
    for (let p = todo.shift(); p !== undefined && !failed; p = todo.shift()) {
      const dest = path.join(dir, baseNameOf(p));
      try {
        if (onDisk(p)) {
          fs.cpSync(path.join(localDir, baseNameOf(p)), dest, { recursive: true, verbatimSymlinks: true });
          continue;
        }
        const info = infos.get(p);
        if (!info) throw new NixSealError('EINVALIDPATH', `Cannot fetch the NAR of ${p}: no narinfo was loaded for it`, { path: p });
        await fetchNarInto(client, info, dest);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(connections, paths.length)) }, worker));
}
