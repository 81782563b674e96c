/**
 * FAT12/16/32 reader with VFAT long names: the EFI system partition of a NixOS disk image (kernels,
 * initrds, systemd-boot entries) is FAT, so an audit lists and hashes what is in it. Read-only and
 * bounded: cluster chains are followed with a budget of the cluster count, directories once each.
 *
 * FAT records no permissions: entries are never executable (Linux's vfat shows every file with
 * the mount's fmask, default 0022 → rwx for the owner, but a NAR of the copy would then mark all
 * files executable, which no store path built from these files has; `false` is what nix-seal
 * compares). Long names are taken when their checksum matches the short entry, else the 8.3 name
 * (with the NT lowercase flags, as Linux and mtools show it). Short names are decoded as latin1.
 */
import { itemAt, u8At } from '../checked-index.js';
import { NixSealError } from '../errors.js';
import * as bytes from './bytes.js';
import type { ByteSource } from './byte-source.js';
import { walkDirectories, type DirChild } from './dir-walk.js';
import type { ImageReader, ImageView, InnerEntry, InnerOwner } from './image.js';

/** Boot sector (BPB) field offsets. */
export const BPB = {
  bytesPerSector: 0x0b,
  sectorsPerCluster: 0x0d,
  reservedSectors: 0x0e,
  numFats: 0x10,
  rootEntries: 0x11,
  totalSectors16: 0x13,
  fatSize16: 0x16,
  totalSectors32: 0x20,
  fatSize32: 0x24,
  rootCluster32: 0x2c,
  signature: 0x1fe,
} as const;

export interface FatLimits {
  maxEntries: number;
  maxDepth: number;
}
const DEFAULT_LIMITS: FatLimits = { maxEntries: 1_000_000, maxDepth: 256 };

export interface FatGeometry {
  type: 12 | 16 | 32;
  bytesPerSector: number;
  clusterSize: number;
  fatOffset: number;
  fatBytes: number;
  numFats: number;
  /** FAT12/16: the fixed root directory region. */
  rootOffset: number;
  rootBytes: number;
  rootCluster: number;
  dataOffset: number;
  clusterCount: number;
}

export interface FatEntry {
  path: string;
  type: 'file' | 'dir';
  size: number;
  /** First cluster (0: none; for the FAT12/16 root, 0 and the fixed region). */
  cluster: number;
  /** Offset of the short directory entry. */
  recordOffset: number;
}

const u16 = bytes.le16;
const u32 = bytes.le32;
const isPow2 = (n: number): boolean => n > 0 && (n & (n - 1)) === 0;

/** The boot sector's geometry, or a reason it is not FAT. */
function geometry(b: Uint8Array, size: number): FatGeometry | string {
  if (b[BPB.signature] !== 0x55 || b[BPB.signature + 1] !== 0xaa) return 'no boot sector signature 0x55AA';
  if (b[0] !== 0xeb && b[0] !== 0xe9) return 'no jump instruction';
  const bps = u16(b, BPB.bytesPerSector);
  const spc = u8At(b, BPB.sectorsPerCluster);
  const reserved = u16(b, BPB.reservedSectors);
  const numFats = u8At(b, BPB.numFats);
  if (![512, 1024, 2048, 4096].includes(bps)) return `bytes per sector ${bps} is invalid`;
  if (!isPow2(spc) || spc > 128) return `sectors per cluster ${spc} is invalid`;
  if (reserved === 0 || numFats === 0 || numFats > 4) return 'reserved sectors or FAT count is invalid';
  const rootEntries = u16(b, BPB.rootEntries);
  const total = u16(b, BPB.totalSectors16) || u32(b, BPB.totalSectors32);
  const fatSz = u16(b, BPB.fatSize16) || u32(b, BPB.fatSize32);
  if (total === 0 || fatSz === 0) return 'sector counts are zero';
  const rootSectors = Math.ceil((rootEntries * 32) / bps);
  const dataSector = reserved + numFats * fatSz + rootSectors;
  if (dataSector >= total) return 'the FATs leave no data area';
  const clusterCount = Math.floor((total - dataSector) / spc);
  const type = clusterCount < 4085 ? 12 : clusterCount < 65525 ? 16 : 32;
  if (type === 32 && rootEntries !== 0) return 'a FAT32 with a fixed root directory';
  if (type !== 32 && rootEntries === 0) return 'a FAT12/16 without a root directory';
  if (fatSz * bps * 8 < (clusterCount + 2) * (type === 12 ? 12 : type)) return 'the FAT is too small for the clusters';
  void size;
  return {
    type,
    bytesPerSector: bps,
    clusterSize: bps * spc,
    fatOffset: reserved * bps,
    fatBytes: fatSz * bps,
    numFats,
    rootOffset: (reserved + numFats * fatSz) * bps,
    rootBytes: rootSectors * bps,
    rootCluster: type === 32 ? u32(b, BPB.rootCluster32) : 0,
    dataOffset: dataSector * bps,
    clusterCount,
  };
}

/** The VFAT checksum of an 11-byte short name. */
export function lfnChecksum(short: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 11; i++) sum = (((sum & 1) << 7) + (sum >> 1) + u8At(short, i)) & 0xff;
  return sum;
}

export class Fat {
  readonly geo: FatGeometry;
  private fat: Uint8Array | undefined;
  private walked: FatEntry[] | undefined;
  private readonly byPath = new Map<string, FatEntry>();
  private owners: Map<number, { path: string; index: number; dir: boolean }> | undefined;
  private readonly limits: FatLimits;

  constructor(
    readonly src: ByteSource,
    readonly name: string,
    limits: Partial<FatLimits> = {},
  ) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    if (src.size < 512) throw this.fail('the image is smaller than a boot sector', 0);
    const g = geometry(src.read(0, 512), src.size);
    if (typeof g === 'string') throw this.fail(g, 0);
    this.geo = g;
    if (g.fatOffset + g.fatBytes > src.size) throw this.fail('the first FAT runs past the end of the image', g.fatOffset);
    if (g.rootOffset + g.rootBytes > src.size) throw this.fail('the root directory runs past the end of the image', g.rootOffset);
  }

  fail(why: string, offset: number): NixSealError {
    return new NixSealError('EFORMAT', `Cannot read ${this.name}: ${why} at offset ${offset}`, { path: this.name, offset });
  }

  private next(cluster: number): number {
    this.fat ??= this.src.read(this.geo.fatOffset, this.geo.fatBytes);
    const f = this.fat;
    if (this.geo.type === 12) {
      const o = cluster + (cluster >> 1);
      const v = u16(f, o);
      return cluster & 1 ? v >> 4 : v & 0xfff;
    }
    if (this.geo.type === 16) return u16(f, cluster * 2);
    return u32(f, cluster * 4) & 0x0fffffff;
  }

  /** The clusters of a chain from `first`, at most `max` (a file needs no more than its size). */
  chain(first: number, max: number, from: number): number[] {
    const out: number[] = [];
    const eoc = this.geo.type === 12 ? 0xff8 : this.geo.type === 16 ? 0xfff8 : 0x0ffffff8;
    let c = first;
    // A chain that comes back to a cluster loops (it is at most `max` long, so the set is too).
    const seen = new Set<number>();
    while (out.length < max) {
      if (c < 2 || c >= this.geo.clusterCount + 2) throw this.fail(`cluster ${c} in a chain is outside the data area`, from);
      if (seen.has(c)) throw this.fail(`the cluster chain from ${first} loops`, from);
      seen.add(c);
      out.push(c);
      const n = this.next(c);
      if (n >= eoc) break;
      c = n;
    }
    return out;
  }

  clusterOffset(c: number): number {
    return this.geo.dataOffset + (c - 2) * this.geo.clusterSize;
  }

  private clusterBytes(c: number, from: number): Uint8Array {
    const o = this.clusterOffset(c);
    if (o + this.geo.clusterSize > this.src.size) throw this.fail(`cluster ${c} is past the end of the image`, from);
    return this.src.read(o, this.geo.clusterSize);
  }

  /** A directory's raw 32-byte records with their image offsets. */
  private *records(dir: FatEntry): Generator<{ rec: Uint8Array; at: number }> {
    if (dir.cluster === 0) {
      const b = this.src.read(this.geo.rootOffset, this.geo.rootBytes);
      for (let o = 0; o + 32 <= b.length; o += 32) yield { rec: b.subarray(o, o + 32), at: this.geo.rootOffset + o };
      return;
    }
    // A directory has at most 65536 records (the FAT spec): bounds the chain.
    const max = Math.ceil((65536 * 32) / this.geo.clusterSize);
    for (const c of this.chain(dir.cluster, max, dir.recordOffset)) {
      const b = this.clusterBytes(c, dir.recordOffset);
      const base = this.clusterOffset(c);
      for (let o = 0; o + 32 <= b.length; o += 32) yield { rec: b.subarray(o, o + 32), at: base + o };
    }
  }

  /** Every entry, root ('') first, parents before children (depth first, walkDirectories). */
  entries(): FatEntry[] {
    if (this.walked !== undefined) return this.walked;
    const root: FatEntry = { path: '', type: 'dir', size: 0, cluster: this.geo.type === 32 ? this.geo.rootCluster : 0, recordOffset: this.geo.type === 32 ? BPB.rootCluster32 : this.geo.rootOffset };
    const startsAt = (path: string, cluster: number): string => `directory ${path} starts at cluster ${cluster}, which is the root or another directory`;
    const { entries, byPath } = walkDirectories<FatEntry, FatEntry>({
      root: { entry: root, dir: root, key: root.cluster },
      children: (dir) => this.children(dir),
      limits: this.limits,
      fail: (why, offset) => this.fail(why, offset),
      loop: startsAt,
    });
    for (const [k, v] of byPath) this.byPath.set(k, v);
    return (this.walked = entries);
  }

  /** A directory's named entries (VFAT long names joined, deleted entries and the label left out). */
  private *children(dir: FatEntry): Generator<DirChild<FatEntry, FatEntry>> {
    let lfn: { parts: string[]; sum: number; next: number } | undefined;
    for (const { rec, at } of this.records(dir)) {
      const first = u8At(rec, 0);
      if (first === 0) break;
      if (first === 0xe5) {
        lfn = undefined;
        continue;
      }
      const attr = u8At(rec, 11);
      if ((attr & 0x3f) === 0x0f) {
        const seq = first & 0x1f;
        const part = Buffer.concat([rec.subarray(1, 11), rec.subarray(14, 26), rec.subarray(28, 32)]);
        let s = '';
        for (let i = 0; i + 2 <= part.length; i += 2) {
          const ch = u16(part, i);
          if (ch === 0) break;
          s += String.fromCharCode(ch);
        }
        if (first & 0x40) lfn = { parts: [s], sum: u8At(rec, 13), next: seq - 1 };
        else if (lfn !== undefined && seq === lfn.next && rec[13] === lfn.sum && seq > 0) {
          lfn.parts.unshift(s);
          lfn.next = seq - 1;
        } else lfn = undefined;
        continue;
      }
      const long = lfn !== undefined && lfn.next === 0 && lfn.sum === lfnChecksum(rec) ? lfn.parts.join('') : undefined;
      lfn = undefined;
      if (attr & 0x08) continue; // volume label
      const short = shortName(rec);
      if (short === '.' || short === '..') continue;
      const cluster = (this.geo.type === 32 ? u16(rec, 20) * 65536 : 0) + u16(rec, 26);
      const isDir = (attr & 0x10) !== 0;
      const size = isDir ? 0 : u32(rec, 28);
      yield {
        name: long ?? short,
        at,
        open: (path) => {
          const e: FatEntry = { path, type: isDir ? 'dir' : 'file', size, cluster, recordOffset: at };
          if (isDir && cluster === 0) throw this.fail(`directory ${path} starts at cluster 0, which is the root or another directory`, at);
          if (!isDir && size > 0 && cluster === 0) throw this.fail(`${path} has ${size} bytes but no cluster`, at);
          return isDir ? { entry: e, dir: { dir: e, key: cluster } } : { entry: e };
        },
      };
    }
  }

  entry(path: string): FatEntry | undefined {
    this.entries();
    return this.byPath.get(path);
  }

  fileClusters(e: FatEntry): number[] {
    if (e.size === 0) return [];
    const need = Math.ceil(e.size / this.geo.clusterSize);
    const cs = this.chain(e.cluster, need, e.recordOffset);
    if (cs.length < need) throw this.fail(`${e.path}'s cluster chain ends after ${cs.length} of ${need} clusters`, e.recordOffset);
    return cs;
  }

  *readFile(e: FatEntry): Generator<Uint8Array> {
    const cs = this.fileClusters(e);
    const size = this.geo.clusterSize;
    let left = e.size;
    // Contiguous clusters are read together, up to 1 MiB.
    for (let i = 0; i < cs.length; ) {
      let j = i + 1;
      while (j < cs.length && cs[j] === itemAt(cs, j - 1) + 1 && (j - i) * size < 1 << 20) j++;
      const n = Math.min(left, (j - i) * size);
      const first = itemAt(cs, i);
      const o = this.clusterOffset(first);
      if (o + n > this.src.size) throw this.fail(`${e.path}'s cluster ${first} is past the end of the image`, e.recordOffset);
      yield this.src.read(o, n);
      left -= n;
      i = j;
    }
  }

  fileSource(e: FatEntry): ByteSource {
    const cs = this.fileClusters(e);
    const csize = this.geo.clusterSize;
    for (const c of cs) if (this.clusterOffset(c) + csize > this.src.size) throw this.fail(`${e.path}'s cluster ${c} is past the end of the image`, e.recordOffset);
    const src = this.src;
    const size = e.size;
    return {
      size,
      read: (o, n) => {
        if (!Number.isSafeInteger(o) || !Number.isSafeInteger(n) || o < 0 || n < 0 || o + n > size) throw new RangeError(`read ${n} bytes at ${o} of a ${size}-byte file`);
        const out = new Uint8Array(n);
        let done = 0;
        while (done < n) {
          const pos = o + done;
          const c = itemAt(cs, Math.floor(pos / csize));
          const within = pos % csize;
          const k = Math.min(n - done, csize - within);
          out.set(src.read(this.clusterOffset(c) + within, k), done);
          done += k;
        }
        return out;
      },
    };
  }

  locate(offset: number): InnerOwner {
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= this.src.size) throw new RangeError(`locate: offset ${offset} is outside the image (${this.src.size} bytes)`);
    const g = this.geo;
    if (offset < g.bytesPerSector) return { what: 'FAT boot sector' };
    if (offset < g.fatOffset) return { what: 'FAT reserved sectors' };
    if (offset < g.fatOffset + g.numFats * g.fatBytes) {
      const copy = Math.floor((offset - g.fatOffset) / g.fatBytes);
      return { what: `FAT${g.type} allocation table${copy > 0 ? ` (copy ${copy + 1})` : ''}` };
    }
    if (offset < g.dataOffset) return { path: '', what: 'FAT root directory' };
    const c = Math.floor((offset - g.dataOffset) / g.clusterSize) + 2;
    if (c >= g.clusterCount + 2) return { what: 'beyond the FAT data area' };
    if (this.owners === undefined) {
      const m = new Map<number, { path: string; index: number; dir: boolean }>();
      for (const e of this.entries()) {
        const cs = e.type === 'dir' ? (e.cluster === 0 ? [] : this.chain(e.cluster, Math.ceil((65536 * 32) / g.clusterSize), e.recordOffset)) : this.fileClusters(e);
        cs.forEach((x, i) => m.set(x, { path: e.path, index: i, dir: e.type === 'dir' }));
      }
      this.owners = m;
    }
    const o = this.owners.get(c);
    if (o === undefined) return { what: 'FAT free or unused cluster' };
    if (o.dir) return { path: o.path, what: `FAT directory ${o.path || '/'}` };
    const offsetInFile = o.index * g.clusterSize + ((offset - g.dataOffset) % g.clusterSize);
    const e = this.byPath.get(o.path)!;
    if (offsetInFile >= e.size) return { path: o.path, what: `slack after the end of ${o.path}` };
    return { path: o.path, what: `data of ${o.path}`, offsetInFile };
  }
}

/** "NAME.EXT" from a short entry, lowercased where the NT flags say (as Linux and mtools show it). */
function shortName(rec: Uint8Array): string {
  const raw = Buffer.from(rec.subarray(0, 11));
  if (raw[0] === 0x05) raw[0] = 0xe5;
  let base = raw.subarray(0, 8).toString('latin1').replace(/ +$/, '');
  let ext = raw.subarray(8, 11).toString('latin1').replace(/ +$/, '');
  const nt = u8At(rec, 12);
  if (nt & 0x08) base = base.toLowerCase();
  if (nt & 0x10) ext = ext.toLowerCase();
  return ext === '' ? base : `${base}.${ext}`;
}

export function openFat(src: ByteSource, name: string, limits: Partial<FatLimits> = {}): Fat {
  return new Fat(src, name, limits);
}

function fatView(fs: Fat, src: ByteSource): ImageView {
  let inner: InnerEntry[] | undefined;
  const entryOf = (entry: InnerEntry): FatEntry => {
    const e = fs.entry(entry.path);
    if (e === undefined || e.type !== 'file') throw new NixSealError('EUSAGE', `Cannot read ${entry.path} in ${fs.name}: no such file`, { path: entry.path });
    return e;
  };
  return {
    kind: 'fat',
    description: `FAT${fs.geo.type} (${fs.geo.clusterSize}-byte clusters)`,
    source: src,
    entries() {
      inner ??= fs.entries().map((e) => {
        const r: InnerEntry = { path: e.path, type: e.type, size: e.size, recordOffset: e.recordOffset };
        if (e.type === 'file') r.executable = false;
        return r;
      });
      return inner;
    },
    read(entry) {
      return fs.readFile(entryOf(entry));
    },
    fileSource(entry) {
      return fs.fileSource(entryOf(entry));
    },
    locate(offset) {
      return fs.locate(offset);
    },
  };
}

/** FAT12/16/32: a boot sector whose BPB is consistent (jump, 0x55AA, sizes, cluster count). */
export const fatReader: ImageReader = {
  kind: 'fat',
  detect(src) {
    if (src.size < 512) return false;
    return typeof geometry(src.read(0, 512), src.size) !== 'string';
  },
  open(src, name) {
    return fatView(new Fat(src, name), src);
  },
};
