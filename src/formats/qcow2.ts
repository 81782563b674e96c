/**
 * qcow2 disk images (QEMU, v2 and v3) as an ImageView of one file, `disk`: the virtual disk, read
 * through the L1/L2 tables (unallocated and zero clusters read as zeros, compressed clusters
 * inflated: deflate, or zstd when a v3 header says so), so that the partition table or filesystem
 * inside nests. Images whose data is partly elsewhere (a backing file, an external data file) or
 * encrypted are refused: nix-seal cannot look inside them.
 */
import { inflateRawSync } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';
import { u64At } from '../checked-index.js';
import { NixSealError } from '../errors.js';
import type { ByteSource } from './byte-source.js';
import type { ImageReader, ImageView, InnerEntry, InnerOwner } from './image.js';
import * as bytes from './bytes.js';
import { headOf, type Verdict } from './detection.js';
import { readRange } from './archive-view.js';

const MAGIC = 0x514649fb; // "QFI\xfb"
/** Header fields (docs/interop/qcow2.txt), big-endian. */
const QH = {
  version: 4,
  backingOffset: 8,
  backingSize: 16,
  clusterBits: 20,
  size: 24,
  cryptMethod: 32,
  l1Size: 36,
  l1Offset: 40,
  refcountOffset: 48,
  refcountClusters: 56,
  nbSnapshots: 60,
  snapshotsOffset: 64,
  incompatible: 72,
  headerLength: 100,
  compressionType: 104,
} as const;
const INCOMPAT = { dirty: 1n, corrupt: 2n, externalData: 4n, compressionType: 8n, extendedL2: 16n } as const;
const L1_OFFSET_MASK = 0x00fffffffffffe00n;
const L2_COMPRESSED = 1n << 62n;
const L2_ZERO = 1n;
/** Budgets: qemu's own limits on the L1 table, and how many L2 tables are kept decoded. */
const MAX_L1_ENTRIES = 32 << 20 >> 3;
const L2_CACHE = 64;

type Fail = (why: string, offset: number) => NixSealError;

function failer(name: string): Fail {
  return (why, offset) => new NixSealError('EFORMAT', `Cannot read ${name}: ${why} at offset ${offset}`, { path: name, offset });
}

const be32 = bytes.be32;
const be64 = (b: Uint8Array, at: number): bigint => (BigInt(be32(b, at)) << 32n) | BigInt(be32(b, at + 4));

/** A bigint offset as a number, or Infinity when past 2^53 (never inside a file). */
const num = (v: bigint): number => (v > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(v));

export interface Qcow2Header {
  version: number;
  clusterBits: number;
  clusterSize: number;
  size: number;
  l1Size: number;
  l1Offset: number;
  refcountOffset: number;
  refcountClusters: number;
  nbSnapshots: number;
  snapshotsOffset: number;
  headerLength: number;
  compression: 'deflate' | 'zstd';
  dirty: boolean;
  corrupt: boolean;
}

/** Where a host cluster is mapped, for locate(). */
type ClusterUse = { kind: 'data'; virtual: number } | { kind: 'compressed'; virtual: number } | { kind: 'l2' };

export class Qcow2 {
  readonly header: Qcow2Header;
  private readonly l1: BigUint64Array;
  private readonly l2Cache = new Map<number, BigUint64Array>();
  private readonly fail: Fail;
  private lastCluster: { index: number; bytes: Uint8Array } | undefined;
  private uses: Map<number, ClusterUse> | undefined;

  constructor(
    readonly src: ByteSource,
    readonly name: string,
  ) {
    const fail = (this.fail = failer(name));
    if (src.size < 72) throw fail('a file too small for a qcow2 header', 0);
    const h = src.read(0, Math.min(src.size, 112));
    if (be32(h, 0) !== MAGIC) throw fail('no qcow2 magic', 0);
    const version = be32(h, QH.version);
    if (version !== 2 && version !== 3) throw fail(`qcow2 version ${version} (2 and 3 are read)`, QH.version);
    const backing = num(be64(h, QH.backingOffset));
    if (backing !== 0) {
      const len = be32(h, QH.backingSize);
      const bname = len > 0 && len <= 1023 && backing + len <= src.size ? Buffer.from(src.read(backing, len)).toString('utf8') : '?';
      throw new NixSealError('EFORMAT', `Cannot read ${name}: a qcow2 image with a backing file (${JSON.stringify(bname)}) holds only part of its disk; nix-seal cannot look inside it (qemu-img convert it to a standalone image) at offset ${QH.backingOffset}`, { path: name, offset: QH.backingOffset });
    }
    if (be32(h, QH.cryptMethod) !== 0) throw fail(`an encrypted qcow2 image (method ${be32(h, QH.cryptMethod)}): nix-seal cannot look inside it`, QH.cryptMethod);
    const clusterBits = be32(h, QH.clusterBits);
    if (clusterBits < 9 || clusterBits > 21) throw fail(`cluster bits ${clusterBits} (9–21)`, QH.clusterBits);
    const clusterSize = 2 ** clusterBits;
    let headerLength = 72;
    let compression: 'deflate' | 'zstd' = 'deflate';
    let incompatible = 0n;
    if (version === 3) {
      if (h.length < 104) throw fail('a truncated qcow2 v3 header', 0);
      incompatible = be64(h, QH.incompatible);
      headerLength = be32(h, QH.headerLength);
      if (headerLength < 104 || headerLength > clusterSize || headerLength > src.size) throw fail(`header length ${headerLength}`, QH.headerLength);
      if (incompatible & INCOMPAT.externalData) throw fail('a qcow2 image whose data is in an external file: nix-seal cannot look inside it', QH.incompatible);
      if (incompatible & INCOMPAT.extendedL2) throw fail('a qcow2 image with extended L2 entries (subclusters), which nix-seal does not read', QH.incompatible);
      const unknown = incompatible & ~(INCOMPAT.dirty | INCOMPAT.corrupt | INCOMPAT.compressionType);
      if (unknown !== 0n) throw fail(`unknown incompatible qcow2 features 0x${unknown.toString(16)}`, QH.incompatible);
      if (incompatible & INCOMPAT.compressionType) {
        const t = headerLength > QH.compressionType ? bytes.u8(h, QH.compressionType) : 0;
        if (t === 1) compression = 'zstd';
        else if (t !== 0) throw fail(`compression type ${t} (0 deflate and 1 zstd are read)`, QH.compressionType);
      }
    }
    const size = num(be64(h, QH.size));
    if (!Number.isSafeInteger(size)) throw fail('a virtual size past 2^53 bytes', QH.size);
    const l2Entries = clusterSize / 8;
    const l1Size = be32(h, QH.l1Size);
    const l1Needed = Math.ceil(size / (clusterSize * l2Entries));
    if (l1Size < l1Needed || l1Size > MAX_L1_ENTRIES) throw fail(`an L1 table of ${l1Size} entries for a ${size}-byte disk (${l1Needed} needed)`, QH.l1Size);
    const l1Offset = num(be64(h, QH.l1Offset));
    if (l1Size > 0 && (l1Offset % clusterSize !== 0 || l1Offset + l1Size * 8 > src.size)) throw fail(`the L1 table (${l1Size} entries at ${l1Offset}) is not inside the file`, QH.l1Offset);
    this.header = {
      version,
      clusterBits,
      clusterSize,
      size,
      l1Size,
      l1Offset,
      refcountOffset: num(be64(h, QH.refcountOffset)),
      refcountClusters: be32(h, QH.refcountClusters),
      nbSnapshots: be32(h, QH.nbSnapshots),
      snapshotsOffset: num(be64(h, QH.snapshotsOffset)),
      headerLength,
      compression,
      dirty: (incompatible & INCOMPAT.dirty) !== 0n,
      corrupt: (incompatible & INCOMPAT.corrupt) !== 0n,
    };
    this.l1 = readTable(src, l1Offset, l1Needed);
  }

  private l2(l1Index: number): BigUint64Array | undefined {
    const entry = u64At(this.l1, l1Index);
    const off = num(entry & L1_OFFSET_MASK);
    if (off === 0) return undefined;
    const cached = this.l2Cache.get(off);
    if (cached !== undefined) return cached;
    const cs = this.header.clusterSize;
    if (off % cs !== 0 || off + cs > this.src.size) throw this.fail(`L1 entry ${l1Index} points at an L2 table outside the file (${off})`, this.header.l1Offset + l1Index * 8);
    const t = readTable(this.src, off, cs / 8);
    if (this.l2Cache.size >= L2_CACHE) this.l2Cache.delete(this.l2Cache.keys().next().value!);
    this.l2Cache.set(off, t);
    return t;
  }

  /** The L2 entry of virtual cluster `index` (0n: unallocated) and where it is in the file. */
  private l2Entry(index: number): { entry: bigint; at: number } {
    const per = this.header.clusterSize / 8;
    const l1i = Math.floor(index / per);
    const t = this.l2(l1i);
    if (t === undefined) return { entry: 0n, at: this.header.l1Offset + l1i * 8 };
    return { entry: u64At(t, index % per), at: num(u64At(this.l1, l1i) & L1_OFFSET_MASK) + (index % per) * 8 };
  }

  /** Virtual cluster `index`, whole (the disk's last one may be longer than the disk). */
  cluster(index: number): Uint8Array {
    if (this.lastCluster?.index === index) return this.lastCluster.bytes;
    const { clusterSize: cs, clusterBits } = this.header;
    const { entry, at } = this.l2Entry(index);
    let bytes: Uint8Array;
    if (entry & L2_COMPRESSED) {
      const x = 62 - (clusterBits - 8);
      const offMask = (1n << BigInt(x)) - 1n;
      const off = num(entry & offMask);
      const sectors = num((entry >> BigInt(x)) & ((1n << BigInt(62 - x)) - 1n));
      const len = Math.min((sectors + 1) * 512 - (off % 512), this.src.size - off);
      if (!(off > 0 && len > 0 && off + len <= this.src.size)) throw this.fail(`a compressed cluster (virtual ${index * cs}) outside the file (${off})`, at);
      const data = this.src.read(off, len);
      try {
        bytes = this.header.compression === 'zstd' ? unzstdCluster(data, cs) : inflateRawSync(data, { maxOutputLength: cs });
      } catch (err) {
        throw this.fail(`a compressed cluster (virtual ${index * cs}, ${this.header.compression}) is corrupt (${(err as Error).message})`, off);
      }
      if (bytes.length !== cs) throw this.fail(`a compressed cluster (virtual ${index * cs}) inflates to ${bytes.length} bytes, not ${cs}`, off);
    } else {
      const off = num(entry & L1_OFFSET_MASK);
      if (off === 0 || (entry & L2_ZERO) !== 0n) bytes = new Uint8Array(cs);
      else {
        if (off % cs !== 0 || off + cs > this.src.size) throw this.fail(`a data cluster (virtual ${index * cs}) outside the file (${off})`, at);
        bytes = this.src.read(off, cs);
      }
    }
    this.lastCluster = { index, bytes };
    return bytes;
  }

  /** The virtual disk as a ByteSource. */
  disk(): ByteSource {
    const size = this.header.size;
    const cs = this.header.clusterSize;
    return {
      size,
      read: (offset, length) => {
        if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
          throw new NixSealError('EIO', `Cannot read ${this.name}: ${length} bytes at virtual offset ${offset} are outside the ${size}-byte disk`, { path: this.name, offset });
        }
        const first = Math.floor(offset / cs);
        if (Math.floor((offset + length - 1) / cs) === first || length === 0) {
          const c = this.cluster(first);
          return c.subarray(offset - first * cs, offset - first * cs + length);
        }
        const out = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const at = offset + done;
          const i = Math.floor(at / cs);
          const c = this.cluster(i);
          const from = at - i * cs;
          const n = Math.min(cs - from, length - done);
          out.set(c.subarray(from, from + n), done);
          done += n;
        }
        return out;
      },
    };
  }

  /** What a byte of the qcow2 file is. */
  locate(offset: number): InnerOwner {
    const h = this.header;
    const cs = h.clusterSize;
    if (offset < h.headerLength) return { what: 'qcow2 header' };
    if (offset >= h.l1Offset && offset < h.l1Offset + h.l1Size * 8) return { what: 'qcow2 L1 table' };
    if (offset >= h.refcountOffset && offset < h.refcountOffset + h.refcountClusters * cs) return { what: 'qcow2 refcount table' };
    if (this.uses === undefined) {
      const uses = new Map<number, ClusterUse>();
      const per = cs / 8;
      for (let l1i = 0; l1i < this.l1.length; l1i++) {
        const t = this.l2(l1i);
        if (t === undefined) continue;
        uses.set(num(u64At(this.l1, l1i) & L1_OFFSET_MASK) / cs, { kind: 'l2' });
        for (let j = 0; j < per; j++) {
          const e = u64At(t, j);
          const virtual = (l1i * per + j) * cs;
          if (virtual >= h.size) break;
          if (e & L2_COMPRESSED) {
            const x = 62 - (h.clusterBits - 8);
            const off = num(e & ((1n << BigInt(x)) - 1n));
            uses.set(Math.floor(off / cs), { kind: 'compressed', virtual });
          } else {
            const off = num(e & L1_OFFSET_MASK);
            if (off !== 0 && (e & L2_ZERO) === 0n) uses.set(off / cs, { kind: 'data', virtual });
          }
        }
      }
      this.uses = uses;
    }
    const u = this.uses.get(Math.floor(offset / cs));
    if (u === undefined) return { what: 'qcow2 metadata or unused cluster' };
    if (u.kind === 'l2') return { what: 'qcow2 L2 table' };
    if (u.kind === 'compressed') return { path: 'disk', what: `compressed clusters of disk (from virtual offset ${u.virtual})` };
    return { path: 'disk', offsetInFile: u.virtual + (offset % cs), what: 'data of disk' };
  }
}

/**
 * One zstd frame of at most `cs` bytes. The stored length is rounded up to whole sectors, so
 * padding follows the frame: once the frame has given the whole cluster, what comes after is not
 * read (fzstd would take the padding for the start of another frame).
 */
function unzstdCluster(data: Uint8Array, cs: number): Uint8Array {
  const out = new Uint8Array(cs);
  let got = 0;
  const d = new ZstdDecompress((chunk) => {
    if (got + chunk.length > cs) throw new Error(`more than ${cs} bytes`);
    out.set(chunk, got);
    got += chunk.length;
  });
  try {
    d.push(data, true);
  } catch (err) {
    if (got !== cs) throw err;
  }
  return got === cs ? out : out.subarray(0, got);
}

function readTable(src: ByteSource, offset: number, entries: number): BigUint64Array {
  const b = src.read(offset, entries * 8);
  const out = new BigUint64Array(entries);
  const dv = new DataView(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < entries; i++) out[i] = dv.getBigUint64(i * 8, false);
  return out;
}

function qcow2View(q: Qcow2, src: ByteSource): ImageView {
  const disk = q.disk();
  const entry: InnerEntry = { path: 'disk', type: 'file', size: disk.size, executable: false };
  const h = q.header;
  const notes = [h.compression === 'zstd' ? 'zstd clusters' : '', h.dirty ? 'dirty' : '', h.corrupt ? 'marked corrupt' : ''].filter(Boolean);
  return {
    kind: 'qcow2',
    description: `qcow2 v${h.version} (${disk.size}-byte disk, ${h.clusterSize}-byte clusters${notes.length > 0 ? `, ${notes.join(', ')}` : ''})`,
    source: src,
    entries: () => [{ path: '', type: 'dir', size: 0 }, entry],
    *read(e) {
      if (e.path !== 'disk') throw new NixSealError('EUSAGE', `Cannot read ${e.path} in ${q.name}: no such file`, { path: e.path });
      yield* readRange(disk, 0, disk.size);
    },
    fileSource: (e) => (e.path === 'disk' ? disk : undefined),
    locate: (offset) => q.locate(offset),
  };
}

/** Detection reads the header up to the virtual size (QH.size, 8 bytes). */
const DETECT_HEADER_MIN = 32;
const MIN_CLUSTER_BITS = 9;
const MAX_CLUSTER_BITS = 21;

/** qcow2 (QEMU) from the file's first bytes: "QFI\xfb", version 2 or 3, cluster bits 9…21 (else a near miss). */
export function detectQcow2(head: Uint8Array): Verdict {
  if (head.length < DETECT_HEADER_MIN || bytes.be32(head, 0) !== MAGIC) return undefined;
  const version = bytes.be32(head, QH.version);
  const clusterBits = bytes.be32(head, QH.clusterBits);
  if (version !== 2 && version !== 3) return undefined; // another format version: not one the reader knows
  if (clusterBits < MIN_CLUSTER_BITS || clusterBits > MAX_CLUSTER_BITS) return { format: 'qcow2', offset: 0, nearMiss: `cluster bits ${clusterBits}` };
  return { format: 'qcow2', offset: 0, why: `qcow2 version ${version} header, ${2 ** clusterBits}-byte clusters, virtual size ${bytes.be64(head, QH.size)}` };
}

/** qcow2: detectQcow2; the reader checks the rest of the header. */
export const qcow2Reader: ImageReader = {
  kind: 'qcow2',
  detect: (src) => detectQcow2(headOf(src)) !== undefined,
  open(src, name) {
    return qcow2View(new Qcow2(src, name), src);
  },
};
