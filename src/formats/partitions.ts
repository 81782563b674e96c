/**
 * Partition tables (MBR with its extended/logical chain, GPT with its backup header): a disk image
 * seen as one file per partition, so that the filesystem in each (ext4, FAT, squashfs…) is opened
 * by the generic nesting code. Entries are named `partition N`, N as Linux numbers them (sdaN):
 * MBR primaries 1–4, logical partitions 5 on; GPT entry index + 1. The MBR extended container is
 * not an entry (its logical partitions are), nor is an empty GPT slot.
 */
import { itemAt } from '../checked-index.js';
import { NixSealError } from '../errors.js';
import type { ByteSource } from './byte-source.js';
import { crc32 } from './crc32.js';
import type { ImageReader, ImageView, InnerEntry } from './image.js';
import * as bytes from './bytes.js';
import { headOf, type Verdict } from './detection.js';
import { windowedView, type Region } from './archive-view.js';

const MBR_SIZE = 512;
const MBR_SIGNATURE = 0xaa55;
const MBR_TABLE = 446;
const MBR_ENTRY = 16;
const MBR_PROTECTIVE = 0xee;
const EXTENDED_TYPES = new Set([0x05, 0x0f, 0x85]);
const GPT_SIGNATURE = 'EFI PART';
const GPT_HEADER_MIN = 92;
/** GPT header fields (UEFI spec, table 5-5). */
const GH = { headerSize: 12, headerCrc: 16, myLba: 24, alternateLba: 32, firstUsable: 40, lastUsable: 48, entriesLba: 72, entryCount: 80, entrySize: 84, entriesCrc: 88 } as const;
/** Budgets against hostile tables. */
const MAX_LOGICAL = 256;
const MAX_GPT_ENTRIES = 4096;
const MAX_GPT_ENTRY_SIZE = 4096;

export interface Partition {
  /** Linux's number: 1-based. */
  number: number;
  /** Byte offset and length on the disk. */
  offset: number;
  length: number;
  /** MBR: the type byte, e.g. "0x83". GPT: the type GUID, lower case. */
  type: string;
  /** GPT: the partition name. */
  name?: string;
  /** GPT: the unique partition GUID. */
  guid?: string;
}

export interface PartitionTable {
  scheme: 'mbr' | 'gpt';
  sectorSize: number;
  partitions: Partition[];
  /** Header, table and boot-record ranges, for locate(). */
  regions: Region[];
  /** GPT: whether the primary header was unreadable and the backup was used. */
  usedBackup?: boolean;
  diskGuid?: string;
}

function failer(name: string) {
  return (why: string, offset: number): NixSealError => new NixSealError('EFORMAT', `Cannot read ${name}: ${why} at offset ${offset}`, { path: name, offset });
}

const u16 = bytes.le16;
const u32 = bytes.le32;
/** A 64-bit little-endian value; past 2^53 it is returned as Infinity (always out of range). */
function u64(b: Uint8Array, at: number): number {
  const hi = u32(b, at + 4);
  if (hi >= 0x200000) return Infinity;
  return hi * 2 ** 32 + u32(b, at);
}

function guid(b: Uint8Array, at: number): string {
  const h = (i: number, n: number, le: boolean): string => {
    const bytes = [...b.subarray(at + i, at + i + n)];
    if (le) bytes.reverse();
    return bytes.map((x) => x.toString(16).padStart(2, '0')).join('');
  };
  return `${h(0, 4, true)}-${h(4, 2, true)}-${h(6, 2, true)}-${h(8, 2, false)}-${h(10, 6, false)}`;
}

/** Names a GPT type GUID for messages when it is a common one. */
const GPT_TYPES: Record<string, string> = {
  'c12a7328-f81f-11d2-ba4b-00a0c93ec93b': 'EFI system',
  '0fc63daf-8483-4772-8e79-3d69d8477de4': 'Linux filesystem',
  '21686148-6449-6e6f-744e-656564454649': 'BIOS boot',
  '0657fd6d-a4ab-43c4-84e5-0933c84b4f4f': 'Linux swap',
  'ebd0a0a2-b9e5-4433-87c0-68b6b72699c7': 'Microsoft basic data',
  '4f68bce3-e8cd-4db1-96e7-fbcaf984b709': 'Linux root (x86-64)',
};

interface MbrSlot {
  type: number;
  status: number;
  start: number;
  count: number;
}

function mbrSlots(sector: Uint8Array): MbrSlot[] {
  const out: MbrSlot[] = [];
  for (let i = 0; i < 4; i++) {
    const at = MBR_TABLE + i * MBR_ENTRY;
    out.push({ status: bytes.u8(sector, at), type: bytes.u8(sector, at + 4), start: u32(sector, at + 8), count: u32(sector, at + 12) });
  }
  return out;
}

/** A FAT/NTFS/exFAT boot sector also ends in 55 AA: its file system name tells it apart. */
function isVolumeBootRecord(s: Uint8Array): boolean {
  const text = (at: number, n: number): string => String.fromCharCode(...s.subarray(at, at + n));
  return /^(FAT|NTFS|EXFAT)/.test(text(54, 5)) || /^(FAT32)/.test(text(82, 5)) || /^(NTFS|EXFAT)/.test(text(3, 5));
}

/** An MBR: the signature, sane status bytes, at least one used slot, and not a volume boot record. */
function looksLikeMbr(s: Uint8Array): boolean {
  if (s.length < MBR_SIZE || u16(s, 510) !== MBR_SIGNATURE) return false;
  const slots = mbrSlots(s);
  if (slots.some((p) => p.status !== 0 && p.status !== 0x80)) return false;
  if (!slots.some((p) => p.type !== 0 && p.count !== 0)) return false;
  return !isVolumeBootRecord(s);
}

function gptHeaderAt(src: ByteSource, sectorSize: number, lba: number): Uint8Array | undefined {
  const at = lba * sectorSize;
  if (!Number.isSafeInteger(at) || at + sectorSize > src.size) return undefined;
  const h = src.read(at, sectorSize);
  return String.fromCharCode(...h.subarray(0, 8)) === GPT_SIGNATURE ? h : undefined;
}

/** Reads one GPT (header at `lba`): header CRC, entries CRC, every entry inside the usable area. */
function readGpt(src: ByteSource, name: string, sectorSize: number, lba: number, backup: boolean): PartitionTable {
  const fail = failer(name);
  const hdrOff = lba * sectorSize;
  const which = backup ? 'the backup GPT header' : 'the GPT header';
  const h = gptHeaderAt(src, sectorSize, lba);
  if (h === undefined) throw fail(`${which} is missing ("EFI PART" expected)`, hdrOff);
  const size = u32(h, GH.headerSize);
  if (size < GPT_HEADER_MIN || size > sectorSize) throw fail(`${which} has size ${size}`, hdrOff + GH.headerSize);
  const copy = Uint8Array.from(h.subarray(0, size));
  copy.fill(0, GH.headerCrc, GH.headerCrc + 4);
  if (crc32(copy) !== u32(h, GH.headerCrc)) throw fail(`${which}'s CRC32 does not match`, hdrOff + GH.headerCrc);
  if (u64(h, GH.myLba) !== lba) throw fail(`${which} says it is at sector ${u64(h, GH.myLba)}, not ${lba}`, hdrOff + GH.myLba);
  const sectors = Math.floor(src.size / sectorSize);
  const firstUsable = u64(h, GH.firstUsable);
  const lastUsable = u64(h, GH.lastUsable);
  if (!(firstUsable <= lastUsable && lastUsable < sectors)) throw fail(`${which}'s usable sectors ${firstUsable}–${lastUsable} are not on the ${sectors}-sector disk`, hdrOff + GH.firstUsable);
  const entriesLba = u64(h, GH.entriesLba);
  const count = u32(h, GH.entryCount);
  const esize = u32(h, GH.entrySize);
  if (count > MAX_GPT_ENTRIES) throw fail(`${which} declares ${count} partition entries (at most ${MAX_GPT_ENTRIES} read)`, hdrOff + GH.entryCount);
  if (esize < 128 || esize > MAX_GPT_ENTRY_SIZE || esize % 8 !== 0) throw fail(`${which} declares ${esize}-byte partition entries`, hdrOff + GH.entrySize);
  const arrOff = entriesLba * sectorSize;
  const arrLen = count * esize;
  if (!Number.isSafeInteger(arrOff) || entriesLba < 1 || arrOff + arrLen > src.size) throw fail(`the partition entries (sector ${entriesLba}, ${arrLen} bytes) are outside the disk`, hdrOff + GH.entriesLba);
  const arr = src.read(arrOff, arrLen);
  if (crc32(arr) !== u32(h, GH.entriesCrc)) throw fail(`the partition entries' CRC32 does not match ${which}`, arrOff);
  const partitions: Partition[] = [];
  for (let i = 0; i < count; i++) {
    const at = i * esize;
    const type = guid(arr, at);
    if (type === '00000000-0000-0000-0000-000000000000') continue;
    const first = u64(arr, at + 32);
    const last = u64(arr, at + 40);
    if (!(first >= firstUsable && first <= last && last <= lastUsable)) {
      throw fail(`partition ${i + 1} (sectors ${first}–${last}) is outside the usable sectors ${firstUsable}–${lastUsable}`, arrOff + at + 32);
    }
    const raw = arr.subarray(at + 56, at + 128);
    let n = '';
    for (let k = 0; k + 1 < raw.length; k += 2) {
      const c = u16(raw, k);
      if (c === 0) break;
      n += String.fromCharCode(c);
    }
    partitions.push({ number: i + 1, offset: first * sectorSize, length: (last - first + 1) * sectorSize, type, name: n, guid: guid(arr, at + 16) });
  }
  checkOverlaps(partitions, fail, arrOff);
  const tag = backup ? ' (backup)' : '';
  const regions: Region[] = [
    { offset: 0, length: sectorSize, what: 'protective MBR' },
    { offset: hdrOff, length: sectorSize, what: `GPT header${tag}` },
    { offset: arrOff, length: arrLen, what: `GPT partition entries${tag}` },
  ];
  // The other copy, when it is where this header says and intact enough to name.
  const alt = u64(h, GH.alternateLba);
  const ah = Number.isSafeInteger(alt) && alt < sectors ? gptHeaderAt(src, sectorSize, alt) : undefined;
  if (ah !== undefined && alt !== lba) {
    const otag = backup ? '' : ' (backup)';
    regions.push({ offset: alt * sectorSize, length: sectorSize, what: `GPT header${otag}` });
    const aArr = u64(ah, GH.entriesLba) * sectorSize;
    if (Number.isSafeInteger(aArr) && aArr + arrLen <= src.size) regions.push({ offset: aArr, length: arrLen, what: `GPT partition entries${otag}` });
  }
  return { scheme: 'gpt', sectorSize, partitions, regions, usedBackup: backup, diskGuid: guid(h, 56) };
}

function checkOverlaps(parts: Partition[], fail: (why: string, offset: number) => NixSealError, at: number): void {
  const sorted = [...parts].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const a = itemAt(sorted, i - 1);
    const b = itemAt(sorted, i);
    if (b.offset < a.offset + a.length) throw fail(`partitions ${a.number} and ${b.number} overlap`, at);
  }
}

function readMbr(src: ByteSource, name: string, mbr: Uint8Array): PartitionTable {
  const fail = failer(name);
  const S = MBR_SIZE;
  const sectors = Math.floor(src.size / S);
  const partitions: Partition[] = [];
  const regions: Region[] = [
    { offset: 0, length: MBR_TABLE, what: 'master boot record (boot code)' },
    { offset: MBR_TABLE, length: S - MBR_TABLE, what: 'master boot record (partition table)' },
  ];
  const inDisk = (start: number, count: number, what: string, at: number): void => {
    if (start + count > sectors) throw fail(`${what} (sectors ${start}–${start + count - 1}) extends past the end of the ${sectors}-sector disk`, at);
  };
  const slots = mbrSlots(mbr);
  let extended: MbrSlot | undefined;
  slots.forEach((p, i) => {
    if (p.type === 0 || p.count === 0) return;
    const at = MBR_TABLE + i * MBR_ENTRY + 8;
    if (p.start === 0) throw fail(`partition ${i + 1} starts at sector 0 (the MBR itself)`, at);
    inDisk(p.start, p.count, `partition ${i + 1}`, at);
    if (EXTENDED_TYPES.has(p.type)) {
      if (extended !== undefined) throw fail('more than one extended partition', at);
      extended = p;
      return;
    }
    partitions.push({ number: i + 1, offset: p.start * S, length: p.count * S, type: `0x${p.type.toString(16).padStart(2, '0')}` });
  });
  if (extended !== undefined) {
    // The chain of extended boot records: each names one logical partition (relative to itself)
    // and the next record (relative to the extended partition's start).
    const ext = extended;
    const seen = new Set<number>();
    let ebr = ext.start;
    let number = 5;
    for (;;) {
      const at = ebr * S;
      if (seen.has(ebr)) throw fail(`the extended boot records loop (sector ${ebr} again)`, at);
      if (seen.size >= MAX_LOGICAL) throw fail(`more than ${MAX_LOGICAL} logical partitions`, at);
      seen.add(ebr);
      if (ebr < ext.start || ebr >= ext.start + ext.count) throw fail(`an extended boot record at sector ${ebr} is outside the extended partition`, at);
      const rec = src.read(at, S);
      if (u16(rec, 510) !== MBR_SIGNATURE) throw fail('an extended boot record lacks its 55 AA signature', at + 510);
      const [logical, next] = mbrSlots(rec);
      regions.push({ offset: at, length: S, what: `extended boot record of partition ${number}` });
      if (logical !== undefined && logical.type !== 0 && logical.count !== 0) {
        const start = ebr + logical.start;
        if (logical.start === 0 || start + logical.count > ext.start + ext.count) {
          throw fail(`logical partition ${number} (sectors ${start}–${start + logical.count - 1}) is outside the extended partition`, at + MBR_TABLE + 8);
        }
        partitions.push({ number, offset: start * S, length: logical.count * S, type: `0x${logical.type.toString(16).padStart(2, '0')}` });
        number++;
      }
      if (next === undefined || next.type === 0 || next.count === 0) break;
      ebr = ext.start + next.start;
    }
  }
  checkOverlaps(partitions, fail, MBR_TABLE);
  return { scheme: 'mbr', sectorSize: S, partitions, regions };
}

/** Reads the partition table of a disk image: GPT when there is one (a protective MBR or "EFI PART"), else MBR. */
export function readPartitionTable(src: ByteSource, name: string): PartitionTable {
  const fail = failer(name);
  if (src.size < MBR_SIZE) throw fail(`a ${src.size}-byte file is too small for a partition table`, 0);
  const mbr = src.read(0, MBR_SIZE);
  for (const ss of [512, 4096]) if (gptHeaderAt(src, ss, 1) !== undefined) return readGptOrBackup(src, name, ss);
  const slots = u16(mbr, 510) === MBR_SIGNATURE ? mbrSlots(mbr) : [];
  if (slots.some((p) => p.type === MBR_PROTECTIVE)) {
    // A protective MBR whose primary header is gone: the backup is in the disk's last sector.
    for (const ss of [512, 4096]) {
      const last = Math.floor(src.size / ss) - 1;
      if (last > 1 && gptHeaderAt(src, ss, last) !== undefined) return readGpt(src, name, ss, last, true);
    }
    throw fail('a protective MBR (type 0xee) but no GPT header, primary or backup', MBR_TABLE);
  }
  if (!looksLikeMbr(mbr)) throw fail('no MBR (55 AA signature, partition entries) and no GPT header', 0);
  return readMbr(src, name, mbr);
}

function readGptOrBackup(src: ByteSource, name: string, ss: number): PartitionTable {
  try {
    return readGpt(src, name, ss, 1, false);
  } catch (primaryErr) {
    if (!(primaryErr instanceof NixSealError)) throw primaryErr;
    // The primary is corrupt: the backup header (last sector, or where the primary says).
    const last = Math.floor(src.size / ss) - 1;
    if (last <= 1 || gptHeaderAt(src, ss, last) === undefined) throw primaryErr;
    try {
      return readGpt(src, name, ss, last, true);
    } catch {
      throw primaryErr;
    }
  }
}

function describe(t: PartitionTable): string {
  if (t.scheme === 'mbr') return `MBR partition table (${t.partitions.length} partitions)`;
  return `GPT partition table (${t.partitions.length} partitions, ${t.sectorSize}-byte sectors${t.usedBackup ? ', primary header corrupt: backup used' : ''})`;
}

function tableView(t: PartitionTable, src: ByteSource): ImageView {
  const entries: InnerEntry[] = [{ path: '', type: 'dir', size: 0 }];
  const regions = [...t.regions];
  for (const p of t.partitions) {
    const path = `partition ${p.number}`;
    entries.push({ path, type: 'file', size: p.length, executable: false, window: { offset: p.offset, length: p.length } });
  }
  return windowedView({ kind: t.scheme === 'mbr' ? 'mbr' : 'gpt', description: describe(t), source: src, entries, regions, gap: 'unpartitioned space' });
}

/** The GPT type's common name, for messages ("Linux filesystem"), else the GUID. */
export function partitionTypeName(p: Partition): string {
  return GPT_TYPES[p.type] ?? p.type;
}

// ---------------------------------------------------------------------------------------------
// Detection

const GPT_SIGNATURE_BYTES = bytes.magicBytes(GPT_SIGNATURE);
const GPT_REVISION_1_0 = 0x00010000;
const GH_REVISION = 8;
/** MBR entry fields (offsets within a 16-byte entry). */
const ME = { status: 0, type: 4, start: 8, count: 12 } as const;
const MBR_ACTIVE = 0x80;
/** Sector counts are 32-bit: an MBR partition ends within 2^32 sectors. */
const MBR_MAX_SECTORS = 2 ** 32;

/**
 * GPT from the disk's first bytes (`head`): "EFI PART" in LBA 1 (512- or 4096-byte sectors),
 * revision 1.0, and its header CRC32. The signature with a damaged header, or a protective MBR
 * without a primary header, is a near miss: the reader tries the backup header at the disk's end.
 */
export function detectGpt(head: Uint8Array): Verdict {
  let signatureAt: number | undefined;
  for (const sector of [512, 4096]) {
    const at = sector; // LBA 1
    if (!bytes.startsWith(head, at, GPT_SIGNATURE_BYTES)) continue;
    signatureAt ??= at;
    if (at + GPT_HEADER_MIN > head.length) continue;
    const headerSize = bytes.le32(head, at + GH.headerSize);
    if (bytes.le32(head, at + GH_REVISION) !== GPT_REVISION_1_0 || headerSize < GPT_HEADER_MIN || headerSize > sector || at + headerSize > head.length) continue;
    if (bytes.le64(head, at + GH.myLba) !== 1) continue; // the primary header says it is at LBA 1
    const header = Uint8Array.from(head.subarray(at, at + headerSize));
    header.fill(0, GH.headerCrc, GH.headerCrc + 4);
    if (crc32(header) !== bytes.le32(head, at + GH.headerCrc)) continue;
    return { format: 'gpt', offset: at, why: `GPT header at ${at} (${sector}-byte sectors, ${bytes.le32(head, at + GH.entryCount)} partition entries), CRC32 valid` };
  }
  if (signatureAt !== undefined) return { format: 'gpt', offset: signatureAt, nearMiss: 'a damaged primary GPT header' };
  if (head.length >= MBR_SIZE && bytes.le16(head, MBR_SIZE - 2) === MBR_SIGNATURE && mbrSlots(head).some((p) => p.type === MBR_PROTECTIVE)) {
    return { format: 'gpt', offset: MBR_TABLE, nearMiss: 'a protective MBR without a primary GPT header' };
  }
  return undefined;
}

/**
 * MBR from the disk's first bytes (`head`): the 0x55AA signature and a partition table that makes
 * sense: boot flags 0x00 or 0x80, at least one partition, each starting after sector 0 and inside
 * 2 TiB. A protective MBR (type 0xEE) is not an MBR disk: detectGpt decides. Partition entries
 * that are there but out of range are a near miss.
 */
export function detectMbr(head: Uint8Array): Verdict {
  if (head.length < MBR_SIZE || bytes.le16(head, MBR_SIZE - 2) !== MBR_SIGNATURE) return undefined;
  let partitions = 0;
  let bad: number | undefined;
  for (let i = 0; i < 4; i++) {
    const e = MBR_TABLE + MBR_ENTRY * i;
    const status = bytes.u8(head, e + ME.status);
    const type = bytes.u8(head, e + ME.type);
    if (status !== 0 && status !== MBR_ACTIVE) return undefined;
    if (type === 0) continue;
    const start = bytes.le32(head, e + ME.start);
    const count = bytes.le32(head, e + ME.count);
    if (type === MBR_PROTECTIVE) return undefined;
    if (start === 0 || count === 0 || start + count > MBR_MAX_SECTORS) bad ??= i;
    else partitions++;
  }
  if (bad !== undefined) return { format: 'mbr', offset: MBR_TABLE + MBR_ENTRY * bad, nearMiss: `partition ${bad + 1} starts at sector 0, is empty or ends past 2 TiB` };
  if (partitions === 0) return undefined;
  return { format: 'mbr', offset: 0, why: `MBR partition table with ${partitions} partition${partitions === 1 ? '' : 's'}` };
}

/**
 * MBR and GPT partition tables (after ISO 9660 in the registry: a hybrid ISO is read as the ISO):
 * detectGpt or detectMbr, near misses included (the reader tries a GPT's backup header, and says
 * what is wrong with an MBR). A FAT boot sector also ends in 55 AA: the FAT reader takes it.
 */
export const partitionTableReader: ImageReader = {
  kind: 'partition-table',
  detect(src) {
    if (src.size < MBR_SIZE * 2) return false;
    const head = headOf(src);
    if (detectGpt(head) !== undefined) return true;
    return detectMbr(head) !== undefined && !isVolumeBootRecord(head);
  },
  open(src, name) {
    return tableView(readPartitionTable(src, name), src);
  },
};
