/**
 * tar archives (v7, ustar, GNU with long names and links, pax with path/linkpath/size) as an
 * ImageView: member data is stored uncompressed and contiguous, so each file is a window of the
 * archive and an image inside a tar nests. GNU sparse members and multi-volume archives are refused
 * (their data is not one range). Hard links read as their target's contents.
 */
import { u8At } from '../checked-index.js';
import { NixSealError } from '../errors.js';
import type { ByteSource } from './byte-source.js';
import type { ImageReader, ImageView, InnerEntry } from './image.js';
import * as bytes from './bytes.js';
import { headOf, type Detection } from './detection.js';
import { normalisePath, TreeBuilder, windowedView, type Region } from './archive-view.js';

const BLOCK = 512;
/** Header fields (POSIX ustar; GNU shares them up to the magic). */
const H = { name: 0, mode: 100, size: 124, chksum: 148, typeflag: 156, linkname: 157, magic: 257, prefix: 345 } as const;
/** Budgets against hostile archives. */
const MAX_ENTRIES = 1_000_000;
/** A GNU long name/link or a pax header bigger than this is refused (PATH_MAX is 4096). */
const MAX_META = 1 << 20;

function failer(name: string) {
  return (why: string, offset: number): NixSealError => new NixSealError('EFORMAT', `Cannot read ${name}: ${why} at offset ${offset}`, { path: name, offset });
}

const decoder = new TextDecoder('utf-8');

/** A NUL-terminated string field. */
function str(b: Uint8Array, at: number, len: number): string {
  const f = b.subarray(at, at + len);
  const z = f.indexOf(0);
  return decoder.decode(z < 0 ? f : f.subarray(0, z));
}

/** An octal field (NUL/space terminated, leading spaces) or GNU base-256; undefined if malformed. */
function num(b: Uint8Array, at: number, len: number): number | undefined {
  const f = b.subarray(at, at + len);
  const first = u8At(f, 0);
  if (first & 0x80) {
    if (first === 0xff) return undefined; // negative
    let v = first & 0x7f;
    for (const c of f.subarray(1)) {
      v = v * 256 + c;
      if (!Number.isSafeInteger(v)) return undefined;
    }
    return v;
  }
  let i = 0;
  while (i < f.length && f[i] === 0x20) i++;
  let v = 0;
  let digits = 0;
  for (; i < f.length; i++) {
    const c = u8At(f, i);
    if (c === 0 || c === 0x20) break;
    if (c < 0x30 || c > 0x37) return undefined;
    v = v * 8 + (c - 0x30);
    digits++;
  }
  for (; i < f.length; i++) if (f[i] !== 0 && f[i] !== 0x20) return undefined;
  return digits === 0 ? 0 : v;
}

/** Whether the block's checksum field matches (unsigned sum, or the signed sum old tars wrote). */
function checksumOk(b: Uint8Array): boolean {
  const want = num(b, H.chksum, 8);
  if (want === undefined) return false;
  const { unsigned, signed } = headerSums(b);
  return want === unsigned || want === signed;
}

/**
 * A header block's unsigned and signed byte sums, its checksum field counted as spaces. Indexed:
 * `for…of` over a Buffer is several times slower than an indexed loop per byte (BENCHMARKS.md,
 * "Figures behind code choices").
 */
function headerSums(b: Uint8Array): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const c = i >= H.chksum && i < H.chksum + 8 ? 0x20 : u8At(b, i);
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return { unsigned, signed };
}

function isZero(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** pax records "LEN key=value\n"; LEN counts the whole record. */
function paxRecords(data: Uint8Array, fail: (why: string) => NixSealError): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    let sp = pos;
    while (sp < data.length && data[sp] !== 0x20) sp++;
    const lenText = String.fromCharCode(...data.subarray(pos, sp));
    if (!/^[1-9][0-9]{0,7}$/.test(lenText)) {
      if (isZero(data.subarray(pos))) break; // some writers pad with NULs
      throw fail(`a pax record has no length (${JSON.stringify(lenText.slice(0, 20))})`);
    }
    const len = Number(lenText);
    if (pos + len > data.length || data[pos + len - 1] !== 0x0a) throw fail(`a pax record of ${len} bytes runs past its header or lacks its newline`);
    const rec = data.subarray(sp + 1, pos + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq < 0) throw fail('a pax record has no "="');
    out.set(decoder.decode(rec.subarray(0, eq)), decoder.decode(rec.subarray(eq + 1)));
    pos += len;
  }
  return out;
}

export interface TarArchive {
  entries: InnerEntry[];
  regions: Region[];
  /** e.g. "ustar", "GNU", "pax". */
  flavours: Set<string>;
}

/** Reads every member header of a tar archive (data is not read). */
export function readTar(src: ByteSource, name: string): TarArchive {
  const failAt = failer(name);
  let pos = 0;
  const tree = new TreeBuilder((why) => failAt(why, pos), MAX_ENTRIES);
  const regions: Region[] = [];
  const flavours = new Set<string>();
  let longName: string | undefined;
  let longLink: string | undefined;
  let pax = new Map<string, string>();
  const globalPax = new Map<string, string>();
  let pending: Region[] = []; // extension headers, named after the member they precede
  const readMeta = (at: number, size: number, what: string): Uint8Array => {
    if (size > MAX_META) throw failAt(`a ${what} of ${size} bytes (at most ${MAX_META})`, at);
    if (at + BLOCK + size > src.size) throw failAt(`the ${what} (${size} bytes) runs past the end of the archive`, at);
    return src.read(at + BLOCK, size);
  };
  for (;;) {
    if (pos === src.size) {
      if (pos === 0) throw failAt('the archive is empty', 0);
      break; // no end-of-archive blocks: GNU tar accepts this too
    }
    if (pos + BLOCK > src.size) throw failAt(`a partial header block (${src.size - pos} bytes)`, pos);
    const h = src.read(pos, BLOCK);
    if (isZero(h)) {
      if (pending.length > 0 || longName !== undefined || longLink !== undefined || pax.size > 0) throw failAt('the archive ends after an extended header, before its member', pos);
      regions.push({ offset: pos, length: src.size - pos, what: 'end-of-archive blocks' });
      break;
    }
    if (!checksumOk(h)) throw failAt('a header checksum does not match (not a tar header)', pos + H.chksum);
    const magic = String.fromCharCode(...h.subarray(H.magic, H.magic + 8));
    const ustar = magic.startsWith('ustar\0');
    const gnu = magic === 'ustar  \0';
    flavours.add(ustar ? 'ustar' : gnu ? 'GNU' : 'v7');
    const type = String.fromCharCode(bytes.u8(h, H.typeflag));
    const rawSize = num(h, H.size, 12);
    if (rawSize === undefined) throw failAt('a malformed size field', pos + H.size);
    const headerAt = pos;
    const next = (dataSize: number): number => headerAt + BLOCK + Math.ceil(dataSize / BLOCK) * BLOCK;
    switch (type) {
      case 'L':
      case 'K': {
        flavours.add('GNU');
        const v = str(readMeta(pos, rawSize, `GNU long ${type === 'L' ? 'name' : 'link'}`), 0, rawSize);
        if (type === 'L') longName = v;
        else longLink = v;
        pending.push({ offset: pos, length: next(rawSize) - pos, what: `GNU long ${type === 'L' ? 'name' : 'link target'}` });
        pos = next(rawSize);
        continue;
      }
      case 'x':
      case 'g': {
        flavours.add('pax');
        const recs = paxRecords(readMeta(pos, rawSize, 'pax header'), (why) => failAt(why, pos + BLOCK));
        for (const k of recs.keys()) if (k.startsWith('GNU.sparse.')) throw failAt('a GNU sparse member (its data is not one range; nix-seal does not read sparse tar members)', pos);
        if (type === 'g') {
          for (const [k, v] of recs) globalPax.set(k, v);
          regions.push({ offset: pos, length: next(rawSize) - pos, what: 'pax global header' });
        } else {
          pax = recs;
          pending.push({ offset: pos, length: next(rawSize) - pos, what: 'pax extended header' });
        }
        pos = next(rawSize);
        continue;
      }
      case 'S':
        throw failAt('a GNU sparse member (its data is not one range; nix-seal does not read sparse tar members)', pos + H.typeflag);
      case 'M':
        throw failAt('a multi-volume continuation member (nix-seal reads single-volume archives)', pos + H.typeflag);
      case 'V':
        regions.push({ offset: pos, length: BLOCK, what: 'volume label' });
        pos = next(0);
        continue;
      default:
    }
    const attr = (k: string): string | undefined => pax.get(k) ?? globalPax.get(k);
    let size = rawSize;
    const paxSize = attr('size');
    if (paxSize !== undefined) {
      if (!/^[0-9]{1,16}$/.test(paxSize) || !Number.isSafeInteger(Number(paxSize))) throw failAt(`a pax size ${JSON.stringify(paxSize)}`, pos);
      size = Number(paxSize);
    }
    let rawPath = attr('path') ?? longName;
    if (rawPath === undefined) {
      const base = str(h, H.name, 100);
      const prefix = ustar ? str(h, H.prefix, 155) : '';
      rawPath = prefix === '' ? base : `${prefix}/${base}`;
    }
    const rawLink = attr('linkpath') ?? longLink ?? str(h, H.linkname, 100);
    const path = normalisePath(rawPath, (why) => failAt(why, headerAt));
    const mode = num(h, H.mode, 8) ?? 0;
    const dataAt = pos + BLOCK;
    // Only regular members (and GNU dump directories) carry data; the rest declare 0 or are ignored as tar does.
    const hasData = type === '0' || type === '\0' || type === '7' || type === 'D' || (type === '1' && size > 0) || !'1234567'.includes(type);
    const dataSize = hasData ? size : 0;
    if (dataAt + dataSize > src.size) throw failAt(`the data of ${path || '.'} (${dataSize} bytes) runs past the end of the archive`, headerAt + H.size);
    let entry: InnerEntry;
    if (type === '5' || type === 'D' || ((type === '0' || type === '\0') && rawPath.endsWith('/') && !ustar)) {
      entry = { path, type: 'dir', size: 0 };
    } else if (type === '2') {
      entry = { path, type: 'symlink', size: 0, target: rawLink };
    } else if (type === '1') {
      const target = normalisePath(rawLink, (why) => failAt(why, headerAt + H.linkname));
      const t = tree.get(target);
      if (t === undefined || t.type !== 'file') throw failAt(`${path} is a hard link to ${JSON.stringify(rawLink)}, which is not an earlier file of the archive`, headerAt + H.linkname);
      entry = { path, type: 'file', size: t.size, executable: t.executable ?? false, window: t.window! };
    } else if ('346'.includes(type)) {
      entry = { path, type: 'special', size: 0 };
    } else {
      // Regular ('0', NUL, '7') and, as POSIX says, any unknown type.
      entry = { path, type: 'file', size, executable: (mode & 0o100) !== 0, window: { offset: dataAt, length: size } };
    }
    entry.recordOffset = headerAt;
    tree.add(entry);
    const label = path === '' ? '.' : path;
    for (const r of pending) regions.push({ ...r, path, what: `${r.what} of ${label}` });
    regions.push({ offset: headerAt, length: BLOCK, path, what: `tar header of ${label}` });
    pending = [];
    longName = undefined;
    longLink = undefined;
    pax = new Map();
    pos = next(dataSize);
  }
  return { entries: tree.entries(), regions, flavours };
}

function tarView(src: ByteSource, name: string): ImageView {
  const a = readTar(src, name);
  return windowedView({ kind: 'tar', description: `tar (${[...a.flavours].join(', ')})`, source: src, entries: a.entries, regions: a.regions, gap: 'padding' });
}

// ---------------------------------------------------------------------------------------------
// Detection

const USTAR = bytes.magicBytes('ustar');
const GNU_MAGIC = bytes.magicBytes('ustar  \0');

/** tar from the file's first bytes (`head`): a POSIX ustar (or GNU) first header whose checksum matches. */
export function detectTar(head: Uint8Array): Detection | undefined {
  if (head.length < BLOCK || !bytes.startsWith(head, H.magic, USTAR) || head[H.name] === 0) return undefined;
  const field = bytes.latin1(head, H.chksum, 8).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (!/^[0-7]{1,7}$/.test(field)) return undefined;
  const { unsigned, signed } = headerSums(head);
  const stored = parseInt(field, 8);
  if (stored !== unsigned && stored !== signed) return undefined;
  const gnu = bytes.startsWith(head, H.magic, GNU_MAGIC);
  return { format: 'tar', offset: 0, why: `${gnu ? 'GNU' : 'ustar'} tar header, checksum valid, first entry "${bytes.printableName(head, H.name, 100)}"` };
}

/**
 * A v7 tar header (no magic: a name, octal mode and size, a known type, the checksum). The reader
 * reads v7 archives when asked; detectTar does not name them, since without a magic the sniffer
 * could take other data for an image.
 */
function isV7Header(h: Uint8Array): boolean {
  if (h.length < BLOCK || isZero(h.subarray(0, BLOCK)) || !checksumOk(h)) return false;
  return h[0] !== 0 && num(h, H.mode, 8) !== undefined && num(h, H.size, 12) !== undefined && '\x0001234567'.includes(String.fromCharCode(bytes.u8(h, H.typeflag)));
}

/** tar: detectTar, or a v7 header. */
export const tarReader: ImageReader = {
  kind: 'tar',
  detect(src) {
    const head = headOf(src);
    return detectTar(head) !== undefined || isV7Header(head);
  },
  open(src, name) {
    return tarView(src, name);
  },
};
