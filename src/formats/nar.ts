/**
 * NAR ("Nix ARchive") serialisation of a path on disk: exactly the bytes of `nix-store --dump`.
 *
 * Format (see NIX-FORMATS.md): every token is a u64 little-endian length, the bytes, and zero
 * padding to a multiple of 8. Only the file type, the owner-executable bit, contents, symlink
 * targets and byte-wise sorted entry names are recorded.
 *
 * Paths are carried as Buffers internally so that file names which are not valid UTF-8 survive
 * the round trip through readdir and lstat unchanged (a JS string would replace those bytes).
 */
import { closeSync, constants as fsConstants, fstatSync, lstatSync, openSync, readSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { READ_CHUNK, SLASH, readAsync, walkNarOrder } from './fs-walk.js';
import { createHash } from 'node:crypto';
import { itemAt } from '../checked-index.js';
import { NixSealError, describeSystemError } from '../errors.js';
import { encodeNix32 } from '../store/nix32.js';

/** Small tokens (and small files' contents) are handed over in batches of up to this size. */
const BATCH = 1 << 20;

const O_NOFOLLOW = fsConstants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = fsConstants.O_NONBLOCK ?? 0;

/** The padded size of a token holding `len` bytes: 8-byte length, bytes, padding to 8. */
function tokenSize(len: number): number {
  return 8 + Math.ceil(len / 8) * 8; // not `& ~7`: bit operations truncate files over 2 GiB
}

/**
 * Small tokens ("(", "type", names, lengths…) are collected here and handed on in batches, so that
 * a tree of many small files costs few hand-overs (each one is a hash update or a stream chunk).
 */
class TokenBuffer {
  buf: Buffer;
  pos = 0;
  constructor(private readonly reuse: boolean) {
    this.buf = Buffer.allocUnsafe(BATCH);
  }

  room(): number {
    return this.buf.length - this.pos;
  }

  /**
   * The collected bytes, at a point where the consumer takes them before anything else is written.
   * With `reuse` they stay in the buffer, which is overwritten afterwards; without it the consumer
   * gets bytes of its own (a copy when they fill less than half the buffer, so that a kept chunk
   * does not pin a mostly empty megabyte).
   */
  take(): Buffer {
    const out = this.buf.subarray(0, this.pos);
    this.pos = 0;
    if (this.reuse) return out;
    if (out.length < this.buf.length / 2) return Buffer.from(out);
    this.buf = Buffer.allocUnsafe(BATCH);
    return out;
  }

  /**
   * Room for `n` more bytes. When the buffer is full its bytes go to `out` to be handed over later,
   * so they must not be overwritten: continue in a new buffer (once per MiB of tokens, even when
   * reusing). A token larger than a chunk (a huge symlink target) gets a buffer of its own size.
   */
  private ensure(n: number, out: Buffer[]): void {
    if (this.room() >= n) return;
    if (this.pos > 0) out.push(this.buf.subarray(0, this.pos));
    this.buf = Buffer.allocUnsafe(Math.max(BATCH, n));
    this.pos = 0;
  }

  u64(n: number, out: Buffer[]): void {
    this.ensure(8, out);
    // Sizes are below 2^53, so two 32-bit halves hold them exactly.
    this.buf.writeUInt32LE(n % 0x1_0000_0000, this.pos);
    this.buf.writeUInt32LE(Math.floor(n / 0x1_0000_0000), this.pos + 4);
    this.pos += 8;
  }

  /** Zero padding after `len` bytes of payload. */
  pad(len: number, out: Buffer[]): void {
    const p = (8 - (len & 7)) & 7;
    if (p === 0) return;
    this.ensure(p, out);
    this.buf.fill(0, this.pos, this.pos + p);
    this.pos += p;
  }

  bytes(b: Uint8Array, out: Buffer[]): void {
    this.ensure(tokenSize(b.length), out);
    this.u64(b.length, out);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    this.pad(b.length, out);
  }
}

/** Pre-encoded constant tokens. */
const TOKENS = ['nix-archive-1', '(', ')', 'type', 'regular', 'executable', '', 'contents', 'symlink', 'target', 'directory', 'entry', 'name', 'node'] as const;
const T = Object.fromEntries(TOKENS.map((s) => [s, Buffer.from(s)])) as Record<(typeof TOKENS)[number], Buffer>;
const tok = (s: (typeof TOKENS)[number]): Buffer => T[s];

/** "Cannot <action> <path>: <why>" for a failed system call on a path walked as a NAR tree. */
export function treeIoError(action: string, path: Buffer, err: unknown): NixSealError {
  const p = path.toString();
  return new NixSealError('EIO', `Cannot ${action} ${p}: ${describeSystemError(err)}`, { path: p, cause: err });
}

/** A socket, fifo or device: what a NAR (and so a store path) cannot hold. */
export function treeTypeError(action: string, path: Buffer, st: Stats): NixSealError {
  const what = st.isSocket()
    ? 'a socket'
    : st.isFIFO()
      ? 'a named pipe'
      : st.isCharacterDevice()
        ? 'a character device'
        : st.isBlockDevice()
          ? 'a block device'
          : 'a file of unknown type';
  const p = path.toString();
  return new NixSealError('EFORMAT', `Cannot ${action} ${p}: it is ${what}, which a NAR cannot hold`, { path: p });
}

/**
 * Opens a file that lstat showed to be regular, for reading its contents. If it was swapped since:
 * O_NOFOLLOW fails on a symlink rather than following it, O_NONBLOCK keeps a fifo from blocking the
 * open, and fstat rejects anything but a regular file. The caller closes the descriptor.
 */
export function openTreeFile(action: string, path: Buffer): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    throw treeIoError(action, path, err);
  }
  let st: Stats;
  try {
    st = fstatSync(fd);
  } catch (err) {
    closeSync(fd);
    throw treeIoError(action, path, err);
  }
  if (!st.isFile()) {
    closeSync(fd);
    throw treeTypeError(action, path, st);
  }
  return { fd, size: st.size };
}

const ioError = (path: Buffer, err: unknown): NixSealError => treeIoError('serialise', path, err);
const unsupportedType = (path: Buffer, st: Stats): NixSealError => treeTypeError('serialise', path, st);
const WALK_ERRORS = { io: ioError, type: unsupportedType };

function lstatOrThrow(path: Buffer): Stats {
  try {
    return lstatSync(path);
  } catch (err) {
    throw ioError(path, err);
  }
}

/**
 * The NAR of `root` as a sequence of chunks. With `reuse`, chunks point into buffers that are
 * overwritten once the consumer asks for the next chunk (fine for hashing, which consumes each chunk
 * at once); without it every chunk is freshly allocated and may be kept.
 */
async function* narChunks(root: Buffer, reuse: boolean): AsyncGenerator<Buffer, void, undefined> {
  const tb = new TokenBuffer(reuse);
  const ready: Buffer[] = [];
  // One data buffer for large files when reusing. Reading ahead into a second buffer while the
  // consumer hashes the first was measured: no faster, as a read from the page cache takes ~0.1 s
  // per GiB against ~0.65 s for SHA-256.
  const dataBuf = reuse ? Buffer.allocUnsafe(READ_CHUNK) : undefined;

  tb.bytes(tok('nix-archive-1'), ready);
  for (const ev of walkNarOrder(root, WALK_ERRORS)) {
    switch (ev.type) {
      case 'directory':
        tb.bytes(tok('('), ready);
        tb.bytes(tok('type'), ready);
        tb.bytes(tok('directory'), ready);
        break;
      case 'end':
      case 'entry-end':
        tb.bytes(tok(')'), ready);
        break;
      case 'entry':
        tb.bytes(tok('entry'), ready);
        tb.bytes(tok('('), ready);
        tb.bytes(tok('name'), ready);
        tb.bytes(ev.name, ready);
        tb.bytes(tok('node'), ready);
        break;
      case 'symlink':
        tb.bytes(tok('('), ready);
        tb.bytes(tok('type'), ready);
        tb.bytes(tok('symlink'), ready);
        tb.bytes(tok('target'), ready);
        tb.bytes(ev.target, ready);
        tb.bytes(tok(')'), ready);
        break;
      case 'regular':
        tb.bytes(tok('('), ready);
        tb.bytes(tok('type'), ready);
        yield* regularFile(ev.path, ev.st);
        break;
    }
    // Hand over full batches; they were pushed by `ensure` when the token buffer ran out of room.
    while (ready.length > 0) yield ready.shift()!;
  }
  if (tb.pos > 0) yield tb.take();

  async function* regularFile(p: Buffer, lst: Stats): AsyncGenerator<Buffer, void, undefined> {
    const { fd, size } = openTreeFile('serialise', p);
    try {
      tb.bytes(tok('regular'), ready);
      // Nix's rule: executable iff the owner's x bit is set (S_IXUSR), whatever group/other say.
      if (lst.mode & fsConstants.S_IXUSR) {
        tb.bytes(tok('executable'), ready);
        tb.bytes(tok(''), ready);
      }
      tb.bytes(tok('contents'), ready);
      tb.u64(size, ready);

      const shrank = (): NixSealError => {
        const s = p.toString();
        return new NixSealError('EIO', `Cannot serialise ${s}: the file shrank while it was being read`, { path: s });
      };

      if (size <= tb.room()) {
        // Small file: read straight into the token buffer, no extra copy and no extra hand-over.
        let got = 0;
        while (got < size) {
          let n: number;
          try {
            n = readSync(fd, tb.buf, tb.pos + got, size - got, got);
          } catch (err) {
            throw ioError(p, err);
          }
          if (n === 0) throw shrank();
          got += n;
        }
        tb.pos += size;
      } else {
        // Large file: flush the tokens, then stream the contents chunk by chunk.
        for (const c of ready.splice(0)) yield c;
        if (tb.pos > 0) yield tb.take();
        // Read exactly `size` bytes, like Nix (it writes the size first, so growth is ignored).
        for (let offset = 0; offset < size; ) {
          const want = Math.min(READ_CHUNK, size - offset);
          const chunk = dataBuf ? dataBuf.subarray(0, want) : Buffer.allocUnsafe(want);
          let got = 0;
          while (got < want) {
            let n: number;
            try {
              n = await readAsync(fd, chunk, got, want - got, offset + got);
            } catch (err) {
              throw ioError(p, err);
            }
            if (n === 0) throw shrank();
            got += n;
          }
          offset += want;
          yield chunk;
        }
      }
      tb.pad(size, ready);
      tb.bytes(tok(')'), ready);
    } finally {
      try {
        closeSync(fd);
      } catch {
        // Nothing useful to do: the data was read (or an error is already on its way).
      }
    }
  }
}

/**
 * The NAR serialisation of `fsPath` (not followed if it is a symlink), byte for byte what
 * `nix-store --dump fsPath` writes. File contents are read in chunks of at most 4 MiB, so memory
 * stays small whatever the file sizes. Every chunk is a fresh buffer the consumer may keep.
 *
 * Fails with NixSealError 'EIO' (unreadable or vanished file) or 'EFORMAT' (a socket, device or
 * fifo, which a NAR cannot hold).
 */
export function narStream(fsPath: string): AsyncIterable<Uint8Array> {
  return narChunks(Buffer.from(fsPath), false);
}

/**
 * narHash ("sha256:<nix32>") and narSize of `fsPath`, as Nix registers them. Hashes the chunks as
 * they are read, through reused buffers: file data is copied once (kernel to buffer) and hashed.
 */
export async function narHashAndSize(fsPath: string): Promise<{ narHash: string; narSize: number }> {
  const hash = createHash('sha256');
  let narSize = 0;
  for await (const chunk of narChunks(Buffer.from(fsPath), true)) {
    hash.update(chunk);
    narSize += chunk.length;
  }
  return { narHash: `sha256:${encodeNix32(hash.digest())}`, narSize };
}

/**
 * The length of the NAR of `fsPath`, from lstat (and readlink for symlink targets) alone: no file
 * contents are read, so this is cheap even for huge trees.
 */
export async function narSizeOf(fsPath: string): Promise<number> {
  const SMALL = (s: string): number => tokenSize(Buffer.byteLength(s));
  const OPEN = SMALL('(') + SMALL('type');
  const CLOSE = SMALL(')');
  const ENTRY = SMALL('entry') + SMALL('(') + SMALL('name') + SMALL('node') + CLOSE; // plus name and node

  const nodeSize = (path: Buffer): number => {
    const st = lstatOrThrow(path);
    if (st.isFile()) {
      const exec = st.mode & fsConstants.S_IXUSR ? SMALL('executable') + SMALL('') : 0;
      return OPEN + SMALL('regular') + exec + SMALL('contents') + tokenSize(st.size) + CLOSE;
    }
    if (st.isSymbolicLink()) {
      // readlink rather than st_size: some file systems report a symlink's size as 0.
      let target: Buffer;
      try {
        target = readlinkSync(path, { encoding: 'buffer' });
      } catch (err) {
        throw ioError(path, err);
      }
      return OPEN + SMALL('symlink') + SMALL('target') + tokenSize(target.length) + CLOSE;
    }
    if (st.isDirectory()) {
      let total = OPEN + SMALL('directory') + CLOSE;
      let names: Buffer[];
      try {
        names = readdirSync(path, { encoding: 'buffer' }); // order does not matter for a sum
      } catch (err) {
        throw ioError(path, err);
      }
      for (const name of names) {
        total += ENTRY + tokenSize(name.length) + nodeSize(Buffer.concat([path, SLASH, name]));
      }
      return total;
    }
    throw unsupportedType(path, st);
  };
  return SMALL('nix-archive-1') + nodeSize(Buffer.from(fsPath));
}

// ---------------------------------------------------------------------------------------------
// NAR of a tree that is not on disk (a copy inside an image)

/** A node of a tree read from somewhere other than the file system. */
export interface TreeNode {
  type: 'file' | 'dir' | 'symlink' | 'special';
  /** Files: the owner-executable bit. */
  executable?: boolean;
  /** Files: bytes of contents. */
  size: number;
  /** Symlinks. */
  target?: string;
}

/** A read-only tree addressed by '/'-separated paths ('' is never asked: `root` is given). */
export interface NarTree {
  node(path: string): TreeNode | undefined;
  /** A directory's entry names, any order. */
  children(path: string): readonly string[];
  /** A file's contents in chunks, `size` bytes in all. */
  contents(path: string): Iterable<Uint8Array>;
}

/**
 * The NAR serialisation of `root` in `tree`, as chunks (sync: the image readers are). File names
 * and targets are encoded as UTF-8, entries sorted byte-wise as Nix does. A node a NAR cannot hold
 * (a device, fifo or socket) or contents of another length than the node's size are EFORMAT
 * errors naming `name` (how the caller calls the tree) and the path inside.
 *
 * `onData` is told the bytes of file contents as they pass (for a progress bar). A chunk is valid
 * until the next one is asked for (buffers are reused): hash it or copy it at once.
 */
export function* narOfTree(tree: NarTree, root: string, name: string, onData?: (bytes: number) => void): Generator<Uint8Array, void, undefined> {
  const tb = new TokenBuffer(true);
  const ready: Buffer[] = [];
  const where = (p: string): string => (p === root ? name : `${name}/${root === '' ? p : p.slice(root.length + 1)}`);
  const fail = (p: string, why: string): NixSealError => new NixSealError('EFORMAT', `Cannot serialise ${where(p)}: ${why}`, { path: where(p) });
  tb.bytes(tok('nix-archive-1'), ready);
  interface Frame {
    path: string;
    names: Buffer[];
    next: number;
  }
  const stack: Frame[] = [];
  let path: string | undefined = root;
  while (path !== undefined) {
    const n = tree.node(path);
    if (n === undefined) throw fail(path, 'the entry is missing from the tree');
    tb.bytes(tok('('), ready);
    tb.bytes(tok('type'), ready);
    if (n.type === 'dir') {
      tb.bytes(tok('directory'), ready);
      stack.push({ path, names: tree.children(path).map((c) => Buffer.from(c)).sort(Buffer.compare), next: 0 });
    } else if (n.type === 'symlink') {
      tb.bytes(tok('symlink'), ready);
      tb.bytes(tok('target'), ready);
      tb.bytes(Buffer.from(n.target ?? ''), ready);
      tb.bytes(tok(')'), ready);
    } else if (n.type === 'file') {
      tb.bytes(tok('regular'), ready);
      if (n.executable) {
        tb.bytes(tok('executable'), ready);
        tb.bytes(tok(''), ready);
      }
      tb.bytes(tok('contents'), ready);
      tb.u64(n.size, ready);
      for (const c of ready.splice(0)) yield c;
      if (tb.pos > 0) yield tb.take();
      let got = 0;
      for (const chunk of tree.contents(path)) {
        got += chunk.length;
        if (got > n.size) throw fail(path, `its contents are longer than its size (${n.size} bytes)`);
        onData?.(chunk.length);
        yield chunk;
      }
      if (got !== n.size) throw fail(path, `its contents end after ${got} of ${n.size} bytes`);
      tb.pad(n.size, ready);
      tb.bytes(tok(')'), ready);
    } else {
      throw fail(path, 'it is a device, fifo or socket, which a NAR cannot hold');
    }
    let closeEntry = n.type !== 'dir' && stack.length > 0;
    path = undefined;
    while (stack.length > 0) {
      if (closeEntry) tb.bytes(tok(')'), ready);
      const top = itemAt(stack, stack.length - 1);
      if (top.next < top.names.length) {
        const child = itemAt(top.names, top.next++);
        tb.bytes(tok('entry'), ready);
        tb.bytes(tok('('), ready);
        tb.bytes(tok('name'), ready);
        tb.bytes(child, ready);
        tb.bytes(tok('node'), ready);
        path = top.path === '' ? child.toString() : `${top.path}/${child.toString()}`;
        break;
      }
      stack.pop();
      tb.bytes(tok(')'), ready);
      closeEntry = stack.length > 0;
    }
    for (const c of ready.splice(0)) yield c;
  }
  if (tb.pos > 0) yield tb.take();
}

/** narHash ("sha256:<nix32>") and narSize of `root` in `tree`. */
export function narHashOfTree(tree: NarTree, root: string, name: string, onData?: (bytes: number) => void): { narHash: string; narSize: number } {
  const hash = createHash('sha256');
  let narSize = 0;
  for (const chunk of narOfTree(tree, root, name, onData)) {
    hash.update(chunk);
    narSize += chunk.length;
  }
  return { narHash: `sha256:${encodeNix32(hash.digest())}`, narSize };
}
