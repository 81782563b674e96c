/**
 * ext2/ext3/ext4 reader: NixOS sd-images and make-disk-image roots keep /nix/store on ext4, so an
 * audit has to list the files inside, stream them (NAR hashes), map file offsets to image offsets
 * (an image stored in a file nests) and say which file owns a byte. Read-only and bounded: every
 * block number is checked against the image, walks have budgets. The journal is not replayed
 * (an image NixOS builds is cleanly unmounted).
 *
 * Read: superblock, 32- and 64-bit group descriptors, inodes of any size, extent trees of any
 * depth, ext2/3 block maps (single, double, triple indirect), inline data (i_block and the
 * system.data xattr), fast and slow symlinks, linear and htree directories (read linearly: an
 * htree's index blocks look like empty dirents), sparse files (holes and unwritten extents read as
 * zeros), meta_bg descriptor placement. Refused at open: bigalloc, encryption (names and data
 * would be wrong).
 */
import { itemAt, u8At } from '../checked-index.js';
import { NixSealError } from '../errors.js';
import type { ByteSource } from './byte-source.js';
import { inodeChildren, walkDirectories } from './dir-walk.js';
import { entryTypeOfMode, type ImageReader, type ImageView, type InnerEntry, type InnerOwner } from './image.js';
import * as bytes from './bytes.js';
import { headOf, type Verdict } from './detection.js';

export const EXT4_SUPERBLOCK_OFFSET = 1024;
export const EXT4_MAGIC = 0xef53;

/** Superblock field offsets (from the start of the superblock). */
export const SB = {
  inodesCount: 0x00,
  blocksCountLo: 0x04,
  firstDataBlock: 0x14,
  logBlockSize: 0x18,
  blocksPerGroup: 0x20,
  inodesPerGroup: 0x28,
  magic: 0x38,
  revLevel: 0x4c,
  inodeSize: 0x58,
  featureCompat: 0x5c,
  featureIncompat: 0x60,
  featureRoCompat: 0x64,
  reservedGdtBlocks: 0xce,
  journalInum: 0xe0,
  descSize: 0xfe,
  firstMetaBg: 0x104,
  blocksCountHi: 0x150,
} as const;

export const INCOMPAT = {
  filetype: 0x2,
  recover: 0x4,
  journalDev: 0x8,
  metaBg: 0x10,
  extents: 0x40,
  bit64: 0x80,
  inlineData: 0x8000,
  encrypt: 0x10000,
} as const;
const RO_COMPAT_SPARSE_SUPER = 0x1;
const RO_COMPAT_BIGALLOC = 0x200;

/** Inode field offsets. */
export const INODE = {
  mode: 0x00,
  sizeLo: 0x04,
  blocksLo: 0x1c,
  flags: 0x20,
  block: 0x28,
  fileAclLo: 0x68,
  sizeHigh: 0x6c,
  fileAclHigh: 0x76,
  extraIsize: 0x80,
} as const;
const FLAG_EXTENTS = 0x80000;
const FLAG_INLINE_DATA = 0x10000000;
const EXTENT_MAGIC = 0xf30a;
const XATTR_MAGIC = 0xea020000;
const ROOT_INO = 2;
/** Marks a directory block not read yet. */
const EMPTY = new Uint8Array(0);

export interface Ext4Limits {
  /** Entries the walk lists at most. */
  maxEntries: number;
  /** Directory depth at most. */
  maxDepth: number;
  /** Extent tree depth at most (the kernel allows 5). */
  maxExtentDepth: number;
}
export const DEFAULT_EXT4_LIMITS: Readonly<Ext4Limits> = { maxEntries: 2_000_000, maxDepth: 256, maxExtentDepth: 5 };

export interface Ext4Superblock {
  blockSize: number;
  blocksCount: number;
  inodesCount: number;
  firstDataBlock: number;
  blocksPerGroup: number;
  inodesPerGroup: number;
  inodeSize: number;
  descSize: number;
  groups: number;
  compat: number;
  incompat: number;
  roCompat: number;
  reservedGdtBlocks: number;
  journalInum: number;
}

interface Group {
  blockBitmap: number;
  inodeBitmap: number;
  inodeTable: number;
}

/** A run of a file: `length` blocks from logical block `logical` at physical block `physical` (0: a hole). */
interface Run {
  logical: number;
  physical: number;
  length: number;
  /** An unwritten extent (allocated, reads as zeros). */
  unwritten?: boolean;
}

export interface Ext4Inode {
  ino: number;
  mode: number;
  size: number;
  flags: number;
  /** Byte offset of the inode in the image. */
  offset: number;
  raw: Uint8Array;
}

export interface Ext4Entry {
  path: string;
  ino: number;
  type: InnerEntry['type'];
  mode: number;
  size: number;
  target?: string;
}

type FileData = { kind: 'inline'; bytes: Uint8Array } | { kind: 'blocks'; runs: Run[]; meta: number[] };

const u16 = bytes.le16;
const u32 = bytes.le32;

export class Ext4 {
  readonly sb: Ext4Superblock;
  private readonly groups: Group[] = [];
  private readonly limits: Ext4Limits;
  private walked: Ext4Entry[] | undefined;
  private readonly byPath = new Map<string, Ext4Entry>();
  private byIno: Map<number, Ext4Entry> | undefined;
  /** Where the group descriptor blocks are (primary copies). */
  private readonly gdtBlocks = new Set<number>();
  /** Physical runs owned by files/dirs/metadata, sorted by start, built on first locate(). */
  private owners: { start: number; length: number; path: string; ino: number; logical: number; what: 'data' | 'dir' | 'meta' }[] | undefined;

  constructor(
    readonly src: ByteSource,
    readonly name: string,
    limits: Partial<Ext4Limits> = {},
  ) {
    this.limits = { ...DEFAULT_EXT4_LIMITS, ...limits };
    if (src.size < EXT4_SUPERBLOCK_OFFSET + 1024) throw this.fail('the image is smaller than a superblock', 0);
    const b = src.read(EXT4_SUPERBLOCK_OFFSET, 1024);
    const at = (o: number): number => EXT4_SUPERBLOCK_OFFSET + o;
    if (u16(b, SB.magic) !== EXT4_MAGIC) throw this.fail('no ext2/3/4 magic (0xEF53)', at(SB.magic));
    const log = u32(b, SB.logBlockSize);
    if (log > 6) throw this.fail(`block size 1024<<${log} is out of range`, at(SB.logBlockSize));
    const blockSize = 1024 << log;
    const incompat = u32(b, SB.featureIncompat);
    const roCompat = u32(b, SB.featureRoCompat);
    const revLevel = u32(b, SB.revLevel);
    const inodeSize = revLevel === 0 ? 128 : u16(b, SB.inodeSize);
    if (inodeSize < 128 || inodeSize > blockSize || (inodeSize & (inodeSize - 1)) !== 0) throw this.fail(`inode size ${inodeSize} is invalid`, at(SB.inodeSize));
    const bit64 = (incompat & INCOMPAT.bit64) !== 0;
    const descSize = bit64 ? u16(b, SB.descSize) : 32;
    if (bit64 && (descSize < 64 || descSize > 1024 || (descSize & (descSize - 1)) !== 0)) throw this.fail(`group descriptor size ${descSize} is invalid`, at(SB.descSize));
    const blocksCount = u32(b, SB.blocksCountLo) + (bit64 ? u32(b, SB.blocksCountHi) * 2 ** 32 : 0);
    const firstDataBlock = u32(b, SB.firstDataBlock);
    const blocksPerGroup = u32(b, SB.blocksPerGroup);
    const inodesPerGroup = u32(b, SB.inodesPerGroup);
    const inodesCount = u32(b, SB.inodesCount);
    if (blocksPerGroup === 0 || blocksPerGroup > blockSize * 8) throw this.fail(`blocks per group ${blocksPerGroup} is invalid`, at(SB.blocksPerGroup));
    if (inodesPerGroup === 0 || inodesPerGroup > blockSize * 8) throw this.fail(`inodes per group ${inodesPerGroup} is invalid`, at(SB.inodesPerGroup));
    if (blocksCount <= firstDataBlock || firstDataBlock > 1) throw this.fail(`block count ${blocksCount} / first data block ${firstDataBlock} are invalid`, at(SB.blocksCountLo));
    const groups = Math.ceil((blocksCount - firstDataBlock) / blocksPerGroup);
    if (inodesCount > groups * inodesPerGroup || inodesCount < ROOT_INO) throw this.fail(`inode count ${inodesCount} does not fit ${groups} groups`, at(SB.inodesCount));
    if (incompat & INCOMPAT.journalDev) throw this.fail('it is an external journal device, not a file system', at(SB.featureIncompat));
    if (incompat & INCOMPAT.encrypt) throw this.fail('the file system is encrypted', at(SB.featureIncompat));
    if (roCompat & RO_COMPAT_BIGALLOC) throw this.fail('the bigalloc feature is not supported', at(SB.featureRoCompat));
    this.sb = {
      blockSize,
      blocksCount,
      inodesCount,
      firstDataBlock,
      blocksPerGroup,
      inodesPerGroup,
      inodeSize,
      descSize,
      groups,
      compat: u32(b, SB.featureCompat),
      incompat,
      roCompat,
      reservedGdtBlocks: u16(b, SB.reservedGdtBlocks),
      journalInum: u32(b, SB.journalInum),
    };
    // Group descriptor blocks follow the superblock; with meta_bg, those from s_first_meta_bg on
    // are in the first block of each meta group (after its superblock copy), as the kernel's
    // descriptor_loc() finds them.
    const perBlock = blockSize / descSize;
    const gdtCount = Math.ceil(groups / perBlock);
    const firstMetaBg = incompat & INCOMPAT.metaBg ? u32(b, SB.firstMetaBg) : Infinity;
    const parts: Uint8Array[] = [];
    for (let nr = 0; nr < gdtCount; nr++) {
      let block: number;
      if (nr < firstMetaBg) block = firstDataBlock + nr + 1;
      else {
        const bg = perBlock * nr;
        let hasSuper = this.hasSuper(bg, roCompat) ? 1 : 0;
        if (blockSize === 1024 && nr === 0 && firstDataBlock === 0) hasSuper++;
        block = bg * blocksPerGroup + firstDataBlock + hasSuper;
        // Backups: the meta group's second and last groups (located, not read).
        for (const g of [bg + 1, bg + perBlock - 1]) if (g < groups) this.gdtBlocks.add(g * blocksPerGroup + firstDataBlock + (this.hasSuper(g, roCompat) ? 1 : 0));
      }
      this.gdtBlocks.add(block);
      if ((block + 1) * blockSize > src.size || block >= blocksCount) throw this.fail(`group descriptor block ${nr} (block ${block}) is past the end of the image`, at(SB.featureIncompat));
      parts.push(src.read(block * blockSize, blockSize));
    }
    const gdt = Buffer.concat(parts);
    for (let g = 0; g < groups; g++) {
      const o = g * descSize;
      const hi = (f: number): number => (descSize >= 64 ? u32(gdt, o + f) * 2 ** 32 : 0);
      this.groups.push({ blockBitmap: u32(gdt, o) + hi(0x20), inodeBitmap: u32(gdt, o + 4) + hi(0x24), inodeTable: u32(gdt, o + 8) + hi(0x28) });
    }
  }

  fail(why: string, offset: number): NixSealError {
    return new NixSealError('EFORMAT', `Cannot read ${this.name}: ${why} at offset ${offset}`, { path: this.name, offset });
  }

  /** `count` blocks from `block`, checked against the file system and the image. */
  private blocks(block: number, count: number, from: number): Uint8Array {
    const bs = this.sb.blockSize;
    if (block < 0 || count < 0 || block + count > this.sb.blocksCount || (block + count) * bs > this.src.size) {
      throw this.fail(`block ${block}${count > 1 ? `+${count}` : ''} is outside the file system or the image`, from);
    }
    return this.src.read(block * bs, count * bs);
  }

  inode(ino: number, from: number): Ext4Inode {
    if (!Number.isInteger(ino) || ino < 1 || ino > this.sb.inodesCount) throw this.fail(`inode number ${ino} is out of range`, from);
    const g = Math.floor((ino - 1) / this.sb.inodesPerGroup);
    const idx = (ino - 1) % this.sb.inodesPerGroup;
    const table = itemAt(this.groups, g).inodeTable;
    const offset = table * this.sb.blockSize + idx * this.sb.inodeSize;
    if (table === 0 || table >= this.sb.blocksCount || offset + this.sb.inodeSize > this.src.size) throw this.fail(`inode ${ino}'s table (block ${table}) is outside the image`, from);
    const raw = this.src.read(offset, this.sb.inodeSize);
    const mode = u16(raw, INODE.mode);
    const size = u32(raw, INODE.sizeLo) + u32(raw, INODE.sizeHigh) * 2 ** 32;
    if (!Number.isSafeInteger(size)) throw this.fail(`inode ${ino}'s size is too large`, offset + INODE.sizeLo);
    return { ino, mode, size, flags: u32(raw, INODE.flags), offset, raw };
  }

  /** The value of an in-inode xattr (index 7 "system.", name `name`), or undefined. */
  private inodeXattr(ino: Ext4Inode, index: number, name: string): Uint8Array | undefined {
    if (this.sb.inodeSize <= 128) return undefined;
    const extra = u16(ino.raw, INODE.extraIsize);
    const start = 128 + extra;
    if (extra % 4 !== 0 || start + 4 > this.sb.inodeSize) return undefined;
    if (u32(ino.raw, start) !== XATTR_MAGIC) return undefined;
    const base = start + 4;
    let o = base;
    while (o + 16 <= this.sb.inodeSize && u32(ino.raw, o) !== 0) {
      const nameLen = u8At(ino.raw, o);
      const idx = u8At(ino.raw, o + 1);
      const valueOffs = u16(ino.raw, o + 2);
      const valueSize = u32(ino.raw, o + 8);
      if (o + 16 + nameLen > this.sb.inodeSize) throw this.fail(`inode ${ino.ino}'s xattr entry runs past the inode`, ino.offset + o);
      const n = Buffer.from(ino.raw.subarray(o + 16, o + 16 + nameLen)).toString('latin1');
      if (idx === index && n === name) {
        if (base + valueOffs + valueSize > this.sb.inodeSize) throw this.fail(`inode ${ino.ino}'s xattr value runs past the inode`, ino.offset + o);
        return ino.raw.subarray(base + valueOffs, base + valueOffs + valueSize);
      }
      o += (16 + nameLen + 3) & ~3;
    }
    return undefined;
  }

  /** Where an inode's bytes are: inline, or runs of blocks (plus the tree/indirect blocks read). */
  private data(ino: Ext4Inode): FileData {
    const bs = this.sb.blockSize;
    const iblock = ino.raw.subarray(INODE.block, INODE.block + 60);
    if (ino.flags & FLAG_INLINE_DATA) {
      const more = this.inodeXattr(ino, 7, 'data') ?? new Uint8Array(0);
      const all = Buffer.concat([iblock, more]);
      if (ino.size > all.length) throw this.fail(`inode ${ino.ino} has ${ino.size} bytes of inline data but holds ${all.length}`, ino.offset);
      return { kind: 'inline', bytes: all.subarray(0, ino.size) };
    }
    const nblocks = Math.ceil(ino.size / bs);
    const runs: Run[] = [];
    const meta: number[] = [];
    // Each pointer or extent visited costs one; a file cannot legitimately have more than the file system has blocks.
    let budget = this.sb.blocksCount + 64;
    const spend = (at: number): void => {
      if (--budget < 0) throw this.fail(`inode ${ino.ino}'s block map is larger than the file system`, at);
    };
    const push = (logical: number, physical: number, length: number, at: number, unwritten?: boolean): void => {
      if (logical >= nblocks || length === 0) return;
      length = Math.min(length, nblocks - logical);
      if (physical + length > this.sb.blocksCount || physical < this.sb.firstDataBlock) throw this.fail(`inode ${ino.ino} points at blocks ${physical}+${length}, outside the file system`, at);
      const last = runs[runs.length - 1];
      if (last !== undefined && logical < last.logical + last.length) throw this.fail(`inode ${ino.ino}'s extents overlap or are out of order`, at);
      if (last !== undefined && !unwritten && !last.unwritten && last.logical + last.length === logical && last.physical + last.length === physical) last.length += length;
      else runs.push(unwritten ? { logical, physical, length, unwritten } : { logical, physical, length });
    };
    if (ino.flags & FLAG_EXTENTS) {
      const walk = (node: Uint8Array, nodeOffset: number, depthLeft: number, expectDepth: number | undefined): void => {
        if (u16(node, 0) !== EXTENT_MAGIC) throw this.fail(`inode ${ino.ino}'s extent header has no magic 0xF30A`, nodeOffset);
        const entries = u16(node, 2);
        const depth = u16(node, 6);
        if (expectDepth !== undefined && depth !== expectDepth) throw this.fail(`inode ${ino.ino}'s extent node has depth ${depth}, expected ${expectDepth}`, nodeOffset + 6);
        if (depth > this.limits.maxExtentDepth || depth > depthLeft) throw this.fail(`inode ${ino.ino}'s extent tree is deeper than ${this.limits.maxExtentDepth}`, nodeOffset + 6);
        if (12 + entries * 12 > node.length) throw this.fail(`inode ${ino.ino}'s extent node claims ${entries} entries`, nodeOffset + 2);
        for (let i = 0; i < entries; i++) {
          const e = 12 + i * 12;
          spend(nodeOffset + e);
          const lblk = u32(node, e);
          if (depth === 0) {
            let len = u16(node, e + 4);
            const unwritten = len > 32768;
            if (unwritten) len -= 32768;
            const start = u16(node, e + 6) * 2 ** 32 + u32(node, e + 8);
            push(lblk, start, len, nodeOffset + e, unwritten);
          } else {
            const leaf = u32(node, e + 4) + u16(node, e + 8) * 2 ** 32;
            if (leaf >= this.sb.blocksCount || (leaf + 1) * bs > this.src.size) throw this.fail(`inode ${ino.ino}'s extent index points at block ${leaf}, outside the image`, nodeOffset + e);
            meta.push(leaf);
            walk(this.blocks(leaf, 1, nodeOffset + e), leaf * bs, depth - 1, depth - 1);
          }
        }
      };
      walk(iblock, ino.offset + INODE.block, this.limits.maxExtentDepth, undefined);
    } else {
      const per = bs / 4;
      // Indirect level `level` (0: the pointer is a data block) starting at logical block `logical`.
      const map = (ptr: number, level: number, logical: number, at: number): void => {
        if (ptr === 0 || logical >= nblocks) return;
        spend(at);
        if (level === 0) return push(logical, ptr, 1, at);
        if (ptr >= this.sb.blocksCount) throw this.fail(`inode ${ino.ino}'s indirect block ${ptr} is outside the file system`, at);
        meta.push(ptr);
        const blk = this.blocks(ptr, 1, at);
        const span = per ** (level - 1);
        for (let i = 0; i < per; i++) map(u32(blk, i * 4), level - 1, logical + i * span, ptr * bs + i * 4);
      };
      const at = ino.offset + INODE.block;
      for (let i = 0; i < 12; i++) map(u32(iblock, i * 4), 0, i, at + i * 4);
      map(u32(iblock, 48), 1, 12, at + 48);
      map(u32(iblock, 52), 2, 12 + per, at + 52);
      map(u32(iblock, 56), 3, 12 + per + per * per, at + 56);
    }
    return { kind: 'blocks', runs, meta };
  }

  /** An inode's bytes in chunks (holes and unwritten extents as zeros), exactly `size` in all. */
  *readInode(ino: Ext4Inode): Generator<Uint8Array> {
    const d = this.data(ino);
    if (d.kind === 'inline') {
      yield d.bytes;
      return;
    }
    const bs = this.sb.blockSize;
    const CHUNK = 1 << 20;
    let pos = 0;
    const zeros = (n: number): Generator<Uint8Array> =>
      (function* () {
        while (n > 0) {
          const k = Math.min(n, CHUNK);
          yield new Uint8Array(k);
          n -= k;
        }
      })();
    for (const r of d.runs) {
      const start = r.logical * bs;
      if (start >= ino.size) break;
      if (start > pos) yield* zeros(start - pos);
      const end = Math.min(ino.size, (r.logical + r.length) * bs);
      if (r.unwritten) yield* zeros(end - start);
      else {
        if (r.physical * bs + (end - start) > this.src.size) throw this.fail(`inode ${ino.ino}'s data (block ${r.physical}) runs past the end of the image`, r.physical * bs);
        for (let o = start; o < end; o += CHUNK) yield this.src.read(r.physical * bs + (o - start), Math.min(CHUNK, end - o));
      }
      pos = end;
    }
    if (pos < ino.size) yield* zeros(ino.size - pos);
  }

  /** Random access to an inode's bytes through its extents (holes read as zeros). */
  inodeSource(ino: Ext4Inode): ByteSource {
    const d = this.data(ino);
    const size = ino.size;
    if (d.kind === 'inline') {
      const bytes = d.bytes;
      return { size, read: (o, n) => rangeCheck(o, n, size) ?? bytes.subarray(o, o + n) };
    }
    const bs = this.sb.blockSize;
    const runs = d.runs;
    const src = this.src;
    return {
      size,
      read: (o, n) => {
        rangeCheck(o, n, size);
        const out = new Uint8Array(n);
        // First run that ends after o (binary search).
        let lo = 0;
        let hi = runs.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          const r = itemAt(runs, mid);
          if ((r.logical + r.length) * bs <= o) lo = mid + 1;
          else hi = mid;
        }
        for (let i = lo; i < runs.length; i++) {
          const r = itemAt(runs, i);
          const rs = r.logical * bs;
          if (rs >= o + n) break;
          const s = Math.max(o, rs);
          const e = Math.min(o + n, (r.logical + r.length) * bs);
          if (!r.unwritten && e > s) out.set(src.read(r.physical * bs + (s - rs), e - s), s - o);
        }
        return out;
      },
    };
  }

  /**
   * Every entry, root ('') first, parents before children (depth first, walkDirectories). Hard
   * links appear at each name; a name twice in one directory is refused.
   */
  entries(): Ext4Entry[] {
    if (this.walked !== undefined) return this.walked;
    const root = this.inode(ROOT_INO, EXT4_SUPERBLOCK_OFFSET);
    if (entryTypeOfMode(root.mode) !== 'dir') throw this.fail('the root inode is not a directory', root.offset);
    const entryOf = (path: string, ino: Ext4Inode): Ext4Entry => {
      const type = entryTypeOfMode(ino.mode);
      const e: Ext4Entry = { path, ino: ino.ino, type, mode: ino.mode, size: ino.size };
      if (type === 'symlink') e.target = Buffer.from(this.symlinkTarget(ino)).toString('utf8');
      return e;
    };
    const { entries, byPath } = walkDirectories<Ext4Inode, Ext4Entry>({
      root: { entry: entryOf('', root), dir: root, key: ROOT_INO },
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

  entry(path: string): Ext4Entry | undefined {
    this.entries();
    return this.byPath.get(path);
  }

  private symlinkTarget(ino: Ext4Inode): Uint8Array {
    if (ino.size > 4096) throw this.fail(`symlink inode ${ino.ino} has a ${ino.size}-byte target`, ino.offset + INODE.sizeLo);
    const fileAcl = u32(ino.raw, INODE.fileAclLo) + u16(ino.raw, INODE.fileAclHigh) * 2 ** 32;
    const eaSectors = fileAcl !== 0 ? this.sb.blockSize / 512 : 0;
    const sectors = u32(ino.raw, INODE.blocksLo);
    // A fast symlink keeps its target in i_block and owns no data block (as the kernel decides).
    if (!(ino.flags & FLAG_INLINE_DATA) && ino.size < 60 && sectors - eaSectors === 0) return ino.raw.subarray(INODE.block, INODE.block + ino.size);
    return Buffer.concat([...this.readInode(ino)]);
  }

  /** A directory's entries (inode ≠ 0), read linearly; htree index blocks are empty dirents. */
  private *dirents(dir: Ext4Inode): Generator<{ name: string; ino: number; at: number }> {
    if (dir.size > 2 ** 32) throw this.fail(`directory inode ${dir.ino} is ${dir.size} bytes`, dir.offset + INODE.sizeLo);
    const bs = this.sb.blockSize;
    const filetype = (this.sb.incompat & INCOMPAT.filetype) !== 0;
    const d = this.data(dir);
    let blocks: { bytes: Uint8Array; offset: number }[];
    if (d.kind === 'inline') {
      // Inline directory: 4 bytes of parent inode, then dirents in the rest of i_block and in system.data.
      const ib = d.bytes.subarray(0, Math.min(60, d.bytes.length));
      blocks = [{ bytes: ib.subarray(4), offset: dir.offset + INODE.block + 4 }];
      if (d.bytes.length > 60) blocks.push({ bytes: d.bytes.subarray(60), offset: dir.offset + 128 });
    } else {
      // Blocks are read one at a time, when the walk gets there.
      blocks = [];
      for (const r of d.runs) {
        if (r.unwritten) continue;
        for (let i = 0; i < r.length; i++) blocks.push({ bytes: EMPTY, offset: (r.physical + i) * bs });
      }
    }
    for (const blk of blocks) {
      const bytes = blk.bytes === EMPTY ? this.blocks(blk.offset / bs, 1, blk.offset) : blk.bytes;
      let o = 0;
      while (o + 8 <= bytes.length) {
        const inum = u32(bytes, o);
        let recLen = u16(bytes, o + 4);
        if (bs === 65536 && (recLen === 0 || recLen === 65535)) recLen = 65536;
        const nameLen = filetype ? u8At(bytes, o + 6) : u16(bytes, o + 6);
        if (recLen < 8 || recLen % 4 !== 0 || o + recLen > bytes.length) throw this.fail(`directory inode ${dir.ino} has a bad record length ${recLen}`, blk.offset + o + 4);
        if (inum !== 0) {
          if (8 + nameLen > recLen) throw this.fail(`directory inode ${dir.ino} has a name longer than its record`, blk.offset + o + 6);
          yield { name: Buffer.from(bytes.subarray(o + 8, o + 8 + nameLen)).toString('utf8'), ino: inum, at: blk.offset + o };
        }
        o += recLen;
      }
    }
  }

  /** Which group holds a superblock copy (sparse_super: 0, 1 and powers of 3, 5, 7). */
  private hasSuper(g: number, roCompat = this.sb.roCompat): boolean {
    if (!(roCompat & RO_COMPAT_SPARSE_SUPER) || g <= 1) return true;
    for (const p of [3, 5, 7]) {
      let x = p;
      while (x < g) x *= p;
      if (x === g) return true;
    }
    return false;
  }

  /** Who holds the byte at `offset`. */
  locate(offset: number): { what: string; path?: string; offsetInFile?: number } {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= this.src.size) throw new RangeError(`locate: offset ${offset} is outside the image (${this.src.size} bytes)`);
    const sb = this.sb;
    const bs = sb.blockSize;
    if (offset < EXT4_SUPERBLOCK_OFFSET) return { what: 'ext4 boot area' };
    if (offset < EXT4_SUPERBLOCK_OFFSET + 1024) return { what: 'ext4 superblock' };
    const block = Math.floor(offset / bs);
    if (block >= sb.blocksCount) return { what: 'beyond the ext4 file system' };
    const g = Math.floor((block - sb.firstDataBlock) / sb.blocksPerGroup);
    const gStart = g * sb.blocksPerGroup + sb.firstDataBlock;
    if (this.gdtBlocks.has(block)) return { what: 'ext4 group descriptors' };
    if (this.hasSuper(g)) {
      const gdtBlocks = Math.ceil((sb.groups * sb.descSize) / bs);
      if (block === gStart) return { what: g === 0 ? 'ext4 superblock' : `ext4 backup superblock (group ${g})` };
      if (block > gStart && block <= gStart + gdtBlocks) return { what: `ext4 group descriptors${g === 0 ? '' : ` (backup in group ${g})`}` };
      if (block > gStart + gdtBlocks && block <= gStart + gdtBlocks + sb.reservedGdtBlocks) return { what: 'ext4 reserved group descriptor blocks' };
    }
    for (const [i, gr] of this.groups.entries()) {
      if (block === gr.blockBitmap) return { what: `ext4 block bitmap (group ${i})` };
      if (block === gr.inodeBitmap) return { what: `ext4 inode bitmap (group ${i})` };
      const tableBlocks = Math.ceil((sb.inodesPerGroup * sb.inodeSize) / bs);
      if (block >= gr.inodeTable && block < gr.inodeTable + tableBlocks) {
        const ino = i * sb.inodesPerGroup + Math.floor((offset - gr.inodeTable * bs) / sb.inodeSize) + 1;
        this.byIno ??= new Map(this.entries().map((x) => [x.ino, x]));
        const e = this.byIno.get(ino);
        return e === undefined ? { what: `ext4 inode table (inode ${ino})` } : { path: e.path, what: `ext4 inode of ${e.path || '/'}` };
      }
    }
    const owners = this.ownerRuns();
    let lo = 0;
    let hi = owners.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (itemAt(owners, mid).start + itemAt(owners, mid).length <= block) lo = mid + 1;
      else hi = mid;
    }
    const o = owners[lo];
    if (o !== undefined && o.start <= block) {
      if (o.what === 'meta') return o.path === '<journal>' ? { what: 'ext4 journal' } : { path: o.path, what: `ext4 extent/indirect block of ${o.path || '/'}` };
      if (o.what === 'dir') return { path: o.path, what: `ext4 directory block of ${o.path || '/'}` };
      if (o.path === '<journal>') return { what: 'ext4 journal' };
      return { path: o.path, what: `data of ${o.path}`, offsetInFile: (o.logical + block - o.start) * bs + (offset % bs) };
    }
    return { what: 'ext4 free or unused block' };
  }

  private ownerRuns(): NonNullable<Ext4['owners']> {
    if (this.owners !== undefined) return this.owners;
    const runs: NonNullable<Ext4['owners']> = [];
    const seen = new Set<number>();
    const addInode = (ino: Ext4Inode, path: string, what: 'data' | 'dir'): void => {
      if (seen.has(ino.ino)) return;
      seen.add(ino.ino);
      const d = this.data(ino);
      if (d.kind === 'inline') return;
      for (const r of d.runs) runs.push({ start: r.physical, length: r.length, path, ino: ino.ino, logical: r.logical, what });
      for (const m of d.meta) runs.push({ start: m, length: 1, path, ino: ino.ino, logical: 0, what: 'meta' });
    };
    for (const e of this.entries()) {
      if (e.type === 'file' || e.type === 'dir' || (e.type === 'symlink' && e.size >= 60)) addInode(this.inode(e.ino, EXT4_SUPERBLOCK_OFFSET), e.path, e.type === 'dir' ? 'dir' : 'data');
    }
    if (this.sb.journalInum !== 0) {
      try {
        addInode(this.inode(this.sb.journalInum, EXT4_SUPERBLOCK_OFFSET + SB.journalInum), '<journal>', 'data');
      } catch {
        // A damaged journal inode only makes its blocks anonymous.
      }
    }
    runs.sort((a, b) => a.start - b.start);
    return (this.owners = runs);
  }
}

function rangeCheck(o: number, n: number, size: number): undefined {
  if (!Number.isSafeInteger(o) || !Number.isSafeInteger(n) || o < 0 || n < 0 || o + n > size) throw new RangeError(`read ${n} bytes at ${o} of a ${size}-byte file`);
  return undefined;
}

export function openExt4(src: ByteSource, name: string, limits: Partial<Ext4Limits> = {}): Ext4 {
  return new Ext4(src, name, limits);
}

function ext4View(fs: Ext4, src: ByteSource): ImageView {
  let inner: InnerEntry[] | undefined;
  const inodeOf = (entry: InnerEntry): Ext4Inode => {
    const e = fs.entry(entry.path);
    if (e === undefined || e.type !== 'file') throw new NixSealError('EUSAGE', `Cannot read ${entry.path} in ${fs.name}: no such file`, { path: entry.path });
    return fs.inode(e.ino, EXT4_SUPERBLOCK_OFFSET);
  };
  const ext = fs.sb.incompat & INCOMPAT.extents ? 'ext4' : fs.sb.compat & 0x4 ? 'ext3' : 'ext2';
  return {
    kind: 'ext4',
    description: `${ext} (${fs.sb.blockSize}-byte blocks)`,
    source: src,
    entries() {
      if (inner !== undefined) return inner;
      inner = fs.entries().map((e) => {
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
    locate(offset): InnerOwner {
      const o = fs.locate(offset);
      const r: InnerOwner = { what: o.what };
      if (o.path !== undefined) r.path = o.path;
      if (o.offsetInFile !== undefined) r.offsetInFile = o.offsetInFile;
      return r;
    },
  };
}

/** The superblock is 1024 bytes: a file that ends inside it is no ext2/3/4 file system. */
const SUPERBLOCK_SIZE = 1024;
/** s_log_block_size: block sizes 1 KiB…64 KiB. */
const MAX_LOG_BLOCK_SIZE = 6;
/** s_rev_level: 0 (original) or 1 (dynamic). */
const MAX_REV_LEVEL = 1;
const COMPAT_HAS_JOURNAL = 0x4;
/** The features only ext4 has, by name (incompat and ro_compat), as the kernel's ext4 driver tells them. */
const EXT4_ONLY_INCOMPAT = { extents: 0x40, '64bit': 0x80, flex_bg: 0x200, inline_data: 0x8000 } as const;
const EXT4_ONLY_RO_COMPAT = { huge_file: 0x8, gdt_csum: 0x10, dir_nlink: 0x20, extra_isize: 0x40, metadata_csum: 0x400 } as const;

/**
 * ext2/3/4 from the file's first bytes (`head`): the magic 0xEF53 in a consistent superblock at
 * 1024. Which of the three is decided as the kernel's ext4 driver would describe it: ext4-only
 * features make ext4, a journal ext3. Sane group sizes with a broken rest are a near miss.
 */
export function detectExt(head: Uint8Array): Verdict {
  const sb = EXT4_SUPERBLOCK_OFFSET;
  if (head.length < sb + SUPERBLOCK_SIZE || bytes.le16(head, sb + SB.magic) !== EXT4_MAGIC) return undefined;
  const logBlock = bytes.le32(head, sb + SB.logBlockSize);
  const blocksPerGroup = bytes.le32(head, sb + SB.blocksPerGroup);
  // The 2-byte magic alone turns up by chance: without sane group sizes it is no claim at all.
  if (logBlock > MAX_LOG_BLOCK_SIZE || blocksPerGroup === 0 || bytes.le32(head, sb + SB.inodesPerGroup) === 0) return undefined;
  const blockSize = 1024 << logBlock;
  const nearMiss = (why: string): Verdict => ({ format: 'ext4', offset: sb, nearMiss: why });
  if (bytes.le32(head, sb + SB.inodesCount) === 0 || bytes.le32(head, sb + SB.blocksCountLo) === 0) return nearMiss('no inodes or no blocks');
  if (bytes.le32(head, sb + SB.revLevel) > MAX_REV_LEVEL) return nearMiss('an unknown revision');
  // A group's block bitmap is one block: at most 8 × block size blocks per group.
  if (blocksPerGroup > 8 * blockSize) return nearMiss('more blocks per group than a bitmap block maps');
  const compat = bytes.le32(head, sb + SB.featureCompat);
  const incompat = bytes.le32(head, sb + SB.featureIncompat);
  const roCompat = bytes.le32(head, sb + SB.featureRoCompat);
  const ext4Features = [
    ...Object.entries(EXT4_ONLY_INCOMPAT).filter(([, bit]) => incompat & bit),
    ...Object.entries(EXT4_ONLY_RO_COMPAT).filter(([, bit]) => roCompat & bit),
  ].map(([name]) => name);
  const format = ext4Features.length > 0 ? 'ext4' : compat & COMPAT_HAS_JOURNAL ? 'ext3' : 'ext2';
  const features = format === 'ext4' ? `; ${ext4Features.join(', ')}` : format === 'ext3' ? '; has_journal' : '';
  return { format, offset: sb, why: `${format} superblock at ${sb} (${blockSize}-byte blocks${features})` };
}

/** ext2/3/4: detectExt; the reader checks the rest. */
export const ext4Reader: ImageReader = {
  kind: 'ext4',
  detect: (src) => detectExt(headOf(src)) !== undefined,
  open(src, name) {
    return ext4View(new Ext4(src, name), src);
  },
};
