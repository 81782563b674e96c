/**
 * Squashfs 4.0 (as mksquashfs and the Linux kernel write and read it), read as hostile input:
 * NixOS ISOs carry the Nix store as /nix-store.squashfs, microvms and repart images use it as a
 * store disk. Layout: superblock | data and fragment blocks | inode, directory, fragment, export,
 * id, xattr tables (metadata blocks of at most 8 KiB behind a 2-byte header; see Squashfs below).
 * Read through a random-access ByteSource: every offset is checked against the image and its
 * table, every block is decompressed with its output capped (8 KiB, or the block size), loops and
 * budgets are errors: EFORMAT "Cannot read <image>: <why> at offset N". Not read: xattrs and the
 * export table (only located), the directory index. Compressors: decompress.ts.
 */
import { itemAt } from '../checked-index.js';
import { NixSealError } from '../errors.js';
import { type CompressionKind, DecompressError, SQUASHFS_COMPRESSION, decompress } from './decompress.js';

export { bytesSource, fdSource, windowSource, type ByteSource } from './byte-source.js';
import type { ByteSource } from './byte-source.js';
import type { ImageReader, ImageView, InnerEntry } from './image.js';
import * as bytes from './bytes.js';
import { headOf, type Verdict } from './detection.js';

// ---------------------------------------------------------------------------------------------
// Format constants

export const SQUASHFS_MAGIC = 0x73717368; // "hsqs"
export const SUPERBLOCK_SIZE = 96;
/** Uncompressed size of a metadata block (all but a table's last are exactly this). */
export const METADATA_SIZE = 8192;
const METADATA_UNCOMPRESSED = 0x8000;
const DATA_UNCOMPRESSED = 1 << 24;
const DATA_SIZE_MASK = DATA_UNCOMPRESSED - 1;
const NO_FRAGMENT = 0xffff_ffff;
/** A u64 table start of all ones: the table is absent. */
const ABSENT = 0xffff_ffff_ffff_ffffn;
const FRAGMENT_ENTRY_SIZE = 16;
const FRAGMENTS_PER_BLOCK = METADATA_SIZE / FRAGMENT_ENTRY_SIZE; // 512
const IDS_PER_BLOCK = METADATA_SIZE / 4; // 2048
const EXPORTS_PER_BLOCK = METADATA_SIZE / 8; // 1024
const XATTR_IDS_PER_BLOCK = METADATA_SIZE / 16; // 512
/** Directory headers cover at most 256 entries; names are at most 256 bytes. */
const DIR_HEADER_MAX_COUNT = 256;
const NAME_MAX = 256;
const SYMLINK_MAX = 4096;

/** Byte offset of each superblock field. */
export const SB = {
  magic: 0,
  inodeCount: 4,
  modificationTime: 8,
  blockSize: 12,
  fragmentCount: 16,
  compression: 20,
  blockLog: 22,
  flags: 24,
  idCount: 26,
  versionMajor: 28,
  versionMinor: 30,
  rootInode: 32,
  bytesUsed: 40,
  idTableStart: 48,
  xattrIdTableStart: 56,
  inodeTableStart: 64,
  directoryTableStart: 72,
  fragmentTableStart: 80,
  exportTableStart: 88,
} as const;

/** Superblock flags. */
export const FLAGS = {
  uncompressedInodes: 0x0001,
  uncompressedData: 0x0002,
  check: 0x0004,
  uncompressedFragments: 0x0008,
  noFragments: 0x0010,
  alwaysFragments: 0x0020,
  duplicates: 0x0040,
  exportable: 0x0080,
  uncompressedXattrs: 0x0100,
  noXattrs: 0x0200,
  compressorOptions: 0x0400,
  uncompressedIds: 0x0800,
} as const;

/** Inode types; the extended ("l") variants are the basic ones + 7. */
export const INODE = {
  dir: 1,
  file: 2,
  symlink: 3,
  blockDevice: 4,
  charDevice: 5,
  fifo: 6,
  socket: 7,
  ldir: 8,
  lfile: 9,
  lsymlink: 10,
  lblockDevice: 11,
  lcharDevice: 12,
  lfifo: 13,
  lsocket: 14,
} as const;

/** Offsets in the 16-byte header every inode starts with. */
const INODE_HEADER = { type: 0, mode: 2, uid: 4, gid: 6, mtime: 8, number: 12, size: 16 } as const;

export type SquashEntryType = 'directory' | 'file' | 'symlink' | 'block-device' | 'char-device' | 'fifo' | 'socket';

/** By basic inode type - 1 (the reader refuses types outside 1..7). */
const TYPE_NAME: readonly SquashEntryType[] = ['directory', 'file', 'symlink', 'block-device', 'char-device', 'fifo', 'socket'];
const TYPE_MODE: Record<SquashEntryType, number> = {
  directory: 0o040000,
  file: 0o100000,
  symlink: 0o120000,
  'block-device': 0o060000,
  'char-device': 0o020000,
  fifo: 0o010000,
  socket: 0o140000,
};

// ---------------------------------------------------------------------------------------------
// Public types

export interface SquashfsSuperblock {
  inodeCount: number;
  modificationTime: number;
  blockSize: number;
  fragmentCount: number;
  compression: CompressionKind;
  flags: number;
  idCount: number;
  rootInode: bigint;
  bytesUsed: number;
  idTableStart: number;
  /** undefined: the table is absent (all ones on disk). */
  xattrIdTableStart: number | undefined;
  inodeTableStart: number;
  directoryTableStart: number;
  fragmentTableStart: number | undefined;
  exportTableStart: number | undefined;
}

/** One data block of a file. `length` 0: a run of sparse (all-zero) blocks, `size` bytes in all. */
export interface SquashDataBlock {
  /** Where the block is in the image. */
  offset: number;
  /** Bytes on disk. */
  length: number;
  compressed: boolean;
  /** Bytes of the file it holds. */
  size: number;
}

/** The tail of a file kept in a fragment block, which it may share with other files' tails. */
export interface SquashFragment {
  index: number;
  /** The fragment block in the image. */
  offset: number;
  length: number;
  compressed: boolean;
  /** Where the file's tail is in the uncompressed fragment block. */
  start: number;
  size: number;
}

/** A range of the image that holds a file's data. */
export interface ImageRange {
  offset: number;
  length: number;
  compressed: boolean;
  kind: 'block' | 'fragment';
}

export interface SquashEntry {
  /** Path from the root: "." for the root itself, "a/b" below it. */
  path: string;
  type: SquashEntryType;
  /** st_mode: type bits and permissions. */
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  /** The inode number (hard links share it). */
  inode: number;
  nlink: number;
  /** Files: their size. Symlinks: the target's length. Directories: the listing size as stored. */
  size: number;
  /** Symlinks only. */
  target?: string;
  /** Block and character devices only. */
  rdev?: { major: number; minor: number };
  /** Regular files only: the data blocks (sparse runs included, with length 0). */
  blocks?: SquashDataBlock[];
  /** Regular files only, when the tail is in a fragment block. */
  fragment?: SquashFragment;
  /** Regular files only: where their data is in the image (sparse runs hold none). */
  ranges?: ImageRange[];
}

export type OwnerKind =
  | 'superblock'
  | 'compressor-options'
  | 'file-block'
  | 'fragment-block'
  | 'inode-table'
  | 'directory-table'
  | 'fragment-table'
  | 'export-table'
  | 'id-table'
  | 'xattr-table'
  /** After bytes_used: the padding mksquashfs adds (to 4 KiB), or whatever follows the image. */
  | 'padding'
  /** Inside the image but referenced by nothing read. */
  | 'unknown';

/** What a byte of the image belongs to, and the extent of that structure. */
export interface Owner {
  kind: OwnerKind;
  start: number;
  end: number;
  /** file-block, fragment-block: the (first) file. */
  path?: string;
  /** file-block, fragment-block: every file whose data it is (duplicates and shared fragments). */
  paths?: string[];
  /** file-block: the index of the block in the file. */
  block?: number;
  /**
   * fragment-block stored uncompressed: the offset of the byte in the file `path` (the one whose
   * tail holds it; `path` is then that file, not the block's first).
   */
  offsetInFile?: number;
  /** file-block, fragment-block: stored compressed (raw offsets do not map to file bytes). */
  compressed?: boolean;
}

export interface SquashfsLimits {
  /** Entries a walk may yield (default 10 million). */
  maxEntries: number;
  /** Directory depth below the root (default 1024). */
  maxDepth: number;
  /**
   * Bytes of metadata decompressed plus bytes of metadata records read, over the reader's life
   * (default 1 GiB). A walk of a sound image uses about twice its inode and directory tables.
   */
  maxMetadataBytes: number;
  /** Decompressed metadata blocks kept (default 256: 2 MiB). */
  metadataCacheBlocks: number;
}

export const DEFAULT_SQUASHFS_LIMITS: Readonly<SquashfsLimits> = {
  maxEntries: 10_000_000,
  maxDepth: 1024,
  maxMetadataBytes: 1 << 30,
  metadataCacheBlocks: 256,
};

// ---------------------------------------------------------------------------------------------
// Reader

/** A table that metadata blocks must lie in: [start, end) of the image. */
interface Region {
  start: number;
  end: number;
  what: string;
}

/** A position in a metadata table: the block's header offset in the image, and in its data. */
interface Cursor {
  block: number;
  offset: number;
}

interface MetaBlock {
  data: Uint8Array;
  /** The next block's header. */
  next: number;
}

/** What the walk needs of an inode. */
interface Inode {
  type: number; // basic type 1..7
  perm: number;
  uid: number;
  gid: number;
  mtime: number;
  number: number;
  nlink: number;
  /** Where the inode's first metadata block is (for errors). */
  at: number;
  size: number;
  // directories
  dirBlock?: number;
  dirOffset?: number;
  // files
  blocksStart?: number;
  fragment?: number;
  fragmentOffset?: number;
  blockCount?: number;
  /** Cursor just after the fixed fields: the block list of a file. */
  rest?: Cursor;
  target?: string;
  rdev?: number;
}

interface Interval {
  start: number;
  end: number;
  kind: OwnerKind;
  paths?: string[];
  block?: number;
  /** Fragment blocks: each file's tail in the uncompressed block, to name the file that holds a byte. */
  tails?: FragmentTail[];
  compressed?: boolean;
}

/** A file's tail in a fragment block: bytes [start, start + size) of the uncompressed block. */
interface FragmentTail {
  path: string;
  start: number;
  size: number;
  /** Where the tail starts in the file (the bytes of its full blocks before it). */
  fileOffset: number;
}

const utf8 = new TextDecoder('utf-8');

/** Opens a squashfs image. Reads and checks the superblock now; everything else on demand. */
export function openSquashfs(src: ByteSource, name: string, limits: Partial<SquashfsLimits> = {}): Squashfs {
  return new Squashfs(src, name, limits);
}

export class Squashfs {
  readonly superblock: SquashfsSuperblock;
  private readonly limits: SquashfsLimits;
  private readonly kind: CompressionKind;
  private readonly inodeRegion: Region;
  private readonly dirRegion: Region;
  private readonly cache = new Map<number, MetaBlock>();
  private lastAt = -1;
  private last: MetaBlock | undefined;
  private metadataBytes = 0;
  private ids: Uint32Array | undefined;
  /** Pointers of the pointer tables read so far, by table start and index. */
  private readonly pointers = new Map<string, number>();
  private readonly fragmentCache = new Map<number, Uint8Array>();
  private intervals: { list: Interval[]; maxEnd: number[] } | undefined;

  constructor(
    private readonly src: ByteSource,
    readonly name: string,
    limits: Partial<SquashfsLimits> = {},
  ) {
    this.limits = { ...DEFAULT_SQUASHFS_LIMITS, ...limits };
    this.superblock = this.readSuperblock();
    const sb = this.superblock;
    this.kind = sb.compression;
    this.inodeRegion = { start: sb.inodeTableStart, end: sb.directoryTableStart, what: 'inode table' };
    // The directory table ends where the next structure starts; the fragment table's blocks lie
    // before its pointer array, so this bound is loose, but it keeps every read inside the image.
    const after = [sb.fragmentTableStart, sb.exportTableStart, sb.idTableStart, sb.xattrIdTableStart, sb.bytesUsed].filter(
      (x): x is number => x !== undefined && x > sb.directoryTableStart,
    );
    this.dirRegion = { start: sb.directoryTableStart, end: Math.min(sb.bytesUsed, ...after), what: 'directory table' };
  }

  // ---- errors and raw reads --------------------------------------------------------------

  private fail(why: string, offset: number, cause?: unknown): NixSealError {
    return new NixSealError('EFORMAT', `Cannot read ${this.name}: ${why} at offset ${offset}`, {
      path: this.name,
      offset,
      ...(cause === undefined ? {} : { cause }),
    });
  }

  /** Reads [offset, offset+length) after checking it lies within [0, end). */
  private bytes(offset: number, length: number, what: string, end = this.src.size): Uint8Array {
    end = Math.min(end, this.src.size);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > end) {
      throw this.fail(`${what} (${length} bytes) extends past ${end === this.src.size ? 'the end of the image' : 'its table'}`, Math.max(0, Math.min(offset, Number.MAX_SAFE_INTEGER)));
    }
    const b = this.src.read(offset, length);
    if (b.length !== length) throw this.fail(`short read of ${what}`, offset);
    return b;
  }

  private decompress(data: Uint8Array, max: number, what: string, offset: number): Uint8Array {
    try {
      return decompress(this.kind, data, max);
    } catch (err) {
      if (err instanceof DecompressError) throw this.fail(`${what}: ${this.kind} ${err.why}`, offset, err);
      throw err;
    }
  }

  // ---- superblock ---------------------------------------------------------------------------

  private readSuperblock(): SquashfsSuperblock {
    if (this.src.size < SUPERBLOCK_SIZE) throw this.fail(`too small for a squashfs superblock (${this.src.size} bytes)`, 0);
    const b = this.bytes(0, SUPERBLOCK_SIZE, 'superblock');
    const dv = view(b);
    const u16 = (o: number): number => dv.getUint16(o, true);
    const u32 = (o: number): number => dv.getUint32(o, true);
    const magic = u32(SB.magic);
    if (magic !== SQUASHFS_MAGIC) {
      const be = dv.getUint32(SB.magic, false) === SQUASHFS_MAGIC;
      throw this.fail(be ? 'big-endian squashfs (magic "sqsh") is not supported' : 'not a squashfs image (no "hsqs" magic)', SB.magic);
    }
    const major = u16(SB.versionMajor);
    const minor = u16(SB.versionMinor);
    if (major !== 4 || minor !== 0) throw this.fail(`squashfs version ${major}.${minor} is not supported (only 4.0)`, SB.versionMajor);
    const blockSize = u32(SB.blockSize);
    const blockLog = u16(SB.blockLog);
    if (blockSize < 4096 || blockSize > 1 << 20 || (blockSize & (blockSize - 1)) !== 0) throw this.fail(`bad block size ${blockSize}`, SB.blockSize);
    if (1 << blockLog !== blockSize) throw this.fail(`block log ${blockLog} does not match block size ${blockSize}`, SB.blockLog);
    const compId = u16(SB.compression);
    const compression = SQUASHFS_COMPRESSION[compId];
    if (compression === undefined) throw this.fail(`unknown compressor id ${compId}`, SB.compression);
    const u64 = (o: number, what: string): number => {
      const v = dv.getBigUint64(o, true);
      if (v > BigInt(this.src.size)) throw this.fail(`${what} ${v} is past the end of the image (${this.src.size} bytes)`, o);
      return Number(v);
    };
    const bytesUsed = u64(SB.bytesUsed, 'bytes_used');
    const within = (o: number, what: string): number => {
      const v = u64(o, what);
      if (v < SUPERBLOCK_SIZE || v > bytesUsed) throw this.fail(`${what} ${v} is outside the image (bytes_used ${bytesUsed})`, o);
      return v;
    };
    const optionalWithin = (o: number, what: string): number | undefined => (dv.getBigUint64(o, true) === ABSENT ? undefined : within(o, what));
    const sb: SquashfsSuperblock = {
      inodeCount: u32(SB.inodeCount),
      modificationTime: u32(SB.modificationTime),
      blockSize,
      fragmentCount: u32(SB.fragmentCount),
      compression,
      flags: u16(SB.flags),
      idCount: u16(SB.idCount),
      rootInode: dv.getBigUint64(SB.rootInode, true),
      bytesUsed,
      idTableStart: within(SB.idTableStart, 'id table start'),
      xattrIdTableStart: optionalWithin(SB.xattrIdTableStart, 'xattr id table start'),
      inodeTableStart: within(SB.inodeTableStart, 'inode table start'),
      directoryTableStart: within(SB.directoryTableStart, 'directory table start'),
      fragmentTableStart: optionalWithin(SB.fragmentTableStart, 'fragment table start'),
      exportTableStart: optionalWithin(SB.exportTableStart, 'export table start'),
    };
    if (sb.inodeCount === 0) throw this.fail('no inodes', SB.inodeCount);
    if (sb.idCount === 0) throw this.fail('no ids (uids/gids)', SB.idCount);
    if (sb.inodeTableStart >= sb.directoryTableStart) throw this.fail('the inode table does not come before the directory table', SB.inodeTableStart);
    if (sb.fragmentCount > 0 && sb.fragmentTableStart === undefined) throw this.fail(`${sb.fragmentCount} fragments but no fragment table`, SB.fragmentCount);
    if (sb.fragmentTableStart !== undefined && sb.fragmentTableStart + 8 * Math.ceil(sb.fragmentCount / FRAGMENTS_PER_BLOCK) > bytesUsed) {
      throw this.fail(`the fragment table's ${sb.fragmentCount} entries do not fit in the image`, SB.fragmentCount);
    }
    if (sb.idTableStart + 8 * Math.ceil(sb.idCount / IDS_PER_BLOCK) > bytesUsed) throw this.fail("the id table's pointers do not fit in the image", SB.idTableStart);
    return sb;
  }

  // ---- metadata -------------------------------------------------------------------------------

  /** The metadata block whose header is at `at`, which must lie in `region`. */
  private metaBlock(at: number, region: Region): MetaBlock {
    // Blocks are cached by their place in the image, whatever table they were read for: check
    // that this one is in the table asked for before using the cached copy.
    if (at < region.start || at + 2 > region.end) throw this.fail(`metadata block outside the ${region.what}`, Math.max(0, at));
    if (at === this.lastAt && this.last !== undefined && this.last.next <= region.end) return this.last;
    const hit = this.cache.get(at);
    if (hit !== undefined && hit.next <= region.end) {
      this.cache.delete(at);
      this.cache.set(at, hit);
      this.lastAt = at;
      this.last = hit;
      return hit;
    }
    if (at < region.start || at + 2 > region.end) throw this.fail(`metadata block outside the ${region.what}`, Math.max(0, at));
    const h = view(this.bytes(at, 2, 'metadata block header', region.end)).getUint16(0, true);
    const size = h & ~METADATA_UNCOMPRESSED;
    const compressed = (h & METADATA_UNCOMPRESSED) === 0;
    if (size === 0 || size > METADATA_SIZE) throw this.fail(`bad metadata block size ${size} in the ${region.what}`, at);
    const raw = this.bytes(at + 2, size, `metadata block in the ${region.what}`, region.end);
    const data = compressed ? this.decompress(raw, METADATA_SIZE, `metadata block in the ${region.what}`, at) : raw.slice();
    if (data.length === 0) throw this.fail(`empty metadata block in the ${region.what}`, at);
    this.charge(data.length, at);
    const block = { data, next: at + 2 + size };
    this.lastAt = at;
    this.last = block;
    this.cache.set(at, block);
    if (this.cache.size > this.limits.metadataCacheBlocks) this.cache.delete(this.cache.keys().next().value as number);
    return block;
  }

  /**
   * Counts metadata work against the budget: every block decompressed (or copied) and every byte
   * read from the tables, cached or not, so that records read again and again (many names for one
   * file with a long block list) cannot make a walk run for ever.
   */
  private charge(n: number, at: number): void {
    this.metadataBytes += n;
    if (this.metadataBytes > this.limits.maxMetadataBytes) {
      throw this.fail(`more than ${this.limits.maxMetadataBytes} bytes of metadata read or decompressed (budget exceeded)`, at);
    }
  }

  /** Reads `n` bytes of a table from `pos` (advanced), across block boundaries. */
  private meta(region: Region, pos: Cursor, n: number, what: string): Uint8Array {
    this.charge(n, pos.block);
    let block = this.metaBlock(pos.block, region);
    if (pos.offset > block.data.length) throw this.fail(`${what} starts past the end of its metadata block`, pos.block);
    if (pos.offset + n <= block.data.length) {
      const out = block.data.subarray(pos.offset, pos.offset + n);
      pos.offset += n;
      return out;
    }
    if (n > this.limits.maxMetadataBytes) throw this.fail(`${what} is too large`, pos.block);
    const out = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      if (pos.offset === block.data.length) {
        pos.block = block.next;
        pos.offset = 0;
        block = this.metaBlock(pos.block, region);
      }
      const take = Math.min(n - got, block.data.length - pos.offset);
      out.set(block.data.subarray(pos.offset, pos.offset + take), got);
      got += take;
      pos.offset += take;
    }
    return out;
  }

  /** A table of pointers to metadata blocks, as the fragment, export, id and xattr id tables are. */
  private pointer(tableStart: number, i: number, what: string): number {
    const at = tableStart + 8 * i;
    const p = view(this.bytes(at, 8, `${what} pointer`, this.superblock.bytesUsed)).getBigUint64(0, true);
    // The blocks lie between the superblock and the pointer array.
    if (p < BigInt(SUPERBLOCK_SIZE) || p >= BigInt(tableStart)) throw this.fail(`${what} pointer ${p} is outside the image`, at);
    return Number(p);
  }

  private entryOf(tableStart: number, perBlock: number, entrySize: number, i: number, what: string): Uint8Array {
    const blockIndex = Math.floor(i / perBlock);
    const key = `${tableStart}:${blockIndex}`;
    let at = this.pointers.get(key);
    if (at === undefined) {
      at = this.pointer(tableStart, blockIndex, what);
      if (this.pointers.size > 4096) this.pointers.clear();
      this.pointers.set(key, at);
    }
    const region: Region = { start: SUPERBLOCK_SIZE, end: tableStart, what };
    return this.meta(region, { block: at, offset: (i % perBlock) * entrySize }, entrySize, `${what} entry ${i}`);
  }

  private id(index: number, at: number): number {
    if (this.ids === undefined) {
      const sb = this.superblock;
      const ids = new Uint32Array(sb.idCount);
      for (let i = 0; i < sb.idCount; i += IDS_PER_BLOCK) {
        const n = Math.min(IDS_PER_BLOCK, sb.idCount - i);
        const p = this.pointer(sb.idTableStart, i / IDS_PER_BLOCK, 'id table');
        const b = this.meta({ start: SUPERBLOCK_SIZE, end: sb.idTableStart, what: 'id table' }, { block: p, offset: 0 }, 4 * n, 'id table');
        const dv = view(b);
        for (let j = 0; j < n; j++) ids[i + j] = dv.getUint32(4 * j, true);
      }
      this.ids = ids;
    }
    const v = this.ids[index];
    if (v === undefined) throw this.fail(`id index ${index} is past the id table (${this.ids.length} ids)`, at);
    return v;
  }

  private fragmentEntry(index: number, at: number): { offset: number; length: number; compressed: boolean } {
    const sb = this.superblock;
    if (index >= sb.fragmentCount || sb.fragmentTableStart === undefined) throw this.fail(`fragment index ${index} is past the fragment table (${sb.fragmentCount} fragments)`, at);
    const e = view(this.entryOf(sb.fragmentTableStart, FRAGMENTS_PER_BLOCK, FRAGMENT_ENTRY_SIZE, index, 'fragment table'));
    const start = e.getBigUint64(0, true);
    const word = e.getUint32(8, true);
    const length = word & DATA_SIZE_MASK;
    if (word & ~(DATA_UNCOMPRESSED | DATA_SIZE_MASK)) throw this.fail(`bad size word 0x${word.toString(16)} of fragment ${index}`, at);
    if (length === 0 || length > sb.blockSize) throw this.fail(`bad size ${length} of fragment block ${index}`, at);
    if (start < BigInt(SUPERBLOCK_SIZE) || start + BigInt(length) > BigInt(sb.bytesUsed)) throw this.fail(`fragment block ${index} (at ${start}) is outside the image`, at);
    return { offset: Number(start), length, compressed: (word & DATA_UNCOMPRESSED) === 0 };
  }

  // ---- inodes ---------------------------------------------------------------------------------

  /** Reads the inode at (block relative to the inode table, offset in its uncompressed data). */
  private inode(block: number, offset: number): Inode {
    const sb = this.superblock;
    const at = sb.inodeTableStart + block;
    if (!Number.isSafeInteger(at) || at >= sb.directoryTableStart) throw this.fail(`inode reference (block ${block}) is past the inode table`, sb.inodeTableStart);
    if (offset >= METADATA_SIZE) throw this.fail(`inode reference offset ${offset} is past a metadata block`, at);
    const pos: Cursor = { block: at, offset };
    if (offset >= this.metaBlock(at, this.inodeRegion).data.length) throw this.fail(`inode reference offset ${offset} is past the end of its metadata block`, at);
    const h = view(this.meta(this.inodeRegion, pos, INODE_HEADER.size, 'inode'));
    const rawType = h.getUint16(INODE_HEADER.type, true);
    if (rawType < INODE.dir || rawType > INODE.lsocket) throw this.fail(`unknown inode type ${rawType}`, at);
    const extended = rawType > INODE.socket;
    const type = extended ? rawType - 7 : rawType;
    const number = h.getUint32(INODE_HEADER.number, true);
    if (number === 0 || number > sb.inodeCount) throw this.fail(`inode number ${number} is not in 1..${sb.inodeCount}`, at);
    const ino: Inode = {
      type,
      perm: h.getUint16(INODE_HEADER.mode, true) & 0o7777,
      uid: this.id(h.getUint16(INODE_HEADER.uid, true), at),
      gid: this.id(h.getUint16(INODE_HEADER.gid, true), at),
      mtime: h.getUint32(INODE_HEADER.mtime, true),
      number,
      nlink: 1,
      at: pos.block,
      size: 0,
    };
    const fields = (n: number): Fields => view(this.meta(this.inodeRegion, pos, n, 'inode'));
    switch (rawType) {
      case INODE.dir: {
        const d = fields(16);
        ino.dirBlock = d.getUint32(0, true);
        ino.nlink = d.getUint32(4, true);
        ino.size = d.getUint16(8, true);
        ino.dirOffset = d.getUint16(10, true);
        break;
      }
      case INODE.ldir: {
        const d = fields(24);
        ino.nlink = d.getUint32(0, true);
        ino.size = d.getUint32(4, true);
        ino.dirBlock = d.getUint32(8, true);
        ino.dirOffset = d.getUint16(18, true);
        break;
      }
      case INODE.file: {
        const d = fields(16);
        ino.blocksStart = d.getUint32(0, true);
        ino.fragment = d.getUint32(4, true);
        ino.fragmentOffset = d.getUint32(8, true);
        ino.size = d.getUint32(12, true);
        break;
      }
      case INODE.lfile: {
        const d = fields(40);
        const start = d.getBigUint64(0, true);
        const size = d.getBigUint64(8, true);
        if (start > BigInt(sb.bytesUsed)) throw this.fail(`file data start ${start} is past the image`, at);
        if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw this.fail(`file size ${size} is too large`, at);
        ino.blocksStart = Number(start);
        ino.size = Number(size);
        ino.nlink = d.getUint32(24, true);
        ino.fragment = d.getUint32(28, true);
        ino.fragmentOffset = d.getUint32(32, true);
        break;
      }
      case INODE.symlink:
      case INODE.lsymlink: {
        const d = fields(8);
        ino.nlink = d.getUint32(0, true);
        const n = d.getUint32(4, true);
        if (n === 0 || n > SYMLINK_MAX) throw this.fail(`bad symlink target length ${n}`, at);
        const t = this.meta(this.inodeRegion, pos, n, 'symlink target');
        if (t.includes(0)) throw this.fail('symlink target contains a NUL byte', at);
        ino.target = utf8.decode(t);
        ino.size = n;
        break;
      }
      case INODE.blockDevice:
      case INODE.charDevice:
      case INODE.lblockDevice:
      case INODE.lcharDevice: {
        const d = fields(8);
        ino.nlink = d.getUint32(0, true);
        ino.rdev = d.getUint32(4, true);
        break;
      }
      default: {
        ino.nlink = fields(4).getUint32(0, true);
      }
    }
    if (ino.type === INODE.file) {
      const start = ino.blocksStart!;
      const hasFragment = ino.fragment !== NO_FRAGMENT;
      ino.blockCount = hasFragment ? Math.floor(ino.size / sb.blockSize) : Math.ceil(ino.size / sb.blockSize);
      if (ino.blockCount > 0 && (start < SUPERBLOCK_SIZE || start > sb.bytesUsed)) throw this.fail(`file data start ${start} is outside the image`, at);
      if (hasFragment && ino.size % sb.blockSize === 0) throw this.fail('a file with no tail has a fragment', at);
      if (ino.blockCount * 4 > this.limits.maxMetadataBytes - this.metadataBytes) {
        throw this.fail(`file of ${ino.size} bytes needs more block sizes than the metadata budget allows`, at);
      }
      ino.rest = pos;
    }
    return ino;
  }

  /** A file's data blocks (sparse runs merged) and fragment, checked against the image. */
  private fileLayout(ino: Inode): { blocks: SquashDataBlock[]; fragment?: SquashFragment } {
    const sb = this.superblock;
    const bs = sb.blockSize;
    const blocks: SquashDataBlock[] = [];
    let offset = ino.blocksStart!;
    const pos = ino.rest!;
    const count = ino.blockCount!;
    for (let i = 0; i < count; ) {
      const n = Math.min(count - i, 1024);
      const words = view(this.meta(this.inodeRegion, pos, 4 * n, 'file block list'));
      for (let j = 0; j < n; j++, i++) {
        const word = words.getUint32(4 * j, true);
        const size = Math.min(bs, ino.size - i * bs);
        if (word === 0) {
          const last = blocks[blocks.length - 1];
          if (last !== undefined && last.length === 0) last.size += size;
          else blocks.push({ offset, length: 0, compressed: false, size });
          continue;
        }
        if (word & ~(DATA_UNCOMPRESSED | DATA_SIZE_MASK)) throw this.fail(`bad size word 0x${word.toString(16)} of block ${i}`, ino.at);
        const length = word & DATA_SIZE_MASK;
        const compressed = (word & DATA_UNCOMPRESSED) === 0;
        if (length > bs) throw this.fail(`block ${i} of ${length} bytes is larger than the block size`, ino.at);
        if (!compressed && length !== size) throw this.fail(`uncompressed block ${i} is ${length} bytes, not ${size}`, ino.at);
        if (offset + length > sb.bytesUsed) throw this.fail(`data block ${i} (at ${offset}) extends past the image`, ino.at);
        blocks.push({ offset, length, compressed, size });
        offset += length;
      }
    }
    if (ino.fragment === NO_FRAGMENT) return { blocks };
    const tail = ino.size % bs;
    const f = this.fragmentEntry(ino.fragment!, ino.at);
    const start = ino.fragmentOffset!;
    if (start + tail > bs) throw this.fail(`fragment offset ${start} + ${tail} is past the block size`, ino.at);
    return { blocks, fragment: { index: ino.fragment!, ...f, start, size: tail } };
  }

  // ---- directories ----------------------------------------------------------------------------

  /** The entries of a directory inode: name and where their inode is. */
  private *listing(dir: Inode): Generator<{ name: Uint8Array; type: number; block: number; offset: number; number: number; at: number }> {
    const size = dir.size;
    if (size < 3) throw this.fail(`directory listing size ${size} is less than 3`, dir.at);
    let left = size - 3;
    if (left === 0) return;
    const at = this.superblock.directoryTableStart + dir.dirBlock!;
    if (at >= this.dirRegion.end) throw this.fail('directory listing is past the directory table', dir.at);
    const pos: Cursor = { block: at, offset: dir.dirOffset! };
    const take = (n: number, what: string): Fields => {
      if (n > left) throw this.fail(`${what} overruns the directory listing`, pos.block);
      left -= n;
      return view(this.meta(this.dirRegion, pos, n, what));
    };
    while (left > 0) {
      const hAt = pos.block;
      const h = take(12, 'directory header');
      const count = h.getUint32(0, true) + 1;
      const block = h.getUint32(4, true);
      const base = h.getUint32(8, true);
      if (count > DIR_HEADER_MAX_COUNT) throw this.fail(`directory header with ${count} entries (at most ${DIR_HEADER_MAX_COUNT})`, hAt);
      for (let i = 0; i < count; i++) {
        const eAt = pos.block;
        const e = take(8, 'directory entry');
        const offset = e.getUint16(0, true);
        const delta = e.getInt16(2, true);
        const type = e.getUint16(4, true);
        const nameSize = e.getUint16(6, true) + 1;
        if (nameSize > NAME_MAX) throw this.fail(`directory entry name of ${nameSize} bytes (at most ${NAME_MAX})`, eAt);
        if (nameSize > left) throw this.fail('directory entry name overruns the directory listing', eAt);
        left -= nameSize;
        const name = new Uint8Array(this.meta(this.dirRegion, pos, nameSize, 'directory entry name'));
        yield { name, type, block, offset, number: base + delta, at: eAt };
      }
    }
  }

  // ---- the walk ---------------------------------------------------------------------------------

  private entry(path: string, ino: Inode): SquashEntry {
    const type = itemAt(TYPE_NAME, ino.type - 1);
    const e: SquashEntry = {
      path,
      type,
      mode: TYPE_MODE[type] | ino.perm,
      uid: ino.uid,
      gid: ino.gid,
      mtime: ino.mtime,
      inode: ino.number,
      nlink: ino.nlink,
      size: ino.size,
    };
    if (ino.target !== undefined) e.target = ino.target;
    if (ino.rdev !== undefined) e.rdev = { major: (ino.rdev >>> 8) & 0xfff, minor: (ino.rdev & 0xff) | ((ino.rdev >>> 12) & 0xfff00) };
    if (ino.type === INODE.file) {
      const { blocks, fragment } = this.fileLayout(ino);
      e.blocks = blocks;
      const ranges: ImageRange[] = blocks.filter((b) => b.length > 0).map((b) => ({ offset: b.offset, length: b.length, compressed: b.compressed, kind: 'block' }));
      if (fragment !== undefined) {
        e.fragment = fragment;
        ranges.push({ offset: fragment.offset, length: fragment.length, compressed: fragment.compressed, kind: 'fragment' });
      }
      e.ranges = ranges;
    }
    return e;
  }

  /** The root directory's inode reference from the superblock. */
  private rootInode(): Inode {
    const ref = this.superblock.rootInode;
    const block = ref >> 16n;
    if (block > BigInt(this.superblock.bytesUsed)) throw this.fail(`root inode reference ${ref} is past the inode table`, SB.rootInode);
    const ino = this.inode(Number(block), Number(ref & 0xffffn));
    if (ino.type !== INODE.dir) throw this.fail('the root inode is not a directory', ino.at);
    return ino;
  }

  /**
   * Every entry, depth first in directory order (as `unsquashfs -l` lists them), the root first.
   * Each call walks anew; the walk is lazy.
   */
  *entries(): Generator<SquashEntry> {
    const root = this.rootInode();
    // Directories seen, by inode number and by reference: either seen twice is a loop (or a
    // directory with two names, which squashfs cannot have either).
    const visited = new Set<number>([root.number]);
    const refs = new Set<bigint>([refKey(this.superblock.rootInode >> 16n, this.superblock.rootInode & 0xffffn)]);
    let count = 1;
    yield this.entry('.', root);
    const stack: { prefix: string; it: Iterator<{ name: Uint8Array; type: number; block: number; offset: number; number: number; at: number }>; names: Set<string> }[] = [
      { prefix: '', it: this.listing(root), names: new Set() },
    ];
    while (stack.length > 0) {
      const top = itemAt(stack, stack.length - 1);
      const r = top.it.next();
      if (r.done) {
        stack.pop();
        continue;
      }
      const d = r.value;
      const name = checkName(d.name, (why) => this.fail(why, d.at));
      if (top.names.has(name)) throw this.fail(`duplicate name ${JSON.stringify(name)} in a directory`, d.at);
      top.names.add(name);
      if (++count > this.limits.maxEntries) throw this.fail(`more than ${this.limits.maxEntries} entries (budget exceeded)`, d.at);
      if (d.type < INODE.dir || d.type > INODE.socket) throw this.fail(`bad directory entry type ${d.type}`, d.at);
      const ino = this.inode(d.block, d.offset);
      if (ino.type !== d.type) throw this.fail(`directory entry type ${d.type} does not match its inode's type ${ino.type}`, d.at);
      if (ino.number !== d.number) throw this.fail(`directory entry inode number ${d.number} does not match its inode's ${ino.number}`, d.at);
      const path = top.prefix + name;
      if (stack.length > this.limits.maxDepth) throw this.fail(`entries nested deeper than ${this.limits.maxDepth} (budget exceeded)`, d.at);
      if (ino.type === INODE.dir) {
        const k = refKey(BigInt(d.block), BigInt(d.offset));
        if (visited.has(ino.number) || refs.has(k)) throw this.fail(`directory loop: ${JSON.stringify(path)} is a directory already visited`, d.at);
        visited.add(ino.number);
        refs.add(k);
      }
      yield this.entry(path, ino);
      if (ino.type === INODE.dir) stack.push({ prefix: path + '/', it: this.listing(ino), names: new Set() });
    }
  }

  // ---- file data --------------------------------------------------------------------------------

  /** A regular file's contents, block by block (sparse runs as zeros, in pieces of a block). */
  *readFile(entry: SquashEntry): Generator<Uint8Array> {
    if (entry.type !== 'file' || entry.blocks === undefined) throw new TypeError(`readFile: ${entry.path} is not a regular file`);
    const bs = this.superblock.blockSize;
    for (const b of entry.blocks) {
      if (b.length === 0) {
        for (let left = b.size; left > 0; left -= bs) yield new Uint8Array(Math.min(bs, left));
        continue;
      }
      const raw = this.bytes(b.offset, b.length, 'data block', this.superblock.bytesUsed);
      const data = b.compressed ? this.decompress(raw, bs, 'data block', b.offset) : raw;
      if (data.length !== b.size) throw this.fail(`data block holds ${data.length} bytes, not ${b.size}`, b.offset);
      yield data;
    }
    const f = entry.fragment;
    if (f !== undefined) {
      const block = this.fragmentBlock(f);
      if (f.start + f.size > block.length) throw this.fail(`fragment ${f.index} holds ${block.length} bytes, too few for ${f.start}+${f.size}`, f.offset);
      yield block.slice(f.start, f.start + f.size);
    }
  }

  /** Reads a whole file into memory (small files; tests). */
  readFileBytes(entry: SquashEntry): Uint8Array {
    const parts = [...this.readFile(entry)];
    return Buffer.concat(parts);
  }

  private fragmentBlock(f: SquashFragment): Uint8Array {
    const hit = this.fragmentCache.get(f.offset);
    if (hit !== undefined) return hit;
    const raw = this.bytes(f.offset, f.length, 'fragment block', this.superblock.bytesUsed);
    const data = f.compressed ? this.decompress(raw, this.superblock.blockSize, 'fragment block', f.offset) : raw.slice();
    if (this.fragmentCache.size >= 4) this.fragmentCache.delete(this.fragmentCache.keys().next().value as number);
    this.fragmentCache.set(f.offset, data);
    return data;
  }

  // ---- locate ---------------------------------------------------------------------------------

  /**
   * What the byte at `offset` belongs to. The first call walks the whole image (all budgets
   * apply) to find every file's blocks; later calls are a binary search.
   */
  locate(offset: number): Owner {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= this.src.size) throw new RangeError(`locate: offset ${offset} is outside the image (${this.src.size} bytes)`);
    const { list, maxEnd } = (this.intervals ??= this.buildIntervals());
    // Last interval starting at or before offset, then back while one could still contain it.
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (itemAt(list, mid).start <= offset) lo = mid + 1;
      else hi = mid;
    }
    let best: Interval | undefined;
    for (let i = lo - 1; i >= 0 && itemAt(maxEnd, i) > offset; i--) {
      const iv = itemAt(list, i);
      // The innermost (latest starting, then shortest) interval wins: a file block inside a table's span.
      if (iv.end > offset && (best === undefined || iv.end - iv.start < best.end - best.start)) best = iv;
    }
    if (best === undefined) {
      const sb = this.superblock;
      return offset >= sb.bytesUsed ? { kind: 'padding', start: sb.bytesUsed, end: this.src.size } : { kind: 'unknown', start: offset, end: offset + 1 };
    }
    const o: Owner = { kind: best.kind, start: best.start, end: best.end };
    if (best.paths !== undefined) {
      o.paths = [...best.paths];
      o.path = itemAt(best.paths, 0);
    }
    if (best.block !== undefined) o.block = best.block;
    if (best.compressed !== undefined) o.compressed = best.compressed;
    if (best.tails !== undefined) {
      // A fragment block holds several files' tails: the byte belongs to the one whose range has
      // it (several, when mksquashfs shared a duplicate tail: the first of those). In a compressed
      // block a raw offset says nothing about which tail, so no file is named.
      delete o.path;
      if (best.compressed) {
        // Compressed: only a block that holds one file's tail (once or duplicated) can be named.
        if (new Set(best.tails.map((x) => x.path)).size === 1) o.path = itemAt(best.tails, 0).path;
      } else {
        const at = offset - best.start;
        const t = best.tails.find((x) => at >= x.start && at < x.start + x.size);
        if (t !== undefined) {
          o.path = t.path;
          o.offsetInFile = t.fileOffset + (at - t.start);
        }
      }
    }
    return o;
  }

  private buildIntervals(): { list: Interval[]; maxEnd: number[] } {
    const sb = this.superblock;
    const list: Interval[] = [{ start: 0, end: SUPERBLOCK_SIZE, kind: 'superblock' }];
    if (sb.flags & FLAGS.compressorOptions) {
      const h = view(this.bytes(SUPERBLOCK_SIZE, 2, 'compressor options header', sb.bytesUsed)).getUint16(0, true);
      const len = h & ~METADATA_UNCOMPRESSED;
      if (len === 0 || len > METADATA_SIZE || SUPERBLOCK_SIZE + 2 + len > sb.bytesUsed) throw this.fail(`bad compressor options block size ${len}`, SUPERBLOCK_SIZE);
      list.push({ start: SUPERBLOCK_SIZE, end: SUPERBLOCK_SIZE + 2 + len, kind: 'compressor-options' });
    }
    // Pointer tables: from their first metadata block to the end of the pointer array.
    const tables: Interval[] = [];
    const pointerTable = (start: number | undefined, count: number, perBlock: number, kind: OwnerKind, what: string, headerSize = 0): void => {
      if (start === undefined) return;
      const n = Math.ceil(count / perBlock);
      const end = start + headerSize + 8 * n;
      if (end > sb.bytesUsed) throw this.fail(`the ${what}'s pointers do not fit in the image`, start);
      let first = start;
      for (let i = 0; i < n; i++) first = Math.min(first, this.pointer(start + headerSize, i, what));
      tables.push({ start: first, end, kind });
    };
    pointerTable(sb.fragmentCount > 0 ? sb.fragmentTableStart : undefined, sb.fragmentCount, FRAGMENTS_PER_BLOCK, 'fragment-table', 'fragment table');
    if (sb.exportTableStart !== undefined) pointerTable(sb.exportTableStart, sb.inodeCount, EXPORTS_PER_BLOCK, 'export-table', 'export table');
    pointerTable(sb.idTableStart, sb.idCount, IDS_PER_BLOCK, 'id-table', 'id table');
    if (sb.xattrIdTableStart !== undefined) {
      const x = view(this.bytes(sb.xattrIdTableStart, 16, 'xattr id table header', sb.bytesUsed));
      const kvStart = x.getBigUint64(0, true);
      const ids = x.getUint32(8, true);
      if (kvStart < BigInt(SUPERBLOCK_SIZE) || kvStart > BigInt(sb.xattrIdTableStart)) throw this.fail(`xattr table start ${kvStart} is outside the image`, sb.xattrIdTableStart);
      const n = Math.ceil(ids / XATTR_IDS_PER_BLOCK);
      const end = sb.xattrIdTableStart + 16 + 8 * n;
      if (end > sb.bytesUsed) throw this.fail("the xattr id table's pointers do not fit in the image", sb.xattrIdTableStart);
      tables.push({ start: Number(kvStart), end, kind: 'xattr-table' });
    }
    list.push({ start: sb.inodeTableStart, end: sb.directoryTableStart, kind: 'inode-table' });
    const dirEnd = Math.min(sb.bytesUsed, ...tables.map((t) => t.start).filter((s) => s >= sb.directoryTableStart));
    list.push({ start: sb.directoryTableStart, end: dirEnd, kind: 'directory-table' }, ...tables);
    // File data.
    const blocks = new Map<number, Interval>();
    const fragments = new Map<number, Interval>();
    for (const e of this.entries()) {
      if (e.blocks !== undefined) {
        let i = 0;
        for (const b of e.blocks) {
          if (b.length > 0) {
            const iv = blocks.get(b.offset);
            if (iv === undefined) blocks.set(b.offset, { start: b.offset, end: b.offset + b.length, kind: 'file-block', paths: [e.path], block: i, compressed: b.compressed });
            else if (iv.paths!.length < 1000) iv.paths!.push(e.path);
          }
          i += Math.max(1, Math.ceil(b.size / sb.blockSize));
        }
      }
      if (e.fragment !== undefined) {
        const f = e.fragment;
        const tail: FragmentTail = { path: e.path, start: f.start, size: f.size, fileOffset: e.size - f.size };
        const iv = fragments.get(f.offset);
        if (iv === undefined) fragments.set(f.offset, { start: f.offset, end: f.offset + f.length, kind: 'fragment-block', paths: [e.path], tails: [tail], compressed: f.compressed });
        else if (iv.paths!.length < 100_000) {
          iv.paths!.push(e.path);
          iv.tails!.push(tail);
        }
      }
    }
    list.push(...blocks.values(), ...fragments.values());
    list.sort((a, b) => a.start - b.start || b.end - a.end);
    const maxEnd: number[] = [];
    let m = 0;
    for (const iv of list) maxEnd.push((m = Math.max(m, iv.end)));
    return { list, maxEnd };
  }
}

// ---------------------------------------------------------------------------------------------

/** An inode reference, as the 64-bit value squashfs packs it in. */
function refKey(block: bigint, offset: bigint): bigint {
  return (block << 16n) | offset;
}

/**
 * Little-endian fields of a byte array, with DataView's method names: cheaper than a DataView per
 * record in a walk of many inodes. Reads past the end throw RangeError, which the callers prevent.
 */
class Fields {
  constructor(private readonly b: Uint8Array) {}
  private at(o: number, n: number): number {
    if (o < 0 || o + n > this.b.length) throw new RangeError(`field at ${o} is outside ${this.b.length} bytes`);
    return o;
  }
  getUint8(o: number): number {
    return bytes.u8(this.b, this.at(o, 1));
  }
  getUint16(o: number, littleEndian = false): number {
    const i = this.at(o, 2);
    return littleEndian ? bytes.le16(this.b, i) : bytes.be16(this.b, i);
  }
  getInt16(o: number, littleEndian = false): number {
    return (this.getUint16(o, littleEndian) << 16) >> 16;
  }
  getUint32(o: number, littleEndian = false): number {
    const i = this.at(o, 4);
    return littleEndian ? bytes.le32(this.b, i) : bytes.be32(this.b, i);
  }
  getBigUint64(o: number, littleEndian = false): bigint {
    const lo = this.getUint32(littleEndian ? o : o + 4, littleEndian);
    const hi = this.getUint32(littleEndian ? o + 4 : o, littleEndian);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }
}

function view(b: Uint8Array): Fields {
  return new Fields(b);
}

/** A directory entry name: not empty, no "/" or NUL, not "." or "..". Decoded as UTF-8. */
function checkName(name: Uint8Array, fail: (why: string) => NixSealError): string {
  if (name.includes(0x2f) || name.includes(0)) throw fail(`directory entry name ${JSON.stringify(utf8.decode(name))} contains "/" or NUL`);
  const s = utf8.decode(name);
  if (s === '.' || s === '..') throw fail(`directory entry named ${JSON.stringify(s)}`);
  return s;
}

// ---------------------------------------------------------------------------------------------
// The image view (formats/image.ts) of a squashfs image

const S_IXUSR = 0o100;

function squashfsView(sq: Squashfs, src: ByteSource): ImageView {
  // One walk, kept: entries() is asked for more than once (store entries, registrations, NARs).
  let list: { inner: InnerEntry[]; byPath: Map<string, SquashEntry> } | undefined;
  const walk = (): { inner: InnerEntry[]; byPath: Map<string, SquashEntry> } => {
    if (list !== undefined) return list;
    const inner: InnerEntry[] = [];
    const byPath = new Map<string, SquashEntry>();
    for (const e of sq.entries()) {
      const path = e.path === '.' ? '' : e.path;
      const type: InnerEntry['type'] = e.type === 'directory' ? 'dir' : e.type === 'file' ? 'file' : e.type === 'symlink' ? 'symlink' : 'special';
      const r: InnerEntry = { path, type, size: e.size };
      if (type === 'file') {
        r.executable = (e.mode & S_IXUSR) !== 0;
        byPath.set(path, e);
      }
      if (e.target !== undefined) r.target = e.target;
      inner.push(r);
    }
    return (list = { inner, byPath });
  };
  const entryOf = (entry: InnerEntry): SquashEntry => {
    const e = walk().byPath.get(entry.path);
    if (e === undefined) throw new NixSealError('EUSAGE', `Cannot read ${entry.path} in the squashfs: no such file`, { path: entry.path });
    return e;
  };
  return {
    kind: 'squashfs',
    description: `squashfs (${sq.superblock.compression})`,
    source: src,
    entries() {
      return walk().inner;
    },
    read(entry) {
      return sq.readFile(entryOf(entry));
    },
    fileSource() {
      // File data is in compressed blocks: no random access without decompressing.
      return undefined;
    },
    locate(offset) {
      const o = sq.locate(offset);
      if (o.kind === 'file-block' && o.path !== undefined) {
        const r = { path: o.path, what: `data of ${o.path}${o.compressed ? ' (compressed block)' : ''}` } as { path: string; what: string; offsetInFile?: number };
        // Only an uncompressed block keeps the file's bytes as they are: then the offset in the file is exact.
        if (!o.compressed && o.block !== undefined) r.offsetInFile = o.block * sq.superblock.blockSize + (offset - o.start);
        return r;
      }
      if (o.kind === 'fragment-block') {
        if (o.path !== undefined) {
          const r = { path: o.path, what: `fragment of ${o.path}` } as { path: string; what: string; offsetInFile?: number };
          if (o.offsetInFile !== undefined) r.offsetInFile = o.offsetInFile;
          return r;
        }
        const n = o.paths?.length ?? 0;
        return { what: `${o.compressed ? 'compressed ' : ''}fragment block shared by ${n} file${n === 1 ? '' : 's'}${o.compressed ? '' : ' (in no file\'s tail)'}` };
      }
      return { what: `squashfs ${o.kind.replace(/-/g, ' ')}` };
    },
  };
}

const MIN_BLOCK_LOG = 12;
const MAX_BLOCK_LOG = 20;

/**
 * squashfs 4.0 from the file's first bytes (`head`, of a file of `size` bytes): "hsqs", version
 * 4.0, a block size of 4 KiB…1 MiB matching its log, a known compressor, bytes_used inside the
 * file. The magic with a broken superblock is a near miss.
 */
export function detectSquashfs(head: Uint8Array, size: number): Verdict {
  if (head.length < SUPERBLOCK_SIZE || bytes.le32(head, SB.magic) !== SQUASHFS_MAGIC) return undefined;
  const blockSize = bytes.le32(head, SB.blockSize);
  const blockLog = bytes.le16(head, SB.blockLog);
  const compressor = SQUASHFS_COMPRESSION[bytes.le16(head, SB.compression)];
  const bytesUsed = bytes.le64(head, SB.bytesUsed);
  const nearMiss = (why: string): Verdict => ({ format: 'squashfs', offset: 0, nearMiss: why });
  if (bytes.le16(head, SB.versionMajor) !== 4 || bytes.le16(head, SB.versionMinor) !== 0) return nearMiss('not version 4.0');
  if (blockLog < MIN_BLOCK_LOG || blockLog > MAX_BLOCK_LOG || blockSize !== 2 ** blockLog) return nearMiss('a bad block size');
  if (!compressor) return nearMiss('an unknown compressor');
  if (bytesUsed < SUPERBLOCK_SIZE || bytesUsed > size) return nearMiss('bytes_used outside the file');
  return { format: 'squashfs', offset: 0, why: `squashfs 4.0 superblock, ${compressor}, ${blockSize / 1024} KiB blocks, ${bytes.le32(head, SB.inodeCount)} inodes` };
}

/** squashfs: detectSquashfs (a near miss too: the reader reports what is broken). */
export const squashfsReader: ImageReader = {
  kind: 'squashfs',
  detect: (src) => detectSquashfs(headOf(src), src.size) !== undefined,
  open(src, name) {
    return squashfsView(openSquashfs(src, name), src);
  },
};
