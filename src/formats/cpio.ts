/**
 * Reading cpio archives (newc "070701", crc "070702", odc "070707") as an ImageView: member data
 * is stored as is, so each file is a window of the archive and an image inside nests. The writer
 * of initrds is cpio-newc.ts; this is the reader of any cpio the tools make. As the kernel's
 * unpacker does, zero padding after a trailer is skipped and a further archive may follow (a
 * later member replaces an earlier one); anything else after a trailer (an initrd's compressed
 * second part) becomes a file entry named `(data after the cpio archive at offset N)`, so that the
 * nesting code opens it rather than it going unseen.
 */
import { NixSealError } from '../errors.js';
import type { ByteSource } from './byte-source.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, type ImageReader, type ImageView, type InnerEntry } from './image.js';
import * as bytes from './bytes.js';
import { headOf, type Verdict } from './detection.js';
import { normalisePath, readRange, TreeBuilder, windowedView, type Region } from './archive-view.js';
import { NEWC_CRC_MAGIC, NEWC_HEADER_SIZE, NEWC_MAGIC, NEWC_TRAILER_NAME } from './cpio-newc.js';

export const ODC_MAGIC = '070707';
const ODC_HEADER_SIZE = 76;
/** odc fields: [offset, width] of the octal fields the reader uses. */
const ODC = { dev: [6, 6], ino: [12, 6], mode: [18, 6], nlink: [36, 6], namesize: [59, 6], filesize: [65, 11] } as const;
/** newc fields: offsets of the 8-hex-digit fields the reader uses. */
const NEWC = { ino: 6, mode: 14, nlink: 38, filesize: 54, devmajor: 62, devminor: 70, namesize: 94, check: 102 } as const;
/** Budgets against hostile archives. */
const MAX_ENTRIES = 1_000_000;
const MAX_NAME = 65536;
const MAX_LINK_TARGET = 65536;

type Format = 'newc' | 'crc' | 'odc';

function failer(name: string) {
  return (why: string, offset: number): NixSealError => new NixSealError('EFORMAT', `Cannot read ${name}: ${why} at offset ${offset}`, { path: name, offset });
}

const latin1 = (b: Uint8Array): string => String.fromCharCode(...b);
const decoder = new TextDecoder('utf-8');
const pad4 = (n: number): number => (4 - (n % 4)) % 4;

function formatOf(magic: string): Format | undefined {
  return magic === NEWC_MAGIC ? 'newc' : magic === NEWC_CRC_MAGIC ? 'crc' : magic === ODC_MAGIC ? 'odc' : undefined;
}

interface RawHeader {
  format: Format;
  ino: string;
  mode: number;
  nlink: number;
  namesize: number;
  filesize: number;
  check: number;
  size: number; // of the fixed header
}

function parseHeader(h: Uint8Array, format: Format): RawHeader | string {
  if (format === 'odc') {
    const f = (k: keyof typeof ODC): number | undefined => {
      const t = latin1(h.subarray(ODC[k][0], ODC[k][0] + ODC[k][1]));
      return /^[0-7]+$/.test(t) ? parseInt(t, 8) : undefined;
    };
    const vals = { dev: f('dev'), ino: f('ino'), mode: f('mode'), nlink: f('nlink'), namesize: f('namesize'), filesize: f('filesize') };
    for (const [k, v] of Object.entries(vals)) if (v === undefined) return `a malformed ${k} field (octal digits expected)`;
    return { format, ino: `${vals.dev}:${vals.ino}`, mode: vals.mode!, nlink: vals.nlink!, namesize: vals.namesize!, filesize: vals.filesize!, check: 0, size: ODC_HEADER_SIZE };
  }
  const text = latin1(h.subarray(0, NEWC_HEADER_SIZE));
  const f = (k: keyof typeof NEWC): number | undefined => {
    const t = text.slice(NEWC[k], NEWC[k] + 8);
    return /^[0-9a-fA-F]{8}$/.test(t) ? parseInt(t, 16) : undefined;
  };
  for (let at = 6; at < NEWC_HEADER_SIZE; at += 8) if (!/^[0-9a-fA-F]{8}$/.test(text.slice(at, at + 8))) return `a malformed header field at byte ${at} (hex digits expected)`;
  return { format, ino: `${f('devmajor')}:${f('devminor')}:${f('ino')}`, mode: f('mode')!, nlink: f('nlink')!, namesize: f('namesize')!, filesize: f('filesize')!, check: f('check')!, size: NEWC_HEADER_SIZE };
}

export interface CpioArchive {
  entries: InnerEntry[];
  regions: Region[];
  formats: Set<Format>;
  /** crc format: each data window's expected checksum (sum of bytes mod 2^32), by window offset. */
  checks: Map<number, number>;
}

interface Member {
  entry: InnerEntry;
  header: RawHeader;
}

export function readCpio(src: ByteSource, name: string): CpioArchive {
  const failAt = failer(name);
  let pos = 0;
  const tree = new TreeBuilder((why) => failAt(why, pos), MAX_ENTRIES);
  const regions: Region[] = [];
  const formats = new Set<Format>();
  const checks = new Map<number, number>();
  const members: Member[] = [];
  let afterTrailer = false;
  for (;;) {
    if (afterTrailer) {
      // Zero padding to the next archive, read a block at a time.
      const padStart = pos;
      while (pos < src.size) {
        const n = Math.min(4096, src.size - pos);
        const b = src.read(pos, n);
        let i = 0;
        while (i < n && b[i] === 0) i++;
        pos += i;
        if (i < n) break;
      }
      if (pos > padStart) regions.push({ offset: padStart, length: pos - padStart, what: 'padding after a cpio trailer' });
      if (pos === src.size) break;
      const magic = src.size - pos >= 6 ? formatOf(latin1(src.read(pos, 6))) : undefined;
      if (magic === undefined || pos % 4 !== 0) {
        const path = `(data after the cpio archive at offset ${pos})`;
        members.push({ entry: { path, type: 'file', size: src.size - pos, executable: false, window: { offset: pos, length: src.size - pos } }, header: { format: 'newc', ino: '', mode: 0, nlink: 1, namesize: 0, filesize: 0, check: 0, size: 0 } });
        break;
      }
    }
    if (pos === src.size) throw failAt(afterTrailer || pos > 0 ? `no ${NEWC_TRAILER_NAME} entry before the end` : 'the archive is empty', pos);
    if (src.size - pos < 6) throw failAt('a truncated header', pos);
    const magic = latin1(src.read(pos, 6));
    const format = formatOf(magic);
    if (format === undefined) throw failAt(`not a cpio header (magic ${JSON.stringify(magic)})`, pos);
    formats.add(format);
    const hsize = format === 'odc' ? ODC_HEADER_SIZE : NEWC_HEADER_SIZE;
    if (src.size - pos < hsize) throw failAt('a truncated header', pos);
    const h = parseHeader(src.read(pos, hsize), format);
    if (typeof h === 'string') throw failAt(h, pos);
    if (h.namesize === 0 || h.namesize > MAX_NAME) throw failAt(`a name of ${h.namesize} bytes`, pos);
    const nameAt = pos + hsize;
    const nameEnd = nameAt + h.namesize;
    const dataAt = format === 'odc' ? nameEnd : nameEnd + pad4(nameEnd - pos);
    const dataEnd = dataAt + h.filesize;
    const next = format === 'odc' ? dataEnd : dataEnd + pad4(h.filesize);
    if (dataEnd > src.size) throw failAt(`the member at this offset (${h.namesize}-byte name, ${h.filesize} bytes of data) runs past the end of the archive`, pos);
    const nameBytes = src.read(nameAt, h.namesize);
    if (nameBytes[h.namesize - 1] !== 0) throw failAt('a name is not NUL-terminated', nameAt);
    const rawName = decoder.decode(nameBytes.subarray(0, h.namesize - 1));
    const headerAt = pos;
    if (rawName === NEWC_TRAILER_NAME) {
      regions.push({ offset: pos, length: Math.min(next, src.size) - pos, what: 'cpio trailer' });
      afterTrailer = true;
      pos = Math.min(next, src.size);
      continue;
    }
    afterTrailer = false;
    const path = normalisePath(rawName, (why) => failAt(why, headerAt));
    const type = h.mode & S_IFMT;
    let entry: InnerEntry;
    if (type === S_IFDIR) entry = { path, type: 'dir', size: 0 };
    else if (type === S_IFLNK) {
      if (h.filesize > MAX_LINK_TARGET) throw failAt(`a ${h.filesize}-byte symlink target`, pos);
      entry = { path, type: 'symlink', size: 0, target: decoder.decode(src.read(dataAt, h.filesize)) };
    } else if (type === S_IFREG) {
      entry = { path, type: 'file', size: h.filesize, executable: (h.mode & 0o100) !== 0, window: { offset: dataAt, length: h.filesize } };
      if (format === 'crc') checks.set(dataAt, h.check);
    } else entry = { path, type: 'special', size: 0 };
    entry.recordOffset = headerAt;
    members.push({ entry, header: h });
    const label = path === '' ? '.' : path;
    regions.push({ offset: headerAt, length: dataAt - headerAt, path, what: `cpio header of ${label}` });
    pos = Math.min(next, src.size);
  }
  // Hard links: GNU cpio stores the data once (newc: with the last name; the others say size 0).
  const holders = new Map<string, InnerEntry>();
  for (const m of members) if (m.entry.type === 'file' && m.header.nlink > 1 && m.entry.size > 0) holders.set(m.header.ino, m.entry);
  for (const m of members) {
    if (m.entry.type === 'file' && m.header.nlink > 1 && m.entry.size === 0) {
      const d = holders.get(m.header.ino);
      if (d !== undefined) Object.assign(m.entry, { size: d.size, window: d.window });
    }
    tree.add(m.entry);
  }
  return { entries: tree.entries(), regions, formats, checks };
}

function cpioView(src: ByteSource, name: string): ImageView {
  const a = readCpio(src, name);
  const base = windowedView({ kind: 'cpio', description: `cpio (${[...a.formats].join(', ')})`, source: src, entries: a.entries, regions: a.regions, gap: 'padding' });
  if (a.checks.size === 0) return base;
  const byPath = new Map(a.entries.map((e) => [e.path, e]));
  return {
    ...base,
    entries: base.entries,
    *read(entry) {
      // crc format: the checksum of the data, checked as it is read.
      const e = byPath.get(entry.path);
      const w = e?.window;
      const want = w === undefined ? undefined : a.checks.get(w.offset);
      if (w === undefined || want === undefined) {
        yield* base.read(entry);
        return;
      }
      let sum = 0;
      // Unchecked per-byte sum: u8At and for…of are measurably slower here (BENCHMARKS.md, "Figures behind code choices")
      for (const c of readRange(src, w.offset, w.length)) {
        for (let i = 0; i < c.length; i++) sum = (sum + c[i]!) >>> 0;
        yield c;
      }
      if (sum !== want) throw failer(name)(`the checksum of ${entry.path}'s data does not match its header (${sum} ≠ ${want})`, w.offset);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Detection

const MAGIC_SIZE = 6;
/** A first member's name longer than PATH_MAX is no cpio a tool made. */
const DETECT_MAX_NAME = 4096;

/**
 * cpio from the file's first bytes (`head`): "new ASCII" (070701), its CRC variant (070702) or
 * the portable "odc" format (070707), a header of well-formed digits, a first name of sane size
 * ending in a NUL, and newc's unused check field zero (else a near miss).
 */
export function detectCpio(head: Uint8Array): Verdict {
  const magic = bytes.latin1(head, 0, MAGIC_SIZE);
  if (magic === NEWC_MAGIC || magic === NEWC_CRC_MAGIC) {
    if (!bytes.allMatch(head, MAGIC_SIZE, NEWC_HEADER_SIZE - MAGIC_SIZE, bytes.isHexDigit)) return undefined;
    const format = magic === NEWC_MAGIC ? 'cpio-newc' : 'cpio-crc';
    const field = (at: number): number => parseInt(bytes.latin1(head, at, 8), 16);
    const nameSize = field(NEWC.namesize);
    // A magic and 104 hex digits are no accident: a bad name or check field is a broken cpio.
    if (nameSize < 1 || nameSize > DETECT_MAX_NAME) return { format, offset: 0, nearMiss: `a first name of ${nameSize} bytes` };
    if (magic === NEWC_MAGIC && field(NEWC.check) !== 0) return { format, offset: 0, nearMiss: 'a newc check field that is not zero' };
    const nul = NEWC_HEADER_SIZE + nameSize - 1;
    if (nul < head.length && head[nul] !== 0) return { format, offset: 0, nearMiss: 'a first name without its NUL' };
    return { format, offset: 0, why: `cpio ${magic === NEWC_MAGIC ? 'newc' : 'crc'} header, first entry "${bytes.printableName(head, NEWC_HEADER_SIZE, nameSize - 1)}"` };
  }
  if (magic === ODC_MAGIC) {
    if (!bytes.allMatch(head, MAGIC_SIZE, ODC_HEADER_SIZE - MAGIC_SIZE, bytes.isOctalDigit)) return undefined;
    const nameSize = parseInt(bytes.latin1(head, ODC.namesize[0], ODC.namesize[1]), 8);
    if (nameSize < 1 || nameSize > DETECT_MAX_NAME) return { format: 'cpio-odc', offset: 0, nearMiss: `a first name of ${nameSize} bytes` };
    const nul = ODC_HEADER_SIZE + nameSize - 1;
    if (nul < head.length && head[nul] !== 0) return { format: 'cpio-odc', offset: 0, nearMiss: 'a first name without its NUL' };
    return { format: 'cpio-odc', offset: 0, why: `cpio odc header, first entry "${bytes.printableName(head, ODC_HEADER_SIZE, nameSize - 1)}"` };
  }
  return undefined;
}

/** cpio: detectCpio. */
export const cpioReader: ImageReader = {
  kind: 'cpio',
  detect: (src) => detectCpio(headOf(src)) !== undefined,
  open(src, name) {
    return cpioView(src, name);
  },
};
