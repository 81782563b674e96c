/**
 * EROFS reader: NixOS can build its store images as EROFS (image.filesystem / the erofs store
 * option), so an audit lists and hashes what is inside. Read-only and bounded (every block address
 * checked, directories visited once, entry and depth budgets).
 *
 * Read: the superblock, compact (32-byte) and extended (64-byte) inodes, the flat plain, flat
 * inline (tail packed after the inode) and chunk-based layouts (holes as zeros), directories,
 * symlinks; compressed files with full or compact (2- and 4-byte) lcluster indexes and big
 * pclusters and tail packing, decoded for every algorithm the kernel defines: lz4 (lz4-napi),
 * MicroLZMA (@napi-rs/lzma), deflate (node:zlib), zstd (decompress.ts) and stored pclusters.
 * Fragments, interlaced pclusters and unknown algorithms are EFORMAT errors naming what is
 * missing, raised when the file is read (the image still opens and lists).
 */
import * as zlib from 'node:zlib';
import { itemAt, u8At } from '../checked-index.js';
import { errnoCode, NixSealError } from '../errors.js';
import type { ByteSource } from './byte-source.js';
import { decompress, DecompressError } from './decompress.js';
import { inodeChildren, walkDirectories } from './dir-walk.js';
import { entryTypeOfMode, type ImageReader, type ImageView, type InnerEntry, type InnerOwner } from './image.js';
import * as bytes from './bytes.js';
import { headOf, type Verdict } from './detection.js';

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
const INCOMPAT_ZERO_PADDING = 0x1;
/** The longest decompressed extent decoded (mkfs.erofs writes far shorter ones). */
const MAX_EXTENT = 256 << 20;
/** z_erofs_map_header h_advise bits. */
const Z_ADVISE = { compacted2B: 0x1, bigPcluster1: 0x2, bigPcluster2: 0x4, inlinePcluster: 0x8, interlaced: 0x10, fragment: 0x20 } as const;
/** lcluster types. */
const LTYPE = { plain: 0, head1: 1, nonhead: 2, head2: 3 } as const;

/** An extent of a compressed file: `length` bytes from `fileOffset`, decoded from the pcluster at `offset`. */
interface ZExtent {
  fileOffset: number;
  length: number;
  offset: number;
  compressedLength: number;
  /** Index into ALGORITHMS, or -1 for a stored (uncompressed) pcluster. */
  alg: number;
  /** The head lcluster. */
  lcn?: number;
}

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

const u16 = bytes.le16;
const u32 = bytes.le32;

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
    const bits = u8At(b, SB.blkszbits);
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
    if (ino.layout === LAYOUT.compressedFull || ino.layout === LAYOUT.compressedCompact) throw new RangeError('pieces() of a compressed inode');
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

  /**
   * A compressed inode's extents from its lcluster indexes (full or compact), in file order.
   * Supported: lz4 and stored (PLAIN) pclusters, big pclusters, tail packing; fragments and
   * interlaced pclusters are EFORMAT errors (the algorithm is checked per extent, when decoded).
   */
  zextents(ino: ErofsInode): ZExtent[] {
    const bs = this.blockSize;
    const end = ino.offset + ino.inodeSize + ino.xattrSize;
    const h = Math.ceil(end / 8) * 8;
    this.check(h, 8, ino.offset, `inode ${ino.nid}'s compression header`);
    const hdr = this.src.read(h, 8);
    const advise = u16(hdr, 4);
    const algs = [u8At(hdr, 6) & 0xf, u8At(hdr, 6) >> 4] as const;
    const lbits = Math.log2(bs) + (u8At(hdr, 7) & 7);
    if (advise & Z_ADVISE.fragment) throw this.fail(`inode ${ino.nid} uses fragments, which nix-seal cannot decode`, h);
    if (advise & Z_ADVISE.interlaced) throw this.fail(`inode ${ino.nid} uses interlaced pclusters, which nix-seal cannot decode`, h);
    const lsize = 2 ** lbits;
    const total = Math.ceil(ino.size / lsize);
    const big = (advise & Z_ADVISE.bigPcluster1) !== 0;
    const lobits = Math.max(lbits, 12);
    const CBLKCNT = 1 << 11;
    type L = { type: number; lo: number; pblk: number };
    const lcs: L[] = [];
    /** Image offset just past each lcluster's index pack (the kernel's nextpackoff). */
    const packEnd: number[] = [];
    if (ino.layout === LAYOUT.compressedFull) {
      // Full indexes follow the 8-byte map header and 8 bytes of padding (the legacy 16-byte header).
      const base = h + 16;
      this.check(base, total * 8, h, `inode ${ino.nid}'s lcluster indexes`);
      const t = this.src.read(base, total * 8);
      for (let i = 0; i < total; i++) {
        const type = u16(t, i * 8) & 3;
        lcs.push(type === LTYPE.nonhead ? { type, lo: u16(t, i * 8 + 4), pblk: 0 } : { type, lo: u16(t, i * 8 + 2), pblk: u32(t, i * 8 + 4) });
        packEnd.push(base + (i + 1) * 8);
      }
    } else {
      // Compact indexes (the kernel's compacted_load_cluster_from_disk / unpack_compacted_index):
      // 4-byte packs up to a 32-byte boundary, then 2-byte packs of 16 (when advised), then 4-byte.
      const ebase = h + 8;
      let initial4 = (32 - (ebase % 32)) / 4;
      if (initial4 === 8) initial4 = 0;
      initial4 = Math.min(initial4, total);
      const twoB = advise & Z_ADVISE.compacted2B && initial4 < total ? Math.floor((total - initial4) / 16) * 16 : 0;
      const tail4 = total - initial4 - twoB;
      const bytes = initial4 * 4 + twoB * 2 + tail4 * 4;
      // Packs are whole: round the read up to the last pack's end.
      const readLen = Math.ceil(bytes / 8) * 8 + 8;
      const avail = Math.min(readLen, this.src.size - ebase);
      this.check(ebase, bytes, h, `inode ${ino.nid}'s lcluster indexes`);
      const t = Buffer.concat([this.src.read(ebase, avail), new Uint8Array(readLen + 8 - avail)]);
      const decodeAt = (pack: number, encodebits: number, i: number): { lo: number; type: number } => {
        const pos = encodebits * i;
        const v = u32(t, pack + (pos >> 3)) >>> (pos & 7);
        return { lo: v & ((1 << lobits) - 1), type: (v >>> lobits) & 3 };
      };
      const unpack = (pos: number, shift: number): L => {
        const vcnt = shift === 2 ? 2 : 16;
        if ((shift === 2 && lbits > 14) || (shift === 1 && lbits > 12)) throw this.fail(`inode ${ino.nid}'s compact indexes do not fit its cluster size`, h);
        const packBytes = vcnt << shift;
        const encodebits = ((packBytes - 4) * 8) / vcnt;
        // Packs are aligned to their size relative to ebase's pack grid (absolute offsets).
        const within = (ebase + pos) % packBytes;
        const pack = pos - within;
        let i = within >> shift;
        let { lo, type } = decodeAt(pack, encodebits, i);
        if (type === LTYPE.nonhead) {
          if (lo & CBLKCNT) return { type, lo: lo | 0, pblk: -1 };
          if (i + 1 !== vcnt) return { type, lo, pblk: 0 };
          const prev = decodeAt(pack, encodebits, i - 1);
          lo = prev.type !== LTYPE.nonhead ? 0 : prev.lo & CBLKCNT ? 1 : prev.lo;
          return { type, lo: lo + 1, pblk: 0 };
        }
        let nblk = 0;
        if (!big) {
          nblk = 1;
          while (i > 0) {
            --i;
            const d = decodeAt(pack, encodebits, i);
            if (d.type === LTYPE.nonhead) i -= d.lo;
            if (i >= 0) ++nblk;
          }
        } else {
          while (i > 0) {
            --i;
            const d = decodeAt(pack, encodebits, i);
            if (d.type === LTYPE.nonhead) {
              if (d.lo & CBLKCNT) {
                --i;
                nblk += d.lo & ~CBLKCNT;
                continue;
              }
              if (d.lo <= 1) throw this.fail(`inode ${ino.nid} has a corrupt compact index`, ebase + pos);
              i -= d.lo - 2;
              continue;
            }
            ++nblk;
          }
        }
        return { type, lo, pblk: u32(t, pack + packBytes - 4) + nblk };
      };
      for (let lcn = 0; lcn < total; lcn++) {
        let pos: number;
        let shift: number;
        if (lcn < initial4) [pos, shift] = [lcn * 4, 2];
        else if (lcn - initial4 < twoB) [pos, shift] = [initial4 * 4 + (lcn - initial4) * 2, 1];
        else [pos, shift] = [initial4 * 4 + twoB * 2 + (lcn - initial4 - twoB) * 4, 2];
        lcs.push(unpack(pos, shift));
        const packBytes = shift === 2 ? 8 : 32;
        packEnd.push(Math.floor((ebase + pos) / packBytes) * packBytes + packBytes);
      }
    }
    // Heads start extents at (lcn << lbits) + clusterofs; an extent runs to the next head.
    const heads: ZExtent[] = [];
    for (const [i, l] of lcs.entries()) {
      if (l.type === LTYPE.nonhead) continue;
      if (l.lo >= lsize) throw this.fail(`inode ${ino.nid}'s lcluster ${i} has clusterofs ${l.lo}`, h);
      const next = lcs[i + 1];
      // The kernel's z_erofs_get_extent_compressedlen: one lcluster unless the head's type is
      // advised big and the next lcluster is a NONHEAD carrying the block count (CBLKCNT).
      const bigHere = (l.type === LTYPE.head1 && big) || (l.type === LTYPE.head2 && (advise & Z_ADVISE.bigPcluster2) !== 0);
      const length = bigHere && next !== undefined && next.type === LTYPE.nonhead && next.lo & CBLKCNT ? (next.lo & ~CBLKCNT) * bs : lsize;
      const alg = l.type === LTYPE.plain ? -1 : algs[l.type === LTYPE.head1 ? 0 : 1];
      heads.push({ fileOffset: i * lsize + l.lo, length: 0, offset: l.pblk * bs, compressedLength: length, alg, lcn: i });
    }
    // An extent runs to the next head; a head at or past the end of the file (mkfs.erofs can end
    // an index with one) starts nothing the kernel ever maps.
    const live = heads.filter((x) => x.fileOffset < ino.size);
    if (ino.size === 0) return [];
    if (live[0]?.fileOffset !== 0) throw this.fail(`inode ${ino.nid}'s first lcluster is not a head`, h);
    for (const [i, x] of live.entries()) x.length = (live[i + 1]?.fileOffset ?? ino.size) - x.fileOffset;
    // Tail packing: the last extent's pcluster is inline, right after the index pack of the
    // lcluster holding the file's last byte (the kernel's z_idataoff).
    const last = itemAt(live, live.length - 1);
    if (advise & Z_ADVISE.inlinePcluster) {
      const idataSize = u16(hdr, 2);
      last.offset = itemAt(packEnd, Math.floor((ino.size - 1) / lsize));
      last.compressedLength = idataSize;
      if (idataSize === 0 || Math.floor(last.offset / bs) !== Math.floor((last.offset + idataSize - 1) / bs)) throw this.fail(`inode ${ino.nid}'s inline pcluster (${idataSize} bytes) crosses a block boundary`, last.offset);
    }
    for (const x of live) this.check(x.offset, x.compressedLength, h, `inode ${ino.nid}'s pcluster`);
    return live;
  }

  private decodeExtent(ino: ErofsInode, x: ZExtent): Uint8Array {
    const raw = this.src.read(x.offset, x.compressedLength);
    if (x.alg === -1) {
      if (x.length > raw.length) throw this.fail(`inode ${ino.nid}'s stored pcluster is shorter than its extent`, x.offset);
      return raw.subarray(0, x.length);
    }
    const alg = ALGORITHMS[x.alg] as Algorithm | undefined;
    if (alg === undefined) throw this.fail(`inode ${ino.nid} is compressed with algorithm ${x.alg}, which nix-seal cannot decode`, x.offset);
    // 0-padding: the compressed stream ends the pcluster, zeros before it (the kernel's
    // z_erofs_fixup_insize). lzma, deflate and zstd always have it; lz4 when the superblock says so.
    let start = 0;
    if (alg !== 'lz4' || this.incompat & INCOMPAT_ZERO_PADDING) while (start < raw.length && raw[start] === 0) start++;
    const input = raw.subarray(start);
    // A decoded extent is capped at EXPANSION[alg] × its pcluster (and MAX_EXTENT): a longer one is
    // corrupt, and would be a large allocation.
    if (x.length > x.compressedLength * EXPANSION[alg] || x.length > MAX_EXTENT) throw this.fail(`inode ${ino.nid}'s extent of ${x.length} bytes cannot come from a ${x.compressedLength}-byte ${alg} pcluster`, x.offset);
    if (input.length === 0) throw this.fail(`inode ${ino.nid}'s ${alg} pcluster is all zeros`, x.offset);
    let out: Uint8Array;
    try {
      out = decodePcluster(alg, input, x.length, x.compressedLength);
    } catch (err) {
      if (err instanceof NixSealError) throw this.fail(`inode ${ino.nid}'s ${alg} pcluster does not decode (${err instanceof DecompressError ? err.why : err.message})`, x.offset);
      throw err;
    }
    if (out.length < x.length) throw this.fail(`inode ${ino.nid}'s ${alg} pcluster decodes to ${out.length} bytes, not ${x.length}`, x.offset);
    return out.subarray(0, x.length);
  }

  *readInode(ino: ErofsInode): Generator<Uint8Array> {
    if (ino.layout === LAYOUT.compressedFull || ino.layout === LAYOUT.compressedCompact) {
      for (const x of this.zextents(ino)) yield this.decodeExtent(ino, x);
      return;
    }
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

  private *dirents(dir: ErofsInode): Generator<{ name: string; ino: number; at: number }> {
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
        yield { name: Buffer.from(blk.subarray(off, endOff)).toString('utf8'), ino: nid, at: where(b + i * 12) };
      }
    }
  }

  /** Every entry, root ('') first, parents before children (depth first, walkDirectories). */
  entries(): ErofsEntry[] {
    if (this.walked !== undefined) return this.walked;
    const root = this.inode(this.rootNid, EROFS_SUPERBLOCK_OFFSET + SB.rootNid);
    if (entryTypeOfMode(root.mode) !== 'dir') throw this.fail('the root inode is not a directory', root.offset);
    const entryOf = (path: string, ino: ErofsInode): ErofsEntry => {
      const type = entryTypeOfMode(ino.mode);
      const e: ErofsEntry = { path, nid: ino.nid, type, mode: ino.mode, size: ino.size };
      if (type === 'symlink') {
        if (ino.size > 4096) throw this.fail(`symlink inode ${ino.nid} has a ${ino.size}-byte target`, ino.offset + 8);
        e.target = Buffer.concat([...this.readInode(ino)]).toString('utf8');
      }
      return e;
    };
    const { entries, byPath } = walkDirectories<ErofsInode, ErofsEntry>({
      root: { entry: entryOf('', root), dir: root, key: root.nid },
      children: inodeChildren(
        (dir) => this.dirents(dir),
        (ino, at) => this.inode(ino, at),
        entryOf,
      ),
      limits: this.limits,
      fail: (why, offset) => this.fail(why, offset),
    });
    for (const [k, v] of byPath) this.byPath.set(k, v);
    return (this.walked = entries);
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
        if (ino.layout === LAYOUT.compressedFull || ino.layout === LAYOUT.compressedCompact) {
          for (const x of this.zextents(ino)) runs.push({ start: x.offset, length: x.compressedLength, path: e.path, fileOffset: -2, dir: false });
          continue;
        }
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
      if (itemAt(runs, mid).start <= offset) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo - 1; i >= 0 && i >= lo - 4; i--) {
      const r = itemAt(runs, i);
      if (offset >= r.start + r.length) continue;
      if (r.fileOffset === -2) return { path: r.path, what: `compressed data of ${r.path}` };
      if (r.fileOffset < 0) return { path: r.path, what: `EROFS inode of ${r.path || '/'}` };
      if (r.dir) return { path: r.path, what: `EROFS directory ${r.path || '/'}` };
      return { path: r.path, what: `data of ${r.path}`, offsetInFile: r.fileOffset + (offset - r.start) };
    }
    if (offset >= this.metaOffset) return { what: 'EROFS metadata or unused space' };
    return { what: 'EROFS data block in no file read (compressed data or unused)' };
  }
}

// ---- pcluster decoders ----------------------------------------------------------------------------

/** The kernel's Z_EROFS_COMPRESSION_* algorithms, by their h_algorithmtype nibble (ALGORITHMS). */
type Algorithm = 'lz4' | 'lzma' | 'deflate' | 'zstd';
/**
 * How many times its pcluster an extent may decode to: lz4's and deflate's format limits (255×,
 * 1032×); lzma and zstd have none that helps, so only MAX_EXTENT bounds them.
 */
const EXPANSION: Readonly<Record<Algorithm, number>> = { lz4: 255, deflate: 1032, lzma: Infinity, zstd: Infinity };
/** The LZMA "alone" header: properties, dictionary size (LE32), unpacked size (LE64). */
const LZMA_ALONE_HEADER = 13;

/**
 * Walks an LZ4 block's sequences (without decoding) up to the one whose output reaches `want`
 * bytes: how much input that is and how much it outputs. Short or malformed input: DecompressError.
 */
function lz4Prefix(input: Uint8Array, want: number): { inputLength: number; outputLength: number; afterMatch: boolean } {
  let ip = 0;
  let out = 0;
  const bad = (why: string): DecompressError => new DecompressError('lz4', why);
  const length = (n: number): number => {
    if (n !== 15) return n;
    for (;;) {
      if (ip >= input.length) throw bad('truncated length');
      const b = u8At(input, ip++);
      n += b;
      if (b !== 255) return n;
    }
  };
  while (ip < input.length) {
    const token = u8At(input, ip++);
    const lits = length(token >> 4);
    ip += lits;
    out += lits;
    if (ip > input.length) throw bad('literals run past the pcluster');
    if (out >= want || ip === input.length) return { inputLength: ip, outputLength: out, afterMatch: false };
    if (ip + 2 > input.length) throw bad('truncated match offset');
    ip += 2;
    out += length(token & 15) + 4;
    if (out >= want) return { inputLength: ip, outputLength: out, afterMatch: true };
  }
  throw bad(`the stream ends after ${out} of ${want} bytes`);
}

/**
 * Decodes one pcluster (0-padding already removed) into at most `length` bytes (lz4: a little
 * more, see below), with the decoders decompress.ts uses, each capped at the extent's length.
 */
function decodePcluster(alg: Algorithm, input: Uint8Array, length: number, compressedLength: number): Uint8Array {
  switch (alg) {
    case 'lz4': {
      // Without 0-padding (mkfs.erofs -E legacy-compress) the stream starts the pcluster and
      // whatever follows it is not lz4; the kernel decodes partially (LZ4_decompress_safe_partial)
      // and stops at the extent's length. Here the sequences are walked to where the output
      // reaches it, and that prefix is decoded (the last sequence whole: a little more output).
      const { inputLength, outputLength, afterMatch } = lz4Prefix(input, length);
      // A block ends with literals: after a match, a token of no literals ends it for lz4_flex.
      const block = afterMatch ? Buffer.concat([input.subarray(0, inputLength), new Uint8Array(1)]) : input.subarray(0, inputLength);
      return decompress('lz4', block, Math.max(outputLength, 1));
    }
    case 'deflate':
      // Raw DEFLATE (the kernel's zlib_inflate with a negative window): capped by zlib itself.
      // Z_SYNC_FLUSH: a stream cut after the extent's last byte is accepted, as the kernel does.
      try {
        return zlib.inflateRawSync(input, { maxOutputLength: length, finishFlush: zlib.constants.Z_SYNC_FLUSH });
      } catch (err) {
        if (errnoCode(err) === 'ERR_BUFFER_TOO_LARGE') throw new DecompressError('gzip', `decodes to more than ${length} bytes`);
        throw new DecompressError('gzip', `corrupt deflate data (${err instanceof Error ? err.message : String(err)})`);
      }
    case 'lzma': {
      // MicroLZMA (liblzma's lzma_microlzma_encoder, as mkfs.erofs writes it): an LZMA1 range-coder
      // stream without header or end marker whose first byte (always 0x00 in LZMA) is replaced by
      // the complemented properties byte. Given back that byte and an "LZMA alone" header stating
      // the extent's length, @napi-rs/lzma decodes it and stops there. The dictionary never needs
      // to be larger than the output (each pcluster is decoded alone).
      const first = u8At(input, 0);
      const props = ~first & 0xff;
      if (props >= 9 * 5 * 5) throw new DecompressError('lzma', `bad MicroLZMA properties byte 0x${first.toString(16)}`);
      const alone = new Uint8Array(LZMA_ALONE_HEADER + input.length);
      const dv = new DataView(alone.buffer);
      alone[0] = props;
      dv.setUint32(1, Math.max(4096, length), true);
      dv.setBigUint64(5, BigInt(length), true);
      alone.set(input.subarray(1), LZMA_ALONE_HEADER + 1);
      return decompress('lzma', alone, length);
    }
    case 'zstd':
      // One zstd frame declaring its content size (libzstd's default): decompress.ts checks the
      // frame's structure and caps the output; a frame without a size is a clear EFORMAT.
      return decompress('zstd', input, length);
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

/** The superblock fields detection checks lie in its first 64 bytes. */
const DETECT_SUPERBLOCK = 64;
/** Block sizes the kernel accepts: 512 B…64 KiB. */
const MIN_BLKSZBITS = 9;
const MAX_BLKSZBITS = 16;

/**
 * EROFS from the file's first bytes (`head`, of a file of `size` bytes): the magic 0xE0F5E1E2 at
 * 1024, a block size the kernel accepts, and its block count within the file (else a near miss).
 */
export function detectErofs(head: Uint8Array, size: number): Verdict {
  const sb = EROFS_SUPERBLOCK_OFFSET;
  if (head.length < sb + DETECT_SUPERBLOCK || bytes.le32(head, sb + SB.magic) !== EROFS_MAGIC) return undefined;
  const bits = bytes.u8(head, sb + SB.blkszbits);
  const blocks = bytes.le32(head, sb + SB.blocks);
  if (bits < MIN_BLKSZBITS || bits > MAX_BLKSZBITS) return undefined;
  // A block size the kernel accepts but a block count that does not fit: a broken (truncated) EROFS.
  if (blocks < 1 || blocks * 2 ** bits > size + 2 ** bits) return { format: 'erofs', offset: sb, nearMiss: `${blocks} blocks do not fit the file` };
  return { format: 'erofs', offset: sb, why: `EROFS superblock at ${sb}, ${2 ** bits}-byte blocks, ${blocks} blocks` };
}

/** EROFS: detectErofs; the reader checks the rest. */
export const erofsReader: ImageReader = {
  kind: 'erofs',
  detect: (src) => detectErofs(headOf(src), src.size) !== undefined,
  open(src, name) {
    return erofsView(new Erofs(src, name), src);
  },
};
