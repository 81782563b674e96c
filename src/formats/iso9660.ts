/**
 * ISO 9660 images (installer and live images as xorriso/libisofs and genisoimage write them), read
 * as hostile input: the volume descriptors from sector 16, the directory hierarchy from the root
 * record (what Linux and xorriso use; path tables are only located), multi-extent files, Rock
 * Ridge (SUSP, CE chains, NM, SL, PX, CL/RE relocation), Joliet names, the El Torito catalog.
 * Names as xorriso and Linux show them: Rock Ridge, else Joliet, else the identifier without
 * ";1". Every offset is checked before it is read, loops and budgets are errors: EFORMAT "Cannot
 * read <image>: <why> at offset N". Not read: interleaved files (refused), associated files,
 * zisofs (compressed bytes returned), sessions after the first.
 */
import { closeSync, openSync } from 'node:fs';
import { f64At, itemAt, u8At } from '../checked-index.js';
import { NixSealError, describeSystemError } from '../errors.js';

export { BufferSource, FdSource, type ByteSource } from './byte-source.js';
import { FdSource, windowSource, type ByteSource } from './byte-source.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type ImageReader, type ImageView, type InnerEntry } from './image.js';
import * as bytes from './bytes.js';
import type { Verdict } from './detection.js';

// ---------------------------------------------------------------------------------------------
// Layout

/** A CD sector, the unit of volume descriptors, directory record packing and El Torito LBAs. */
export const SECTOR_SIZE = 2048;
/** Sectors 0-15: the system area (MBR, GPT, isohybrid boot code…), not interpreted. */
export const SYSTEM_AREA_SIZE = 16 * SECTOR_SIZE;
export const ISO_STANDARD_ID = 'CD001';

export const VD_TYPE = { bootRecord: 0, primary: 1, supplementary: 2, partition: 3, terminator: 255 } as const;

/** Byte offsets within a volume descriptor (ECMA-119 8.4, 8.5; El Torito 2.0 for the boot record). */
export const VD_FIELD = {
  type: 0,
  standardId: 1, // "CD001"
  version: 6,
  flags: 7, // supplementary: bit 0 = escape sequences not only ISO 2375
  bootSystemId: 7, // boot record: "EL TORITO SPECIFICATION", 32 bytes
  volumeId: 40, // 32 bytes
  bootCatalogLba: 71, // boot record: LE 32
  volumeSpaceSize: 80, // both-endian 32
  escapeSequences: 88, // supplementary: 32 bytes
  logicalBlockSize: 128, // both-endian 16
  pathTableSize: 132, // both-endian 32
  lPathTable: 140, // LE 32
  lPathTableOptional: 144, // LE 32
  mPathTable: 148, // BE 32
  mPathTableOptional: 152, // BE 32
  rootDirectoryRecord: 156, // 34 bytes
} as const;

export const EL_TORITO_SYSTEM_ID = 'EL TORITO SPECIFICATION';
/** Joliet's escape sequences for UCS-2 levels 1, 2 and 3. */
export const JOLIET_ESCAPES = ['%/@', '%/C', '%/E'] as const;

/** Byte offsets within a directory record (ECMA-119 9.1). Both-endian fields are read little-endian. */
export const DR_FIELD = {
  length: 0,
  extAttrLength: 1,
  extent: 2, // both-endian 32: logical block number
  dataLength: 10, // both-endian 32
  recordingDate: 18, // 7 bytes
  flags: 25,
  fileUnitSize: 26,
  interleaveGap: 27,
  volumeSequence: 28, // both-endian 16
  nameLength: 32,
  name: 33,
} as const;

export const DR_FLAG = { hidden: 0x01, directory: 0x02, associated: 0x04, record: 0x08, protection: 0x10, multiExtent: 0x80 } as const;

/** El Torito catalog entries are 32 bytes. */
export const BOOT_ENTRY_SIZE = 32;
/** Emulated media sizes by media type (1.2M, 1.44M, 2.88M floppies). */
const FLOPPY_SIZE: Readonly<Record<number, number>> = { 1: 1_228_800, 2: 1_474_560, 3: 2_949_120 };

/** Rock Ridge ER identifiers (RRIP 1.10, 1.12 draft and final). */
const RRIP_IDS = new Set(['RRIP_1991A', 'IEEE_P1282', 'IEEE_1282']);

/** Mode of everything on an image without Rock Ridge, as xorriso and Linux (mode=, dmode= unset) show it. */
const DEFAULT_PERMISSIONS = 0o555;

// ---------------------------------------------------------------------------------------------
// Public types

export interface IsoExtent {
  /** Byte offset in the image. */
  offset: number;
  length: number;
}

export interface IsoEntry {
  /** Absolute path inside the image: "/" for the root, "/a/b" below it. */
  path: string;
  /** Last component ("" for the root). */
  name: string;
  /** 'special' is a Rock Ridge device, fifo or socket (PX file type), never on xorriso images of Nix stores. */
  type: 'file' | 'dir' | 'symlink' | 'special';
  /** Full st_mode: file type bits and permissions. */
  mode: number;
  /** Bytes of data (for a directory the size of its records). Symlinks: 0, as on the image. */
  size: number;
  /** Where the data is, in order; no zero-length extents (an empty file has none). */
  extents: IsoExtent[];
  /** A symlink's target. */
  target?: string;
  /** Offset of the (first) directory record. */
  recordOffset: number;
}

export type VolumeDescriptorType = 'boot-record' | 'primary' | 'supplementary' | 'joliet' | 'enhanced' | 'partition' | 'terminator' | 'reserved';

export interface VolumeDescriptor {
  type: VolumeDescriptorType;
  /** The type byte. */
  code: number;
  offset: number;
}

export interface BootEntry {
  /** 0 x86, 1 PowerPC, 2 Mac, 0xEF EFI: from the validation entry or the section header. */
  platform: number;
  bootable: boolean;
  /** 0 no emulation, 1-3 floppies, 4 hard disk. */
  mediaType: number;
  loadSegment: number;
  systemType: number;
  /** Virtual 512-byte sectors loaded by the BIOS (field "sector count"). */
  sectorCount: number;
  /** Start of the image, in 2048-byte sectors. */
  lba: number;
  offset: number;
  /** The bytes the entry describes: the floppy size, else sectorCount × 512 (at least 512). */
  length: number;
  /** Offset of the 32-byte catalog entry. */
  entryOffset: number;
}

export interface BootCatalog {
  offset: number;
  /** Up to the end of the last entry read. */
  length: number;
  entries: BootEntry[];
}

/**
 * Who holds a byte of the image. Structures come before file data (a file extent overlapping a
 * directory is reported as the directory), and a boot image that is also a file in the tree is
 * reported as the file (iso.bootCatalog lists the boot images).
 */
export type Owner =
  | { kind: 'file'; path: string; offsetInFile: number }
  /** `entryName` is "." or ".." for those records, and "" for the padding of a directory extent after its last record in a sector. `tree` says which hierarchy the directory is in. */
  | { kind: 'dirrecord'; dir: string; entryName: string; tree: TreeKind }
  | { kind: 'volume-descriptor'; type: VolumeDescriptorType }
  | { kind: 'boot-catalog' }
  | { kind: 'boot-image' }
  | { kind: 'system-area' }
  | { kind: 'path-table' }
  | { kind: 'continuation-area' }
  | { kind: 'unallocated' };

export type TreeKind = 'iso9660' | 'joliet' | 'supplementary' | 'enhanced';

export interface IsoLimits {
  /** Directory records per hierarchy (the "." and ".." records not counted). */
  maxEntries: number;
  /** Directory levels below the root. */
  maxDepth: number;
  /** Continuation areas followed for one directory record. */
  maxContinuations: number;
  /** Volume descriptors before the terminator. */
  maxVolumeDescriptors: number;
  /** Boot catalog entries. */
  maxBootEntries: number;
  /** Bytes of a Rock Ridge name, and of a symlink target. */
  maxNameBytes: number;
  maxTargetBytes: number;
}

export const DEFAULT_LIMITS: Readonly<IsoLimits> = {
  maxEntries: 1_000_000,
  maxDepth: 64,
  maxContinuations: 32, // Linux's RR_MAX_CE_ENTRIES
  maxVolumeDescriptors: 64,
  maxBootEntries: 1024,
  maxNameBytes: 1023,
  maxTargetBytes: 4095,
};

// ---------------------------------------------------------------------------------------------
// Decoding helpers

type Fail = (why: string, offset: number) => NixSealError;

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
const le16 = (b: Uint8Array, at: number): number => view(b).getUint16(at, true);
const le32 = (b: Uint8Array, at: number): number => view(b).getUint32(at, true);
const be32 = (b: Uint8Array, at: number): number => view(b).getUint32(at, false);
const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');
const utf8 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('utf8');

function ucs2be(b: Uint8Array): string {
  const n = b.length - (b.length % 2);
  return Buffer.from(b.subarray(0, n)).swap16().toString('utf16le');
}

/** One directory record. */
export class DirRecord {
  constructor(
    /** Offset of the record in the image. */
    readonly offset: number,
    readonly length: number,
    readonly extAttrLength: number,
    /** Logical block of the extent (the extended attribute record, if any, comes first). */
    readonly extent: number,
    readonly dataLength: number,
    readonly flags: number,
    readonly fileUnitSize: number,
    readonly interleaveGap: number,
    readonly nameBytes: Uint8Array,
    /** The System Use field (after the name and its padding byte). */
    readonly systemUse: Uint8Array,
    /** Offset of the System Use field in the image. */
    readonly systemUseOffset: number,
  ) {}

  get isDirectory(): boolean {
    return (this.flags & DR_FLAG.directory) !== 0;
  }
  /** The "." (0x00) and ".." (0x01) records. */
  get isDot(): boolean {
    return this.nameBytes.length === 1 && this.nameBytes[0] === 0;
  }
  get isDotDot(): boolean {
    return this.nameBytes.length === 1 && this.nameBytes[0] === 1;
  }

  /**
   * Parses the record at `at` in `bytes` (which must hold all of it: the caller passes the rest of
   * the sector). `offset` is where `bytes[at]` is in the image.
   */
  static decode(bytes: Uint8Array, at: number, offset: number, fail: Fail): DirRecord {
    const avail = bytes.length - at;
    if (avail < 1) throw fail('truncated directory record', offset);
    const length = u8At(bytes, at);
    if (length < DR_FIELD.name + 1) throw fail(`directory record of ${length} bytes (less than 34)`, offset);
    if (length > avail) throw fail(`directory record of ${length} bytes crosses the end of its sector or extent`, offset);
    const r = bytes.subarray(at, at + length);
    const nameLength = u8At(r, DR_FIELD.nameLength);
    if (nameLength === 0) throw fail('directory record with an empty name', offset);
    if (DR_FIELD.name + nameLength > length) throw fail(`name of ${nameLength} bytes does not fit in a ${length}-byte directory record`, offset);
    const suStart = Math.min(length, DR_FIELD.name + nameLength + (nameLength % 2 === 0 ? 1 : 0));
    return new DirRecord(
      offset,
      length,
      u8At(r, DR_FIELD.extAttrLength),
      le32(r, DR_FIELD.extent),
      le32(r, DR_FIELD.dataLength),
      u8At(r, DR_FIELD.flags),
      u8At(r, DR_FIELD.fileUnitSize),
      u8At(r, DR_FIELD.interleaveGap),
      r.subarray(DR_FIELD.name, DR_FIELD.name + nameLength),
      r.subarray(suStart, length),
      offset + suStart,
    );
  }
}

/** What the System Use entries of one directory record say (Rock Ridge). */
interface RockRidge {
  name?: Uint8Array;
  nameContinues: boolean;
  mode?: number;
  target?: string;
  targetParts?: SymlinkParts;
  /** CL: the directory is really at this logical block. */
  childLink?: number;
  /** RE: this record is a relocated directory in its holding place, not listed. */
  relocated: boolean;
  /** Offset of the first SUSP entry seen for error messages about the record's Rock Ridge data. */
  firstEntryOffset?: number;
  // Seen in the root "." record (RRIP detection):
  rripEr: boolean;
  anyEr: boolean;
  rr: boolean;
}

/** A symlink target being assembled from SL components. */
class SymlinkParts {
  private out = '';
  /** The last component had CONTINUE: the next one is glued to it. */
  private glue = false;
  /** The last SL entry had CONTINUE. */
  entryContinues = false;

  add(text: string, isRoot: boolean, continues: boolean): void {
    if (isRoot) {
      this.out += '/';
    } else {
      if (!this.glue && this.out !== '' && !this.out.endsWith('/')) this.out += '/';
      this.out += text;
    }
    this.glue = continues;
  }
  get text(): string {
    return this.out;
  }
}

// ---------------------------------------------------------------------------------------------
// Locate index

/** Owner precedence in locate(): lower wins where extents overlap. */
const PRIORITY = {
  systemArea: 0,
  volumeDescriptor: 1,
  bootCatalog: 2,
  pathTable: 3,
  continuationArea: 4,
  dirRecord: 5,
  dirPadding: 6,
  file: 7,
  otherTreeFile: 8,
  bootImage: 9,
} as const;

interface Interval {
  start: number;
  end: number;
  priority: number;
  seq: number;
  owner: Owner;
  /** For file extents: the file offset of `start`. */
  fileBase: number;
}

/** A binary min-heap of intervals by (priority, seq). */
class IntervalHeap {
  private a: Interval[] = [];
  get size(): number {
    return this.a.length;
  }
  top(): Interval | undefined {
    return this.a[0];
  }
  private less(x: Interval, y: Interval): boolean {
    return x.priority < y.priority || (x.priority === y.priority && x.seq < y.seq);
  }
  push(v: Interval): void {
    const a = this.a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const [ai, ap] = [itemAt(a, i), itemAt(a, p)];
      if (!this.less(ai, ap)) break;
      [a[i], a[p]] = [ap, ai];
      i = p;
    }
  }
  pop(): void {
    const a = this.a;
    const last = a.pop()!;
    if (a.length === 0) return;
    a[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.less(itemAt(a, l), itemAt(a, m))) m = l;
      if (r < a.length && this.less(itemAt(a, r), itemAt(a, m))) m = r;
      if (m === i) break;
      [a[i], a[m]] = [itemAt(a, m), itemAt(a, i)];
      i = m;
    }
  }
}

/** Disjoint segments, each with the winning interval, sorted by start. */
class SegmentIndex {
  private readonly starts: Float64Array;
  private readonly ends: Float64Array;
  private readonly owners: Interval[];

  constructor(intervals: Interval[]) {
    const live = intervals.filter((i) => i.end > i.start).sort((x, y) => x.start - y.start);
    const bounds = new Float64Array(live.length * 2);
    live.forEach((iv, k) => {
      bounds[2 * k] = iv.start;
      bounds[2 * k + 1] = iv.end;
    });
    bounds.sort();
    const starts: number[] = [];
    const ends: number[] = [];
    const owners: Interval[] = [];
    const heap = new IntervalHeap();
    let next = 0;
    for (let k = 0; k < bounds.length; k++) {
      const b = f64At(bounds, k);
      if (k > 0 && b === bounds[k - 1]) continue;
      while (next < live.length && itemAt(live, next).start <= b) heap.push(itemAt(live, next++));
      while (heap.size > 0 && heap.top()!.end <= b) heap.pop();
      const top = heap.top();
      if (top === undefined) continue;
      let e = k + 1;
      while (e < bounds.length && bounds[e] === b) e++;
      const segEnd = bounds[e];
      if (segEnd === undefined) break;
      const last = owners.length - 1;
      if (last >= 0 && owners[last] === top && ends[last] === b) ends[last] = segEnd;
      else {
        starts.push(b);
        ends.push(segEnd);
        owners.push(top);
      }
    }
    this.starts = Float64Array.from(starts);
    this.ends = Float64Array.from(ends);
    this.owners = owners;
  }

  get segments(): number {
    return this.owners.length;
  }

  find(offset: number): Owner {
    let lo = 0;
    let hi = this.starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (f64At(this.starts, mid) <= offset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0 || offset >= f64At(this.ends, found)) return { kind: 'unallocated' };
    const iv = itemAt(this.owners, found);
    if (iv.owner.kind === 'file') return { kind: 'file', path: iv.owner.path, offsetInFile: iv.fileBase + (offset - iv.start) };
    return { ...iv.owner };
  }
}

// ---------------------------------------------------------------------------------------------
// The reader

interface Tree {
  kind: TreeKind;
  root: DirRecord;
  /** Whether names are UCS-2 (Joliet). */
  ucs2: boolean;
  /** Rock Ridge in use in this tree (only the primary hierarchy has it). */
  rockRidge?: RockRidgeUse;
  /** Is this the hierarchy entries() lists? */
  main: boolean;
}

/** LEN_SKP of the SP entry, and where SP is in the root's "." record (0, or 14 after CD-XA data). */
interface RockRidgeUse {
  skip: number;
  rootAt: number;
}

interface PendingDir {
  path: string;
  depth: number;
  start: number;
  length: number;
  /** The record that named it (for error offsets). */
  recordOffset: number;
}

const DIR_READ = 16 * SECTOR_SIZE;
const FILE_CHUNK = 1 << 20;

/**
 * An opened image. Volume descriptors and the boot catalog are read by openIso(); the directory
 * hierarchies are walked once, the first time entries() or locate() needs them.
 */
export class Iso {
  readonly size: number;
  readonly volumeDescriptors: VolumeDescriptor[] = [];
  /** Logical block size of the primary volume descriptor (2048 on every image in practice). */
  readonly blockSize: number;
  readonly volumeId: string;
  /** Volume space size of the primary descriptor, in bytes. */
  readonly volumeSize: number;
  /** Rock Ridge found in the primary hierarchy (SP in the root, and ER RRIP or RR). */
  readonly rockRidge: boolean;
  /** A Joliet supplementary descriptor is present. */
  readonly joliet: boolean;
  /** Which names entries() gives. */
  readonly names: 'rock-ridge' | 'joliet' | 'iso9660';
  readonly bootCatalog: BootCatalog | undefined;

  private readonly limits: IsoLimits;
  private readonly trees: Tree[] = [];
  private readonly intervals: Interval[] = [];
  private readonly seenContinuations = new Set<number>();
  private list: IsoEntry[] | undefined;
  /** A walk that failed fails the same way again, rather than half-indexing twice. */
  private walkError: unknown;
  /** Continuation areas followed in the hierarchy being walked. */
  private continuationsFollowed = 0;
  private index: SegmentIndex | undefined;
  private seq = 0;

  constructor(
    private readonly src: ByteSource,
    readonly name: string,
    limits: Partial<IsoLimits> = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    this.size = src.size;
    if (!Number.isSafeInteger(this.size) || this.size < 0) throw this.fail(`bad image size ${this.size}`, 0);
    if (this.size < SYSTEM_AREA_SIZE + SECTOR_SIZE) {
      throw this.fail(`too small for ISO 9660 (${this.size} bytes, no volume descriptor at sector 16)`, Math.min(this.size, SYSTEM_AREA_SIZE));
    }
    this.addInterval(0, SYSTEM_AREA_SIZE, PRIORITY.systemArea, { kind: 'system-area' });

    let primary: Uint8Array | undefined;
    let primaryOffset = 0;
    const supplementary: { bytes: Uint8Array; offset: number; kind: TreeKind }[] = [];
    let bootRecord: { bytes: Uint8Array; offset: number } | undefined;
    for (let i = 0; ; i++) {
      const offset = SYSTEM_AREA_SIZE + i * SECTOR_SIZE;
      if (i >= this.limits.maxVolumeDescriptors) throw this.fail(`no volume descriptor set terminator in the first ${i} descriptors`, offset);
      if (offset + SECTOR_SIZE > this.size) throw this.fail('the image ends before the volume descriptor set terminator', offset);
      const vd = this.bytes(offset, SECTOR_SIZE, 'volume descriptor');
      const id = latin1(vd.subarray(VD_FIELD.standardId, VD_FIELD.standardId + 5));
      if (id !== ISO_STANDARD_ID) {
        throw this.fail(i === 0 ? `not an ISO 9660 image (no "CD001" at sector 16)` : `bad volume descriptor (identifier ${JSON.stringify(id)}, no terminator before it)`, offset);
      }
      const code = u8At(vd, VD_FIELD.type);
      let type: VolumeDescriptorType;
      switch (code) {
        case VD_TYPE.bootRecord:
          type = 'boot-record';
          if (bootRecord === undefined) bootRecord = { bytes: vd, offset };
          break;
        case VD_TYPE.primary:
          type = 'primary';
          if (primary === undefined) {
            primary = vd;
            primaryOffset = offset;
          }
          break;
        case VD_TYPE.supplementary: {
          const esc = latin1(vd.subarray(VD_FIELD.escapeSequences, VD_FIELD.escapeSequences + 3));
          if (vd[VD_FIELD.version] === 2) type = 'enhanced';
          else if ((JOLIET_ESCAPES as readonly string[]).includes(esc)) type = 'joliet';
          else type = 'supplementary';
          supplementary.push({ bytes: vd, offset, kind: type === 'joliet' ? 'joliet' : type === 'enhanced' ? 'enhanced' : 'supplementary' });
          break;
        }
        case VD_TYPE.partition:
          type = 'partition';
          break;
        case VD_TYPE.terminator:
          type = 'terminator';
          break;
        default:
          type = 'reserved';
      }
      this.volumeDescriptors.push({ type, code, offset });
      this.addInterval(offset, offset + SECTOR_SIZE, PRIORITY.volumeDescriptor, { kind: 'volume-descriptor', type });
      if (code === VD_TYPE.terminator) break;
    }
    if (primary === undefined) throw this.fail('no primary volume descriptor', SYSTEM_AREA_SIZE);

    this.blockSize = this.checkBlockSize(primary, primaryOffset);
    this.volumeId = latin1(primary.subarray(VD_FIELD.volumeId, VD_FIELD.volumeId + 32)).replace(/[ \0]+$/, '');
    this.volumeSize = le32(primary, VD_FIELD.volumeSpaceSize) * this.blockSize;

    const primaryTree: Tree = { kind: 'iso9660', root: this.rootRecord(primary, primaryOffset), ucs2: false, main: false };
    this.addPathTables(primary, primaryOffset, this.blockSize);
    this.trees.push(primaryTree);
    for (const s of supplementary) {
      const bs = this.checkBlockSize(s.bytes, s.offset);
      this.addPathTables(s.bytes, s.offset, bs);
      if (bs !== this.blockSize) throw this.fail(`logical block size ${bs} differs from the primary descriptor's ${this.blockSize}`, s.offset + VD_FIELD.logicalBlockSize);
      this.trees.push({ kind: s.kind, root: this.rootRecord(s.bytes, s.offset), ucs2: s.kind === 'joliet', main: false });
    }

    const rr = this.detectRockRidge(primaryTree.root);
    this.rockRidge = rr !== undefined;
    this.joliet = supplementary.some((s) => s.kind === 'joliet');
    if (rr !== undefined) {
      primaryTree.rockRidge = rr;
      primaryTree.main = true;
      this.names = 'rock-ridge';
    } else if (this.joliet) {
      this.trees.find((t) => t.kind === 'joliet')!.main = true;
      this.names = 'joliet';
    } else {
      primaryTree.main = true;
      this.names = 'iso9660';
    }

    this.bootCatalog = bootRecord === undefined ? undefined : this.readBootCatalog(bootRecord.bytes, bootRecord.offset);
  }

  /** Every file, directory and symlink of the image, the root ("/") first, parents before children. */
  entries(): Iterable<IsoEntry> {
    return this.walk();
  }

  /** A file's data, in chunks of up to 1 MiB. */
  *readFile(entry: IsoEntry): Iterable<Uint8Array> {
    for (const e of entry.extents) {
      for (let at = 0; at < e.length; at += FILE_CHUNK) {
        yield this.bytes(e.offset + at, Math.min(FILE_CHUNK, e.length - at), `data of ${JSON.stringify(entry.path)}`);
      }
    }
  }

  /** What holds the byte at `offset` of the image. */
  locate(offset: number): Owner {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= this.size) {
      throw new NixSealError('EUSAGE', `Cannot locate offset ${offset} in ${this.name}: the image has ${this.size} bytes`, { path: this.name, offset });
    }
    if (this.index === undefined) {
      this.walk();
      this.index = new SegmentIndex(this.intervals);
      this.intervals.length = 0;
    }
    return this.index.find(offset);
  }

  // -------------------------------------------------------------------------------------------

  private fail(why: string, offset: number): NixSealError {
    return new NixSealError('EFORMAT', `Cannot read ${this.name}: ${why} at offset ${offset}`, { path: this.name, offset });
  }
  private readonly failFn: Fail = (why, offset) => this.fail(why, offset);

  /** `length` bytes at `offset`, after checking they are inside the image. */
  private bytes(offset: number, length: number, what: string, blame = offset): Uint8Array {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw this.fail(`bad position of ${what} (${offset}, ${length} bytes)`, blame);
    }
    if (offset + length > this.size) {
      throw this.fail(`${what} (${length} bytes at offset ${offset}) extends beyond the end of the image (${this.size} bytes)`, blame);
    }
    const b = this.src.read(offset, length);
    if (b.length !== length) throw new NixSealError('EIO', `Cannot read ${this.name}: short read at offset ${offset}`, { path: this.name, offset });
    return b;
  }

  /** Checks that an extent is inside the image; `blame` is the record that describes it. */
  private checkExtent(start: number, length: number, what: string, blame: number): void {
    if (length === 0) return;
    if (start + length > this.size) {
      throw this.fail(`${what} (${length} bytes at offset ${start}) extends beyond the end of the image (${this.size} bytes)`, blame);
    }
  }

  private addInterval(start: number, end: number, priority: number, owner: Owner, fileBase = 0): void {
    if (this.index !== undefined) return;
    this.intervals.push({ start, end: Math.min(end, this.size), priority, seq: this.seq++, owner, fileBase });
  }

  private checkBlockSize(vd: Uint8Array, offset: number): number {
    const bs = le16(vd, VD_FIELD.logicalBlockSize);
    if (bs !== 512 && bs !== 1024 && bs !== 2048) throw this.fail(`logical block size ${bs} (not 512, 1024 or 2048)`, offset + VD_FIELD.logicalBlockSize);
    return bs;
  }

  private rootRecord(vd: Uint8Array, vdOffset: number): DirRecord {
    const at = VD_FIELD.rootDirectoryRecord;
    const rec = DirRecord.decode(vd.subarray(at, at + 34), 0, vdOffset + at, this.failFn);
    if (!rec.isDirectory) throw this.fail('the root directory record is not a directory', vdOffset + at);
    return rec;
  }

  private addPathTables(vd: Uint8Array, vdOffset: number, bs: number): void {
    const size = le32(vd, VD_FIELD.pathTableSize);
    if (size === 0) return;
    const span = Math.ceil(size / bs) * bs;
    const tables: [number, number][] = [
      [le32(vd, VD_FIELD.lPathTable), VD_FIELD.lPathTable],
      [le32(vd, VD_FIELD.lPathTableOptional), VD_FIELD.lPathTableOptional],
      [be32(vd, VD_FIELD.mPathTable), VD_FIELD.mPathTable],
      [be32(vd, VD_FIELD.mPathTableOptional), VD_FIELD.mPathTableOptional],
    ];
    for (const [lba, field] of tables) {
      if (lba === 0) continue;
      const start = lba * bs;
      this.checkExtent(start, size, 'path table', vdOffset + field);
      this.addInterval(start, start + span, PRIORITY.pathTable, { kind: 'path-table' });
    }
  }

  /** Where a record's data starts: after its extended attribute record. */
  private dataStart(rec: DirRecord): number {
    return (rec.extent + rec.extAttrLength) * this.blockSize;
  }

  // --- Rock Ridge ------------------------------------------------------------------------------

  /** Reads the root's "." record and decides whether the primary hierarchy has Rock Ridge. */
  private detectRockRidge(root: DirRecord): RockRidgeUse | undefined {
    const start = this.dataStart(root);
    if (root.dataLength === 0) return undefined;
    this.checkExtent(start, root.dataLength, 'root directory', root.offset);
    const sector = this.bytes(start, Math.min(root.dataLength, SECTOR_SIZE - (start % SECTOR_SIZE)), 'root directory', root.offset);
    if (sector[0] === 0) return undefined;
    const dot = DirRecord.decode(sector, 0, start, this.failFn);
    if (!dot.isDot) return undefined;
    // SP is the first entry; at 14 after a CD-XA System Use header (as Linux also accepts).
    for (const at of [0, 14]) {
      const su = dot.systemUse;
      if (su.length >= at + 7 && su[at] === 0x53 && su[at + 1] === 0x50 && u8At(su, at + 2) >= 7 && su[at + 4] === 0xbe && su[at + 5] === 0xef) {
        const skip = u8At(su, at + 6);
        const info = this.readSusp(dot, at);
        if (info.rripEr || (!info.anyEr && (info.rr || info.mode !== undefined || info.name !== undefined))) return { skip, rootAt: at };
        return undefined;
      }
    }
    return undefined;
  }

  /** Parses the System Use field of a record and its continuation areas. */
  private readSusp(rec: DirRecord, skip: number): RockRidge {
    const out: RockRidge = { nameContinues: false, relocated: false, rripEr: false, anyEr: false, rr: false };
    let area = rec.systemUse.subarray(Math.min(skip, rec.systemUse.length));
    let areaOffset = rec.systemUseOffset + Math.min(skip, rec.systemUse.length);
    let continuations = 0;
    let nameDone = false;
    let targetDone = false;
    for (;;) {
      let next: { start: number; length: number; at: number } | undefined;
      let i = 0;
      scan: while (i + 4 <= area.length) {
        const at = areaOffset + i;
        const s0 = u8At(area, i);
        const s1 = u8At(area, i + 1);
        const len = u8At(area, i + 2);
        if (s0 === 0) break; // zero padding
        if (len < 4 || i + len > area.length) throw this.fail(`System Use entry ${JSON.stringify(String.fromCharCode(s0, s1))} of ${len} bytes in a ${area.length - i}-byte area`, at);
        const e = area.subarray(i, i + len);
        out.firstEntryOffset ??= at;
        const sig = String.fromCharCode(s0, s1);
        const need = (n: number): void => {
          if (len < n) throw this.fail(`System Use entry ${sig} of ${len} bytes (needs ${n})`, at);
        };
        switch (sig) {
          case 'ST':
            break scan;
          case 'CE': {
            need(28);
            if (next === undefined) next = { start: le32(e, 4) * this.blockSize + le32(e, 12), length: le32(e, 20), at };
            if (le32(e, 12) + le32(e, 20) > this.blockSize) throw this.fail(`continuation area of ${le32(e, 20)} bytes at ${le32(e, 12)} crosses its logical block`, at);
            break;
          }
          case 'SP':
            need(7);
            break;
          case 'ER': {
            need(8);
            const idLen = u8At(e, 4);
            if (8 + idLen + u8At(e, 5) + u8At(e, 6) > len) throw this.fail('ER entry with lengths beyond its end', at);
            out.anyEr = true;
            if (RRIP_IDS.has(latin1(e.subarray(8, 8 + idLen)))) out.rripEr = true;
            break;
          }
          case 'RR':
            out.rr = true;
            break;
          case 'PX':
            need(36);
            out.mode = le32(e, 4);
            break;
          case 'NM': {
            need(5);
            if (nameDone) throw this.fail('a second NM name after a complete one', at);
            const flags = u8At(e, 4);
            let piece: Uint8Array = e.subarray(5);
            if (flags & 0x02) piece = Buffer.from('.');
            else if (flags & 0x04) piece = Buffer.from('..');
            else if (flags & 0x20) piece = new Uint8Array(0); // HOST: nothing to add
            const prev = out.name ?? new Uint8Array(0);
            if (prev.length + piece.length > this.limits.maxNameBytes) throw this.fail(`Rock Ridge name longer than ${this.limits.maxNameBytes} bytes`, at);
            out.name = Buffer.concat([prev, piece]);
            out.nameContinues = (flags & 0x01) !== 0;
            if (!out.nameContinues) nameDone = true;
            break;
          }
          case 'SL': {
            need(5);
            if (targetDone) throw this.fail('a second SL target after a complete one', at);
            const parts = (out.targetParts ??= new SymlinkParts());
            parts.entryContinues = (u8At(e, 4) & 0x01) !== 0;
            let c = 5;
            while (c < len) {
              if (c + 2 > len) throw this.fail('SL component header beyond the end of its entry', at + c);
              const cflags = u8At(e, c);
              const clen = u8At(e, c + 1);
              if (c + 2 + clen > len) throw this.fail(`SL component of ${clen} bytes beyond the end of its entry`, at + c);
              const content = e.subarray(c + 2, c + 2 + clen);
              let text: string;
              if (cflags & 0x02) text = '.';
              else if (cflags & 0x04) text = '..';
              else if (cflags & 0x08) text = '/';
              else if (cflags & 0x10) text = '/'; // the volume's mount point: as an absolute link
              else if (cflags & 0x20) text = ''; // HOST
              else {
                if (content.includes(0)) throw this.fail('NUL in a symlink target', at + c);
                text = utf8(content);
              }
              parts.add(text, (cflags & 0x18) !== 0, (cflags & 0x01) !== 0);
              if (Buffer.byteLength(parts.text) > this.limits.maxTargetBytes) throw this.fail(`symlink target longer than ${this.limits.maxTargetBytes} bytes`, at);
              c += 2 + clen;
            }
            if (!parts.entryContinues) targetDone = true;
            break;
          }
          case 'CL':
            need(12);
            out.childLink = le32(e, 4);
            break;
          case 'RE':
            out.relocated = true;
            break;
          default:
          // PL (we know the parent), TF, SF, PN, PD, ZF, AA, AL…: not needed.
        }
        i += len;
      }
      if (next === undefined) break;
      if (++continuations > this.limits.maxContinuations) throw this.fail(`more than ${this.limits.maxContinuations} continuation areas for one record`, next.at);
      if (++this.continuationsFollowed > this.limits.maxEntries + 1024) throw this.fail('more continuation areas than directory records allow', next.at);
      this.checkExtent(next.start, next.length, 'continuation area', next.at);
      area = this.bytes(next.start, next.length, 'continuation area', next.at);
      areaOffset = next.start;
      if (!this.seenContinuations.has(next.start)) {
        this.seenContinuations.add(next.start);
        this.addInterval(next.start, next.start + next.length, PRIORITY.continuationArea, { kind: 'continuation-area' });
      }
    }
    if (out.targetParts !== undefined) out.target = out.targetParts.text;
    return out;
  }

  // --- Directory hierarchies ---------------------------------------------------------------------

  /** Walks every hierarchy once; returns the main one's entries. */
  private walk(): IsoEntry[] {
    if (this.list !== undefined) return this.list;
    if (this.walkError !== undefined) throw this.walkError;
    let list: IsoEntry[] = [];
    try {
      for (const tree of this.trees) {
        const entries = this.walkTree(tree);
        if (tree.main) list = entries;
      }
    } catch (err) {
      this.walkError = err;
      throw err;
    }
    // Boot images last in precedence: a boot image that is a file is reported as the file.
    for (const b of this.bootCatalog?.entries ?? []) this.addInterval(b.offset, b.offset + b.length, PRIORITY.bootImage, { kind: 'boot-image' });
    this.list = list;
    return list;
  }

  private walkTree(tree: Tree): IsoEntry[] {
    const out: IsoEntry[] = [];
    const rr = tree.rockRidge;
    const visited = new Set<number>();
    const fileBase = tree.main ? PRIORITY.file : PRIORITY.otherTreeFile;
    const rootStart = this.dataStart(tree.root);
    this.checkExtent(rootStart, tree.root.dataLength, 'root directory', tree.root.offset);
    let rootMode = S_IFDIR | DEFAULT_PERMISSIONS;
    if (rr !== undefined && tree.root.dataLength > 0) {
      // The root's own mode is in its "." record.
      const sector = this.bytes(rootStart, Math.min(tree.root.dataLength, SECTOR_SIZE - (rootStart % SECTOR_SIZE)), 'root directory', tree.root.offset);
      if (sector[0] !== 0) {
        const dot = DirRecord.decode(sector, 0, rootStart, this.failFn);
        const info = this.readSusp(dot, rr.rootAt);
        if (info.mode !== undefined) rootMode = S_IFDIR | (info.mode & 0o7777);
      }
    }
    if (tree.main) {
      out.push({
        path: '/',
        name: '',
        type: 'dir',
        mode: rootMode,
        size: tree.root.dataLength,
        extents: tree.root.dataLength > 0 ? [{ offset: rootStart, length: tree.root.dataLength }] : [],
        recordOffset: tree.root.offset,
      });
    }
    const stack: PendingDir[] = [{ path: '/', depth: 0, start: rootStart, length: tree.root.dataLength, recordOffset: tree.root.offset }];
    let count = 0;
    let dirBytes = 0;
    this.continuationsFollowed = 0;
    while (stack.length > 0) {
      const dir = stack.pop()!;
      if (dir.length === 0) continue; // not even "." and "..": nothing to read, nothing to loop through
      if (visited.has(dir.start)) throw this.fail(`directory loop: the extent at ${dir.start} is reached a second time (as ${JSON.stringify(dir.path)})`, dir.recordOffset);
      visited.add(dir.start);
      // Directory extents of a sound image do not overlap, so together they are no bigger than the
      // image: this bounds the work on an image whose directories all point into one another.
      dirBytes += dir.length;
      if (dirBytes > this.size) throw this.fail(`directory extents add up to more than the image (${JSON.stringify(dir.path)} overlaps others)`, dir.recordOffset);
      const children: PendingDir[] = [];
      const dirOwner = (entryName: string): Owner => ({ kind: 'dirrecord', dir: dir.path, entryName, tree: tree.kind });
      this.addInterval(dir.start, dir.start + dir.length, PRIORITY.dirPadding, dirOwner(''));
      let group: DirRecord[] = [];
      const finish = (recs: DirRecord[]): void => {
        const first = itemAt(recs, 0);
        const info = rr !== undefined ? this.readSusp(first, rr.skip) : undefined;
        // The other parts' System Use fields only matter for their continuation areas (locate).
        if (rr !== undefined) for (const r of recs.slice(1)) this.readSusp(r, rr.skip);
        const name = this.entryName(first, tree, info);
        for (const r of recs) this.addInterval(r.offset, r.offset + r.length, PRIORITY.dirRecord, dirOwner(name));
        if ((first.flags & DR_FLAG.associated) !== 0) return;
        if (info?.relocated) return; // listed where its CL placeholder is
        const path = dir.path === '/' ? `/${name}` : `${dir.path}/${name}`;
        const isDir = first.isDirectory || info?.childLink !== undefined;
        if (isDir) {
          if (recs.length > 1) throw this.fail('a directory recorded as a multi-extent file', first.offset);
          let start = this.dataStart(first);
          let length = first.dataLength;
          if (info?.childLink !== undefined) {
            // The relocated directory's own "." record has its size.
            start = info.childLink * this.blockSize;
            if (start >= this.size) throw this.fail(`CL points beyond the end of the image (block ${info.childLink})`, first.offset);
            const head = this.bytes(start, Math.min(SECTOR_SIZE - (start % SECTOR_SIZE), this.size - start), 'relocated directory', first.offset);
            const dot = DirRecord.decode(head, 0, start, this.failFn);
            if (!dot.isDot) throw this.fail('CL points to something other than a directory', first.offset);
            length = dot.dataLength;
          }
          this.checkExtent(start, length, 'directory', first.offset);
          if (dir.depth + 1 > this.limits.maxDepth) throw this.fail(`directories nested more than ${this.limits.maxDepth} deep`, first.offset);
          const mode = S_IFDIR | ((info?.mode ?? DEFAULT_PERMISSIONS) & 0o7777);
          if (tree.main) out.push({ path, name, type: 'dir', mode, size: length, extents: length > 0 ? [{ offset: start, length }] : [], recordOffset: first.offset });
          children.push({ path, depth: dir.depth + 1, start, length, recordOffset: first.offset });
          return;
        }
        const extents: IsoExtent[] = [];
        let size = 0;
        for (const r of recs) {
          if (r.fileUnitSize !== 0 || r.interleaveGap !== 0) throw this.fail('interleaved file (not supported)', r.offset);
          const start = this.dataStart(r);
          this.checkExtent(start, r.dataLength, `extent of ${JSON.stringify(path)}`, r.offset);
          if (r.dataLength > 0) {
            this.addInterval(start, start + r.dataLength, fileBase, { kind: 'file', path, offsetInFile: 0 }, size);
            extents.push({ offset: start, length: r.dataLength });
          }
          size += r.dataLength;
        }
        if (!tree.main) return;
        let type: IsoEntry['type'] = 'file';
        let mode = S_IFREG | DEFAULT_PERMISSIONS;
        if (info?.mode !== undefined) {
          const fmt = info.mode & S_IFMT;
          if (fmt === S_IFLNK) type = 'symlink';
          else if (fmt !== S_IFREG && fmt !== S_IFDIR && fmt !== 0) type = 'special';
          mode = type === 'file' ? S_IFREG | (info.mode & 0o7777) : info.mode;
        } else if (info?.target !== undefined) {
          type = 'symlink';
          mode = S_IFLNK | 0o777;
        }
        const entry: IsoEntry = { path, name, type, mode, size, extents, recordOffset: first.offset };
        if (type === 'symlink') {
          if (info?.target === undefined) throw this.fail(`symlink ${JSON.stringify(path)} without an SL target`, first.offset);
          entry.target = info.target;
        }
        out.push(entry);
      };

      for (let pos = dir.start, end = dir.start + dir.length; pos < end; ) {
        // Records never cross a 2048-byte sector: read whole sectors, up to DIR_READ at once.
        const chunkEnd = Math.min(end, Math.floor(pos / SECTOR_SIZE) * SECTOR_SIZE + DIR_READ);
        const chunk = this.bytes(pos, chunkEnd - pos, `directory ${JSON.stringify(dir.path)}`, dir.recordOffset);
        const chunkStart = pos;
        while (pos < chunkEnd) {
          const sectorEnd = Math.min(chunkEnd, Math.floor(pos / SECTOR_SIZE) * SECTOR_SIZE + SECTOR_SIZE);
          const at = pos - chunkStart;
          if (chunk[at] === 0) {
            pos = sectorEnd; // the rest of the sector is padding
            continue;
          }
          const rec = DirRecord.decode(chunk.subarray(0, sectorEnd - chunkStart), at, pos, this.failFn);
          pos += rec.length;
          if (rec.isDot || rec.isDotDot) {
            if (group.length > 0) throw this.fail('multi-extent file without its final record', itemAt(group, 0).offset);
            if (rr !== undefined) this.readSusp(rec, dir.path === '/' && rec.isDot ? rr.rootAt : rr.skip);
            this.addInterval(rec.offset, rec.offset + rec.length, PRIORITY.dirRecord, dirOwner(rec.isDot ? '.' : '..'));
            continue;
          }
          if (++count > this.limits.maxEntries) throw this.fail(`more than ${this.limits.maxEntries} directory records`, rec.offset);
          if (group.length > 0 && !Buffer.from(itemAt(group, 0).nameBytes).equals(rec.nameBytes)) {
            throw this.fail('multi-extent file without its final record (the next record has another name)', itemAt(group, 0).offset);
          }
          group.push(rec);
          if ((rec.flags & DR_FLAG.multiExtent) === 0) {
            const recs = group;
            group = [];
            finish(recs);
          }
        }
      }
      if (group.length > 0) throw this.fail('multi-extent file without its final record (end of directory)', itemAt(group, 0).offset);
      // Depth-first, in directory order.
      for (const c of children.reverse()) stack.push(c); // not push(...): too many arguments for a huge directory
    }
    return out;
  }

  /** The name entries() shows for a record, checked to be a usable path component. */
  private entryName(rec: DirRecord, tree: Tree, info: RockRidge | undefined): string {
    let name: string;
    if (info?.name !== undefined) {
      if (info.name.includes(0)) throw this.fail('NUL in a Rock Ridge name', info.firstEntryOffset ?? rec.offset);
      name = utf8(info.name);
    } else if (tree.ucs2) {
      name = ucs2be(rec.nameBytes).replace(/;\d*$/, '');
    } else {
      name = utf8(rec.nameBytes).replace(/;\d*$/, '');
      if (!rec.isDirectory && name.endsWith('.') && name.length > 1) name = name.slice(0, -1);
    }
    if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
      throw this.fail(`unusable file name ${JSON.stringify(name)}`, rec.offset);
    }
    return name;
  }

  // --- El Torito ------------------------------------------------------------------------------

  private readBootCatalog(br: Uint8Array, brOffset: number): BootCatalog | undefined {
    const systemId = latin1(br.subarray(VD_FIELD.bootSystemId, VD_FIELD.bootSystemId + 32)).replace(/\0+$/, '');
    if (systemId !== EL_TORITO_SYSTEM_ID) return undefined;
    const lbaField = brOffset + VD_FIELD.bootCatalogLba;
    const start = le32(br, VD_FIELD.bootCatalogLba) * SECTOR_SIZE;
    const entryAt = (k: number): number => start + k * BOOT_ENTRY_SIZE;
    // A catalog running off the end of the image is blamed on the boot record's pointer to it.
    const blame = (k: number): number => (k > 0 && entryAt(k) < this.size ? entryAt(k) : lbaField);
    const read = (k: number): Uint8Array => this.bytes(entryAt(k), BOOT_ENTRY_SIZE, 'boot catalog entry', blame(k));
    const tooMany = (k: number): NixSealError => this.fail(`more than ${this.limits.maxBootEntries} boot catalog entries`, blame(k));

    const validation = read(0);
    if (validation[0] !== 1 || validation[30] !== 0x55 || validation[31] !== 0xaa) throw this.fail('boot catalog without a validation entry', start);
    let sum = 0;
    for (let i = 0; i < BOOT_ENTRY_SIZE; i += 2) sum = (sum + le16(validation, i)) & 0xffff;
    if (sum !== 0) throw this.fail('boot catalog validation entry with a bad checksum', start);

    const entries: BootEntry[] = [];
    const bootEntry = (e: Uint8Array, at: number, platform: number): void => {
      if (e[0] !== 0x88 && e[0] !== 0x00) throw this.fail(`boot catalog entry with boot indicator 0x${u8At(e, 0).toString(16)}`, at);
      const mediaType = u8At(e, 1) & 0x0f;
      const sectorCount = le16(e, 6);
      const lba = le32(e, 8);
      if (lba === 0 && e[0] === 0x00) return; // an unused entry
      const offset = lba * SECTOR_SIZE;
      const length = FLOPPY_SIZE[mediaType] ?? Math.max(sectorCount, 1) * 512;
      if (mediaType > 4) throw this.fail(`boot catalog entry with media type ${mediaType}`, at);
      this.checkExtent(offset, length, 'boot image', at);
      entries.push({ platform, bootable: e[0] === 0x88, mediaType, loadSegment: le16(e, 2), systemType: u8At(e, 4), sectorCount, lba, offset, length, entryOffset: at });
    };

    let k = 1;
    bootEntry(read(k), entryAt(k), u8At(validation, 1));
    k++;
    // Section headers (0x90 more follow, 0x91 final), each followed by its entries and their extensions.
    let final = false;
    let sections = 0;
    while (!final) {
      if (k >= this.limits.maxBootEntries) throw tooMany(k);
      // The catalog may end with the image after its default entry, not after a header saying "more follow".
      if (sections === 0 && entryAt(k) + BOOT_ENTRY_SIZE > this.size) break;
      const h = read(k);
      if (h[0] !== 0x90 && h[0] !== 0x91) break; // no (more) sections
      final = h[0] === 0x91;
      sections++;
      const platform = u8At(h, 1);
      const n = le16(h, 2);
      k++;
      for (let j = 0; j < n; j++) {
        if (k >= this.limits.maxBootEntries) throw tooMany(k);
        const e = read(k);
        bootEntry(e, entryAt(k), platform);
        let more = (u8At(e, 1) & 0x20) !== 0;
        k++;
        while (more) {
          if (k >= this.limits.maxBootEntries) throw tooMany(k);
          const x = read(k);
          if (x[0] !== 0x44) throw this.fail('boot catalog extension record expected', entryAt(k));
          more = (u8At(x, 1) & 0x20) !== 0;
          k++;
        }
      }
    }
    const length = Math.ceil((k * BOOT_ENTRY_SIZE) / SECTOR_SIZE) * SECTOR_SIZE;
    this.addInterval(start, start + length, PRIORITY.bootCatalog, { kind: 'boot-catalog' });
    return { offset: start, length: k * BOOT_ENTRY_SIZE, entries };
  }
}

/** Opens an image: reads its volume descriptors, Rock Ridge detection and boot catalog. */
export function openIso(src: ByteSource, name: string, limits: Partial<IsoLimits> = {}): Iso {
  return new Iso(src, name, limits);
}

/**
 * Opens the image file at `path`, runs `fn` on it and closes the file (also when `fn` throws).
 * A file that cannot be opened is EIO "Cannot read PATH: why".
 */
export function withIsoFile<T>(path: string, fn: (iso: Iso) => T, limits: Partial<IsoLimits> = {}): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new NixSealError('EIO', `Cannot read ${path}: ${describeSystemError(err)}`, { path, cause: err });
  }
  try {
    return fn(openIso(new FdSource(fd, path), path, limits));
  } finally {
    closeSync(fd);
  }
}

// ---------------------------------------------------------------------------------------------
// The image view (formats/image.ts) of an ISO 9660 image

/** The extents as one range when each starts where the previous ended (always, for xorriso's files). */
function contiguous(extents: readonly IsoExtent[]): { offset: number; length: number } | undefined {
  const first = extents[0];
  if (first === undefined) return undefined;
  let end = first.offset + first.length;
  for (const e of extents.slice(1)) {
    if (e.offset !== end) return undefined;
    end += e.length;
  }
  return { offset: first.offset, length: end - first.offset };
}

const S_IXUSR = 0o100;

function isoView(iso: Iso, src: ByteSource): ImageView {
  const features = [iso.rockRidge ? 'Rock Ridge' : '', iso.joliet ? 'Joliet' : '', iso.bootCatalog ? 'El Torito' : ''].filter(Boolean);
  let byPath: Map<string, IsoEntry> | undefined;
  const isoEntry = (entry: InnerEntry): IsoEntry => {
    byPath ??= new Map([...iso.entries()].map((e) => [e.path, e]));
    const e = byPath.get('/' + entry.path);
    if (e === undefined) throw new NixSealError('EUSAGE', `Cannot read ${entry.path} in the ISO: no such entry`, { path: entry.path });
    return e;
  };
  const inner = (e: IsoEntry): InnerEntry => {
    const r: InnerEntry = { path: e.path.replace(/^\//, ''), type: e.type, size: e.size, recordOffset: e.recordOffset };
    if (e.type === 'file') {
      r.executable = (e.mode & S_IXUSR) !== 0;
      const w = contiguous(e.extents);
      if (w !== undefined) r.window = w;
      else if (e.size === 0) r.window = { offset: 0, length: 0 };
    }
    if (e.target !== undefined) r.target = e.target;
    return r;
  };
  return {
    kind: 'iso9660',
    description: `ISO 9660${features.length > 0 ? ` (${features.join(', ')})` : ''}`,
    source: src,
    *entries() {
      for (const e of iso.entries()) yield inner(e);
    },
    read(entry) {
      return iso.readFile(isoEntry(entry));
    },
    fileSource(entry) {
      const w = entry.window ?? inner(isoEntry(entry)).window;
      return w === undefined ? undefined : windowSource(src, w.offset, w.length);
    },
    locate(offset) {
      const o = iso.locate(offset);
      switch (o.kind) {
        case 'file':
          return { path: o.path.replace(/^\//, ''), offsetInFile: o.offsetInFile, what: `data of ${o.path.replace(/^\//, '')}` };
        case 'dirrecord': {
          const dir = o.dir.replace(/^\//, '');
          const entry = o.entryName === '' || o.entryName === '.' || o.entryName === '..' ? undefined : dir === '' ? o.entryName : `${dir}/${o.entryName}`;
          const tree = o.tree === 'iso9660' ? '' : ` (${o.tree} tree)`;
          return entry !== undefined
            ? { path: entry, what: `directory record (name, Rock Ridge fields)${tree}` }
            : { path: dir, what: `directory ${dir === '' ? '/' : dir}${tree}` };
        }
        case 'volume-descriptor':
          return { what: `${o.type} volume descriptor` };
        default:
          return { what: o.kind.replace(/-/g, ' ') };
      }
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Detection

/** How many volume descriptors detection looks at (from sector 16). */
export const DETECT_DESCRIPTORS = 16;
const TEA = 'TEA01'; // the end of a UDF volume recognition sequence: no ISO descriptor follows

/**
 * ISO 9660: a valid primary volume descriptor (its both-endian fields agree) among the volume
 * descriptors in `vds`, bytes at file offset `offset` (normally SYSTEM_AREA_SIZE). "CD001" in the
 * first descriptor without a valid PVD is a near miss.
 */
export function detectIso9660(vds: Uint8Array, offset: number): Verdict {
  for (let at = 0; at + SECTOR_SIZE <= vds.length; at += SECTOR_SIZE) {
    const id = bytes.latin1(vds, at + VD_FIELD.standardId, 5);
    if (id === ISO_STANDARD_ID) {
      if (bytes.u8(vds, at + VD_FIELD.type) !== VD_TYPE.primary) continue;
      const pvd = primaryVolumeDescriptor(vds, at, offset);
      if (pvd !== undefined) return { format: 'iso9660', offset: offset + at, why: pvd };
    } else if (id === TEA) break;
  }
  if (bytes.latin1(vds, VD_FIELD.standardId, 5) === ISO_STANDARD_ID) return { format: 'iso9660', offset, nearMiss: 'no valid primary volume descriptor' };
  return undefined;
}

/** The PVD's file structure version (ECMA-119 8.4.31): always 1. */
const PVD_FILE_STRUCTURE_VERSION = 881;
const ROOT_RECORD_LENGTH = 34;

/** Why the descriptor at `at` is a valid ISO 9660 PVD, or undefined. */
function primaryVolumeDescriptor(d: Uint8Array, at: number, offset: number): string | undefined {
  if (bytes.u8(d, at + VD_FIELD.version) !== 1 || bytes.u8(d, at + PVD_FILE_STRUCTURE_VERSION) !== 1) return undefined;
  const blockSize = bytes.le16(d, at + VD_FIELD.logicalBlockSize);
  const blocks = bytes.le32(d, at + VD_FIELD.volumeSpaceSize);
  if (blockSize !== bytes.be16(d, at + VD_FIELD.logicalBlockSize + 2) || ![512, 1024, 2048].includes(blockSize)) return undefined;
  if (blocks === 0 || blocks !== bytes.be32(d, at + VD_FIELD.volumeSpaceSize + 4) || bytes.u8(d, at + VD_FIELD.rootDirectoryRecord) !== ROOT_RECORD_LENGTH) return undefined;
  const label = bytes.printableName(d, at + VD_FIELD.volumeId, 32).trim();
  return `ISO 9660 primary volume descriptor at ${offset + at} (${label ? `volume "${label}", ` : ''}${blocks} blocks of ${blockSize} bytes)`;
}

/** ISO 9660: detectIso9660 (a near miss too: the reader reports what is broken). */
export const iso9660Reader: ImageReader = {
  kind: 'iso9660',
  detect(src) {
    if (src.size < SYSTEM_AREA_SIZE + VD_FIELD.standardId + ISO_STANDARD_ID.length) return false;
    const vds = src.read(SYSTEM_AREA_SIZE, Math.min(DETECT_DESCRIPTORS * SECTOR_SIZE, src.size - SYSTEM_AREA_SIZE));
    return detectIso9660(vds, SYSTEM_AREA_SIZE) !== undefined;
  },
  open(src, name) {
    return isoView(openIso(src, name), src);
  },
};
