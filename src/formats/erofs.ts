/**
 * EROFS reader: NixOS can build its store images as EROFS (image.filesystem / the erofs store
 * option), so an audit lists and hashes what is inside. Read-only and bounded (every block address
 * checked, directories visited once, entry and depth budgets).
 *
 * Read: the superblock, compact (32-byte) and extended (64-byte) inodes, the flat plain, flat
 * inline (tail packed after the inode) and chunk-based layouts (holes as zeros), directories,
 * symlinks. Compressed files (lz4, lzma, deflate, zstd) are listed, and reading one is an EFORMAT
 * error naming the algorithm: decoding EROFS's pclusters (fixed-output LZ4 blocks with 0-padding,
 * compact lcluster indexes) is not written yet.
 */
import { NixSealError } from '../errors.js';
import type { ByteSource } from './byte-source.js';
import type { ImageReader, ImageView, InnerEntry, InnerOwner } from './image.js';

export const EROFS_SUPERBLOCK_OFFSET = 1024;
export const EROFS_MAGIC = 0xe0f5e1e2;

/** Superblock field offsets (from the superblock's start). */
export const SB = {
  magic: 0x00,
  blkszbits: 0x0c,
  rootNid: 0x0e,
  blocks: 0x24,
  metaBlkaddr: 0x28,
  featureIncompat: 0x50,
  extraDevices: 0x56,
} as const;

const LAYOUT = { flatPlain: 0, compressedFull: 1, flatInline: 2, compressedCompact: 3, chunkBased: 4 } as const;
const ALGORITHMS = ['lz4', 'lzma', 'deflate', 'zstd'];
const CHUNK_FORMAT_INDEXES = 0x20;
const NULL_ADDR = 0xffffffff;

export interface ErofsLimits {
  maxEntries: number;
  maxDepth: number;
}
const DEFAULT_LIMITS: ErofsLimits = { maxEntries: 2_000_000, maxDepth: 256 };

export interface ErofsInode {
  nid: number;
  offset: number;
  /** 32 or 64. */
  inodeSize: number;
  layout: number;
  mode: number;
  size: number;
  /** raw_blkaddr (flat) or the chunk format (chunk-based). */
  iu: number;
  xattrSize: number;
}

export interface ErofsEntry {
  path: string;
  nid: number;
  type: InnerEntry['type'];
  mode: number;
  size: number;
  target?: string;
}

/** A run of a file: `length` bytes of the file from `fileOffset` at image `offset` (-1: zeros). */
interface Piece {
  fileOffset: number;
  offset: number;
  length: number;
}

const u16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const u32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

export class Erofs {
  readonly blockSize: number;
  readonly blocks: number;
  readonly metaOffset: number;
  readonly rootNid: number;
  readonly incompat: number;
  private walked: ErofsEntry[] | undefined;
  private readonly byPath = new Map<string, ErofsEntry>();
  private owners: { start: number; length: number; path: string; fileOffset: number; dir: boolean }[] | undefined;
  private readonly limits: ErofsLimits;

  constructor(
    readonly src: ByteSource,
    readonly name: string,
    limits: Partial<ErofsLimits> = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    if (src.size < EROFS_SUPERBLOCK_OFFSET + 128) throw this.fail('the image is smaller than a superblock', 0);
    const b = src.read(EROFS_SUPERBLOCK_OFFSET, 128);
    const at = (o: number): number => EROFS_SUPERBLOCK_OFFSET + o;
    if (u32(b, SB.magic) !== EROFS_MAGIC) throw this.fail('no EROFS magic', at(SB.magic));
    const bits = b[SB.blkszbits]!;
    if (bits < 9 || bits > 16) throw this.fail(`block size 2^${bits} is out of range`, at(SB.blkszbits));
    this.blockSize = 1 << bits;
    this.blocks = u32(b, SB.blocks);
    this.metaOffset = u32(b, SB.metaBlkaddr) * this.blockSize;
    this.rootNid = u16(b, SB.rootNid);
    this.incompat = u32(b, SB.featureIncompat);
    if (this.metaOffset >= src.size) throw this.fail('the metadata area starts past the end of the image', at(SB.metaBlkaddr));
  }

  fail(why: string, offset: number): NixSealError {
    return new NixSealError('EFORMAT', `Cannot read ${this.name}: ${why} at offset ${offset}`, { path: this.name, offset });
  }

  private check(offset: number, length: number, from: number, what: string): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset + length > this.src.size) throw this.fail(`${what} (${length} bytes at ${offset}) runs past the end of the image`, from);
  }

  inode(nid: number, from: number): ErofsInode {
    const offset = this.metaOffset + nid * 32;
    this.check(offset, 32, from, `inode ${nid}`);
    let raw = this.src.read(offset, 32);
    const format = u16(raw, 0);
    const extended = (format & 1) !== 0;
    const layout = (format >> 1) & 7;
    if (format >> 5 !== 0) {
      // Bits above the layout (and the newer nlink-is-1 bit 4) are reserved.
      throw this.fail(`inode ${nid} has an unknown format 0x${format.toString(16)}`, offset);
    }
    if (layout > LAYOUT.chunkBased) throw this.fail(`inode ${nid} has an unknown data layout ${layout}`, offset);
    if (extended) {
      this.check(offset, 64, from, `inode ${nid}`);
      raw = this.src.read(offset, 64);
    }
    const icount = u16(raw, 2);
    const size = extended ? u32(raw, 8) + u32(raw, 12) * 2 ** 32 : u32(raw, 8);
    if (!Number.isSafeInteger(size)) throw this.fail(`inode ${nid}'s size is too large`, offset + 8);
    return { nid, offset, inodeSize: extended ? 64 : 32, layout, mode: u16(raw, 4), size, iu: u32(raw, 16), xattrSize: icount === 0 ? 0 : 12 + (icount - 1) * 4 };
  }

  /** Where an uncompressed inode's bytes are. */
  pieces(ino: ErofsInode): Piece[] {
    const bs = this.blockSize;
    const size = ino.size;
    const end = ino.offset + ino.inodeSize + ino.xattrSize;
    if (ino.layout === LAYOUT.compressedFull || ino.layout === LAYOUT.compressedCompact) {
      const h = Math.ceil(end / 8) * 8;
      this.check(h, 8, ino.offset, `inode ${ino.nid}'s compression header`);
      const alg = this.src.read(h, 8)[6]! & 0xf;
      throw this.fail(`inode ${ino.nid} is compressed with ${ALGORITHMS[alg] ?? `algorithm ${alg}`}, which nix-seal cannot decode`, h);
    }
    if (size === 0) return [];
    if (ino.layout === LAYOUT.flatPlain || ino.layout === LAYOUT.flatInline) {
      const inline = ino.layout === LAYOUT.flatInline;
      const tail = inline ? size % bs : 0;
      const full = size - tail;
      const out: Piece[] = [];
      if (full > 0) {
        const at = ino.iu * bs;
        this.check(at, full, ino.offset + 16, `inode ${ino.nid}'s data`);
        out.push({ fileOffset: 0, offset: at, length: full });
      }
      if (tail > 0) {
        if (Math.floor(end / bs) !== Math.floor((end + tail - 1) / bs)) throw this.fail(`inode ${ino.nid}'s inline tail crosses a block boundary`, end);
        this.check(end, tail, ino.offset, `inode ${ino.nid}'s inline tail`);
        out.push({ fileOffset: full, offset: end, length: tail });
      }
      return out;
    }
    // Chunk-based: an array of block addresses (4 bytes) or chunk indexes (8 bytes) after the inode.
    const chunkBits = (ino.iu & 0x1f) + Math.log2(bs);
    if (chunkBits > 40) throw this.fail(`inode ${ino.nid}'s chunk size 2^${chunkBits} is out of range`, ino.offset + 16);
    const chunk = 2 ** chunkBits;
    const indexes = (ino.iu & CHUNK_FORMAT_INDEXES) !== 0;
    const n = Math.ceil(size / chunk);
    const unit = indexes ? 8 : 4;
    const start = indexes ? Math.ceil(end / 8) * 8 : end;
    this.check(start, n * unit, ino.offset, `inode ${ino.nid}'s chunk table`);
    const table = this.src.read(start, n * unit);
    const out: Piece[] = [];
    for (let i = 0; i < n; i++) {
      const len = Math.min(chunk, size - i * chunk);
      const addr = indexes ? u32(table, i * 8 + 4) : u32(table, i * 4);
      if (indexes && u16(table, i * 8 + 2) !== 0) throw this.fail(`inode ${ino.nid}'s chunk ${i} is on extra device ${u16(table, i * 8 + 2)}`, start + i * 8);
      if (addr === NULL_ADDR) out.push({ fileOffset: i * chunk, offset: -1, length: len });
      else {
        this.check(addr * bs, len, start + i * unit, `inode ${ino.nid}'s chunk ${i}`);
        out.push({ fileOffset: i * chunk, offset: addr * bs, length: len });
      }
    }
    return out;
  }

  *readInode(ino: ErofsInode): Generator<Uint8Array> {
    const CHUNK = 1 << 20;
    for (const p of this.pieces(ino)) {
      for (let o = 0; o < p.length; o += CHUNK) {
        const n = Math.min(CHUNK, p.length - o);
        yield p.offset < 0 ? new Uint8Array(n) : this.src.read(p.offset + o, n);
      }
    }
  }

  inodeSource(ino: ErofsInode): ByteSource | undefined {
    if (ino.layout === LAYOUT.compressedFull || ino.layout === LAYOUT.compressedCompact) return undefined;
    const pieces = this.pieces(ino);
    const size = ino.size;
    const src = this.src;
    return {
      size,
      read(o, n) {
        if (!Number.isSafeInteger(o) || !Number.isSafeInteger(n) || o < 0 || n < 0 || o + n > size) throw new RangeError(`read ${n} bytes at ${o} of a ${size}-byte file`);
        const out = new Uint8Array(n);
        for (const p of pieces) {
          const s = Math.max(o, p.fileOffset);
          const e = Math.min(o + n, p.fileOffset + p.length);
          if (e > s && p.offset >= 0) out.set(src.read(p.offset + (s - p.fileOffset), e - s), s - o);
        }
        return out;
      },
    };
  }

  private *dirents(dir: ErofsInode): Generator<{ name: string; nid: number; at: number }> {
    const bs = this.blockSize;
    if (dir.size > 2 ** 32) throw this.fail(`directory inode ${dir.nid} is ${dir.size} bytes`, dir.offset + 8);
    const data = Buffer.concat([...this.readInode(dir)]);
    // Image offsets of the directory's bytes, for messages.
    const pieces = this.pieces(dir);
    const where = (fo: number): number => {
      for (const p of pieces) if (fo >= p.fileOffset && fo < p.fileOffset + p.length) return p.offset + (fo - p.fileOffset);
      return dir.offset;
    };
    for (let b = 0; b < data.length; b += bs) {
      const blk = data.subarray(b, Math.min(data.length, b + bs));
      if (blk.length < 12) throw this.fail(`directory inode ${dir.nid} has a block shorter than one entry`, where(b));
      const first = u16(blk, 8);
      if (first < 12 || first % 12 !== 0 || first > blk.length) throw this.fail(`directory inode ${dir.nid} has a bad first name offset ${first}`, where(b + 8));
      const count = first / 12;
      for (let i = 0; i < count; i++) {
        const nid = u32(blk, i * 12) + u32(blk, i * 12 + 4) * 2 ** 32;
        const off = u16(blk, i * 12 + 8);
        let endOff = i + 1 < count ? u16(blk, (i + 1) * 12 + 8) : blk.length;
        if (i + 1 === count) {
          const nul = blk.indexOf(0, off);
          if (nul >= 0 && nul < endOff) endOff = nul;
        }
        if (off < first || endOff > blk.length || endOff <= off) throw this.fail(`directory inode ${dir.nid} has a bad name offset ${off}`, where(b + i * 12 + 8));
        yield { name: Buffer.from(blk.subarray(off, endOff)).toString('utf8'), nid, at: where(b + i * 12) };
      }
    }
  }

  entries(): ErofsEntry[] {
    if (this.walked !== undefined) return this.walked;
    const out: ErofsEntry[] = [];
    const root = this.inode(this.rootNid, EROFS_SUPERBLOCK_OFFSET + SB.rootNid);
    if ((root.mode & 0xf000) !== 0x4000) throw this.fail('the root inode is not a directory', root.offset);
    const add = (path: string, ino: ErofsInode, at: number): ErofsEntry => {
      const fmt = ino.mode & 0xf000;
      const type: InnerEntry['type'] = fmt === 0x4000 ? 'dir' : fmt === 0x8000 ? 'file' : fmt === 0xa000 ? 'symlink' : 'special';
      const e: ErofsEntry = { path, nid: ino.nid, type, mode: ino.mode, size: ino.size };
      if (type === 'symlink') {
        if (ino.size > 4096) throw this.fail(`symlink inode ${ino.nid} has a ${ino.size}-byte target`, ino.offset + 8);
        e.target = Buffer.concat([...this.readInode(ino)]).toString('utf8');
      }
      if (out.length >= this.limits.maxEntries) throw this.fail(`more than ${this.limits.maxEntries} entries`, at);
      out.push(e);
      this.byPath.set(path, e);
      return e;
    };
    add('', root, root.offset);
    const seen = new Set<number>([root.nid]);
    const stack: { path: string; ino: ErofsInode; depth: number }[] = [{ path: '', ino: root, depth: 0 }];
    while (stack.length > 0) {
      const { path, ino, depth } = stack.pop()!;
      const kids: { path: string; ino: ErofsInode; depth: number }[] = [];
      for (const { name, nid, at } of this.dirents(ino)) {
        if (name === '.' || name === '..') continue;
        if (name === '' || name.includes('/')) throw this.fail(`directory ${path || '/'} holds an entry named ${JSON.stringify(name)}`, at);
        const child = this.inode(nid, at);
        const p = path === '' ? name : `${path}/${name}`;
        if (this.byPath.has(p)) throw this.fail(`${p} is named twice`, at);
        const e = add(p, child, at);
        if (e.type === 'dir') {
          if (seen.has(nid)) throw this.fail(`directory inode ${nid} is linked twice (a loop?)`, at);
          seen.add(nid);
          if (depth + 1 > this.limits.maxDepth) throw this.fail(`directories nest deeper than ${this.limits.maxDepth}`, at);
          kids.push({ path: p, ino: child, depth: depth + 1 });
        }
      }
      for (let i = kids.length - 1; i >= 0; i--) stack.push(kids[i]!);
    }
    return (this.walked = out);
  }

  entry(path: string): ErofsEntry | undefined {
    this.entries();
    return this.byPath.get(path);
  }

  locate(offset: number): InnerOwner {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= this.src.size) throw new RangeError(`locate: offset ${offset} is outside the image (${this.src.size} bytes)`);
    if (offset < EROFS_SUPERBLOCK_OFFSET) return { what: 'EROFS boot area' };
    if (offset < EROFS_SUPERBLOCK_OFFSET + 128) return { what: 'EROFS superblock' };
    if (this.owners === undefined) {
      const runs: NonNullable<Erofs['owners']> = [];
      for (const e of this.entries()) {
        const ino = this.inode(e.nid, EROFS_SUPERBLOCK_OFFSET);
        runs.push({ start: ino.offset, length: ino.inodeSize + ino.xattrSize, path: e.path, fileOffset: -1, dir: e.type === 'dir' });
        if (ino.layout === LAYOUT.compressedFull || ino.layout === LAYOUT.compressedCompact) continue;
        for (const p of this.pieces(ino)) if (p.offset >= 0) runs.push({ start: p.offset, length: p.length, path: e.path, fileOffset: p.fileOffset, dir: e.type === 'dir' });
      }
      runs.sort((a, b) => a.start - b.start || b.length - a.length);
      this.owners = runs;
    }
    // Runs do not nest except an inline tail after its own inode: take the last run starting at or before.
    const runs = this.owners;
    let lo = 0;
    let hi = runs.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (runs[mid]!.start <= offset) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo - 1; i >= 0 && i >= lo - 4; i--) {
      const r = runs[i]!;
      if (offset >= r.start + r.length) continue;
      if (r.fileOffset < 0) return { path: r.path, what: `EROFS inode of ${r.path || '/'}` };
      if (r.dir) return { path: r.path, what: `EROFS directory ${r.path || '/'}` };
      return { path: r.path, what: `data of ${r.path}`, offsetInFile: r.fileOffset + (offset - r.start) };
    }
    if (offset >= this.metaOffset) return { what: 'EROFS metadata or unused space' };
    return { what: 'EROFS data block in no file read (compressed data or unused)' };
  }
}

export function openErofs(src: ByteSource, name: string, limits: Partial<ErofsLimits> = {}): Erofs {
  return new Erofs(src, name, limits);
}

function erofsView(fs: Erofs, src: ByteSource): ImageView {
  let inner: InnerEntry[] | undefined;
  const inodeOf = (entry: InnerEntry): ErofsInode => {
    const e = fs.entry(entry.path);
    if (e === undefined || e.type !== 'file') throw new NixSealError('EUSAGE', `Cannot read ${entry.path} in ${fs.name}: no such file`, { path: entry.path });
    return fs.inode(e.nid, EROFS_SUPERBLOCK_OFFSET);
  };
  return {
    kind: 'erofs',
    description: `EROFS (${fs.blockSize}-byte blocks)`,
    source: src,
    entries() {
      inner ??= fs.entries().map((e) => {
        const r: InnerEntry = { path: e.path, type: e.type, size: e.size };
        if (e.type === 'file') r.executable = (e.mode & 0o100) !== 0;
        if (e.target !== undefined) r.target = e.target;
        return r;
      });
      return inner;
    },
    read(entry) {
      return fs.readInode(inodeOf(entry));
    },
    fileSource(entry) {
      return fs.inodeSource(inodeOf(entry));
    },
    locate(offset) {
      return fs.locate(offset);
    },
  };
}

/** EROFS: the magic 0xE0F5E1E2 at 1024 and a block size the kernel accepts. */
export const erofsReader: ImageReader = {
  kind: 'erofs',
  detect(src) {
    if (src.size < EROFS_SUPERBLOCK_OFFSET + 128) return false;
    const b = src.read(EROFS_SUPERBLOCK_OFFSET, 128);
    return u32(b, SB.magic) === EROFS_MAGIC && b[SB.blkszbits]! >= 9 && b[SB.blkszbits]! <= 16;
  },
  open(src, name) {
    return erofsView(new Erofs(src, name), src);
  },
};
