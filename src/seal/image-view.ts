/**
 * One view over the images nix-seal can look inside (ISO 9660 and squashfs, and either nested in
 * the other), for the two questions evidence asks:
 *
 * - what holds byte N of this image file (a file inside it, a directory record, a table…), going
 *   down into nested images, so that a hash found in the raw bytes can be shown as
 *   `iso/nixos.iso » boot/grub/grub.cfg`;
 * - which store paths the image embeds: `…/nix/store/<basename>` trees, `<basename>` at the root
 *   of a squashfs (NixOS's nix-store.squashfs, mounted on /nix/.ro-store), and the paths listed in
 *   a registration file inside it (nix-path-registration).
 *
 * Images are hostile input: the readers bound every structure; this module adds a depth budget
 * for nesting and a size cap on the registration files it reads into memory.
 */
import { openIso, type ByteSource, type Iso, type IsoEntry } from '../formats/iso9660.js';
import { openSquashfs, windowSource, type Squashfs, type SquashEntry } from '../formats/squashfs.js';
import { storeBaseNameProblem } from '../store/store-path.js';
import { sniffSource, type Detection } from './sniff.js';

export type ImageKind = 'iso9660' | 'squashfs';

/** An entry inside an image, whatever the format. */
export interface InnerEntry {
  /** Path inside the image without a leading '/', '' for the root. */
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'special';
  size: number;
  /** Where the entry is named in the image (an ISO directory record), when the format says. */
  recordOffset?: number;
  /**
   * The file's bytes as one contiguous, uncompressed range of the image (ISO files are; squashfs
   * files are compressed blocks), so a nested image can be opened in place.
   */
  window?: { offset: number; length: number };
}

/** Who holds a byte of an image, in words, and the file inside when it is file data. */
export interface InnerOwner {
  /** The entry holding the byte or naming the record (a path inside the image), if any. */
  path?: string;
  /** When the byte is a file's data and the format lets us say where: the offset in that file. */
  offsetInFile?: number;
  /** e.g. "data of boot/grub/grub.cfg", "directory record of nix/store/…-bash", "squashfs directory table". */
  what: string;
}

export interface ImageView {
  readonly kind: ImageKind;
  /** For messages: "ISO 9660 (Rock Ridge, Joliet, El Torito)", "squashfs (xz)". */
  readonly description: string;
  entries(): Iterable<InnerEntry>;
  /** A whole (small) file's contents. */
  readFile(entry: InnerEntry): Uint8Array;
  locate(offset: number): InnerOwner;
  /** The image's own bytes (for opening nested images through windows). */
  readonly source: ByteSource;
}

/** How deep images may nest (an ISO holding a squashfs holding an ISO…). */
export const MAX_NESTING = 4;

const ISO_MAGIC_AT = 32769;
const CD001 = [0x43, 0x44, 0x30, 0x30, 0x31];
const HSQS = [0x68, 0x73, 0x71, 0x73];

/** Which format a source's magic says, without parsing further. */
export function imageKindOf(src: ByteSource): ImageKind | undefined {
  const has = (at: number, magic: number[]): boolean => {
    if (src.size < at + magic.length) return false;
    const b = src.read(at, magic.length);
    return magic.every((m, i) => b[i] === m);
  };
  if (has(0, HSQS)) return 'squashfs';
  if (has(ISO_MAGIC_AT, CD001)) return 'iso9660';
  return undefined;
}

/**
 * Opens the image in `src` if its magic says ISO 9660 or squashfs; undefined for anything else.
 * A corrupt or unsupported image of those formats throws the reader's NixSealError (EFORMAT).
 */
export function openImageView(src: ByteSource, name: string): ImageView | undefined {
  const kind = imageKindOf(src);
  if (kind === 'iso9660') return isoView(openIso(src, name), src);
  if (kind === 'squashfs') return squashfsView(openSquashfs(src, name), src);
  return undefined;
}

function isoView(iso: Iso, src: ByteSource): ImageView {
  const features = [iso.rockRidge ? 'Rock Ridge' : '', iso.joliet ? 'Joliet' : '', iso.bootCatalog ? 'El Torito' : ''].filter(Boolean);
  const byPath = new Map<string, IsoEntry>();
  const inner = (e: IsoEntry): InnerEntry => {
    const r: InnerEntry = { path: e.path.replace(/^\//, ''), type: e.type, size: e.size, recordOffset: e.recordOffset };
    const w = contiguous(e.extents);
    if (e.type === 'file' && w !== undefined) r.window = w;
    return r;
  };
  return {
    kind: 'iso9660',
    description: `ISO 9660${features.length > 0 ? ` (${features.join(', ')})` : ''}`,
    source: src,
    *entries() {
      for (const e of iso.entries()) {
        byPath.set(e.path, e);
        yield inner(e);
      }
    },
    readFile(entry) {
      const e = byPath.get('/' + entry.path) ?? [...iso.entries()].find((x) => x.path === '/' + entry.path);
      if (e === undefined) throw new Error(`readFile: no ${entry.path} in the image`);
      return Buffer.concat([...iso.readFile(e)]);
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

/** The extents as one range when each starts where the previous ended (always, for xorriso's files). */
function contiguous(extents: readonly { offset: number; length: number }[]): { offset: number; length: number } | undefined {
  const first = extents[0];
  if (first === undefined) return undefined;
  let end = first.offset + first.length;
  for (let i = 1; i < extents.length; i++) {
    const e = extents[i]!;
    if (e.offset !== end) return undefined;
    end += e.length;
  }
  return { offset: first.offset, length: end - first.offset };
}

function squashfsView(sq: Squashfs, src: ByteSource): ImageView {
  const byPath = new Map<string, SquashEntry>();
  const type = (e: SquashEntry): InnerEntry['type'] =>
    e.type === 'directory' ? 'dir' : e.type === 'file' ? 'file' : e.type === 'symlink' ? 'symlink' : 'special';
  return {
    kind: 'squashfs',
    description: `squashfs (${sq.superblock.compression})`,
    source: src,
    *entries() {
      for (const e of sq.entries()) {
        const path = e.path === '.' ? '' : e.path;
        if (e.type === 'file') byPath.set(path, e);
        yield { path, type: type(e), size: e.size };
      }
    },
    readFile(entry) {
      const e = byPath.get(entry.path);
      if (e === undefined) throw new Error(`readFile: no ${entry.path} in the image`);
      return sq.readFileBytes(e);
    },
    locate(offset) {
      const o = sq.locate(offset);
      if ((o.kind === 'file-block' || o.kind === 'fragment-block') && o.path !== undefined) {
        const r: InnerOwner = { path: o.path, what: `${o.kind === 'file-block' ? 'data' : 'fragment'} of ${o.path}` };
        // Only an uncompressed block keeps the file's bytes as they are: then the offset in the file is exact.
        const e = byPath.get(o.path) ?? findEntry(sq, o.path, byPath);
        const block = o.kind === 'file-block' && o.block !== undefined ? e?.blocks?.[o.block] : undefined;
        if (block !== undefined && !block.compressed) r.offsetInFile = o.block! * sq.superblock.blockSize + (offset - o.start);
        return r;
      }
      return { what: `squashfs ${o.kind.replace(/-/g, ' ')}` };
    },
  };
}

function findEntry(sq: Squashfs, path: string, cache: Map<string, SquashEntry>): SquashEntry | undefined {
  for (const e of sq.entries()) if (e.type === 'file') cache.set(e.path, e);
  return cache.get(path);
}

// ---------------------------------------------------------------------------------------------
// Locating a byte, through nested images

/** A step down: the image file, the entry inside it, what holds the byte there. */
export interface LocatedStep {
  /** Path inside this level's image ('' when the byte is in no entry: a table, padding…). */
  path: string;
  what: string;
  /**
   * Set when the byte is in a file that is an image nix-seal cannot look inside (an ext4 or a
   * qcow2 in an ISO, say): whatever the hash belongs to may be contained in there.
   */
  opaque?: Detection;
}

/**
 * What holds byte `offset` of the image `view`, level by level: when it is the data of a file
 * that is itself an image stored in one piece, the answer continues inside that image.
 */
export function locateDeep(view: ImageView, offset: number, name: string, depth = 0): LocatedStep[] {
  const owner = view.locate(offset);
  const step: LocatedStep = { path: owner.path ?? '', what: owner.what };
  if (depth + 1 >= MAX_NESTING || owner.offsetInFile === undefined || owner.path === undefined) return [step];
  const nested = nestedImage(view, owner.path, `${name} » ${owner.path}`);
  if (nested.opaque !== undefined) {
    step.opaque = nested.opaque;
    step.what = `${step.what}, ${nested.opaque.format} image nix-seal cannot look inside (${nested.opaque.why})`;
  }
  if (nested.view === undefined) return [step];
  try {
    return [step, ...locateDeep(nested.view, owner.offsetInFile, `${name} » ${owner.path}`, depth + 1)];
  } catch {
    // A nested image too corrupt to index: the outer answer still stands.
    return [step];
  }
}

/** A file inside an image, as an image: one nix-seal reads (`view`), or one it cannot (`opaque`). */
interface NestedImage {
  view?: ImageView;
  opaque?: Detection;
}

const nestedCache = new WeakMap<ImageView, Map<string, NestedImage>>();

/**
 * The image inside file `path` of `view`, when that file is stored in one uncompressed piece (ISO
 * files are): opened when nix-seal can read it, else named by the sniffer when it is an image of
 * another format.
 */
function nestedImage(view: ImageView, path: string, name: string): NestedImage {
  let cache = nestedCache.get(view);
  if (cache === undefined) nestedCache.set(view, (cache = new Map()));
  const known = cache.get(path);
  if (known !== undefined) return known;
  let found: InnerEntry | undefined;
  for (const e of view.entries()) if (e.path === path) found = e;
  let nested: NestedImage = {};
  if (found?.window !== undefined) {
    const src = windowSource(view.source, found.window.offset, found.window.length);
    // A nested image that will not open or sniff is just file data: the outer answer stands.
    let opened: ImageView | undefined;
    try {
      opened = openImageView(src, name);
    } catch {
      opened = undefined;
    }
    if (opened !== undefined) nested = { view: opened };
    else {
      try {
        nested = { opaque: sniffSource(src) };
      } catch {
        nested = {};
      }
    }
  }
  cache.set(path, nested);
  return nested;
}

/** The image inside file `path` of `view` (stored in one uncompressed piece), or undefined. */
export function nestedView(view: ImageView, path: string, name: string): ImageView | undefined {
  return nestedImage(view, path, name).view;
}

// ---------------------------------------------------------------------------------------------
// What an image embeds

/** Where an image holds a store path. */
export interface Embedding {
  /** The chain of paths inside nested images, outermost first, ending with the entry. */
  inside: string[];
  /** Offset in the outermost image file: the directory record, or where the nested image starts. */
  offset: number;
  what: string;
}

/** Registration files bigger than this are not read (a 100,000-path registration is ~20 MB). */
export const MAX_REGISTRATION_BYTES = 64 << 20;

/** Names of files read as registrations: NixOS's nix-path-registration, closureInfo's registration. */
const REGISTRATION_NAME = /(^|\/)(nix-path-registration|registration)$/;

/** A problem met while looking inside (a nested image that would not open); the caller reports it. */
export interface ViewProblem {
  inside: string[];
  why: string;
}

/**
 * The store paths (by basename) that `view` embeds as trees, and the store paths its registration
 * files list, for store dir `storeDir`. Nested images are searched too.
 */
export function embeddedStorePaths(
  view: ImageView,
  storeDir: string,
  name: string,
): { trees: Map<string, Embedding>; listed: Map<string, Embedding>; problems: ViewProblem[] } {
  const trees = new Map<string, Embedding>();
  const listed = new Map<string, Embedding>();
  const problems: ViewProblem[] = [];
  const storeSuffix = storeDir.replace(/^\/+/, '');
  const visit = (v: ImageView, chain: string[], outerOffset: number, depth: number): void => {
    for (const e of v.entries()) {
      if (e.path === '') continue;
      const slash = e.path.lastIndexOf('/');
      const parent = slash < 0 ? '' : e.path.slice(0, slash);
      const base = e.path.slice(slash + 1);
      const atStoreDir = parent === 'nix/store' || parent.endsWith('/nix/store') || parent === storeSuffix || parent.endsWith('/' + storeSuffix);
      // A squashfs whose root holds store basenames is a store image: NixOS's nix-store.squashfs
      // (make-squashfs.nix), mounted on /nix/.ro-store under the overlay /nix/store.
      const atSquashRoot = v.kind === 'squashfs' && parent === '';
      if ((atStoreDir || atSquashRoot) && storeBaseNameProblem(base) === undefined && !trees.has(base)) {
        const offset = depth === 0 && e.recordOffset !== undefined ? e.recordOffset : outerOffset;
        trees.set(base, {
          inside: [...chain, e.path],
          offset,
          what: `${e.type === 'dir' ? 'directory' : e.type}${depth === 0 && e.recordOffset !== undefined ? ' (the offset is its directory record)' : depth > 0 ? ` (the offset is where ${chain[0]} starts)` : ''}`,
        });
      }
      if (e.type === 'file' && REGISTRATION_NAME.test(e.path) && e.size <= MAX_REGISTRATION_BYTES) {
        let text: string;
        try {
          text = Buffer.from(v.readFile(e)).toString('latin1');
        } catch (err) {
          problems.push({ inside: [...chain, e.path], why: (err as Error).message });
          continue;
        }
        let lineNo = 0;
        for (const line of text.split('\n')) {
          lineNo++;
          if (!line.startsWith(storeDir + '/')) continue;
          const b = line.slice(storeDir.length + 1);
          if (b.includes('/') || storeBaseNameProblem(b) !== undefined || listed.has(line)) continue;
          listed.set(line, { inside: [...chain, e.path], offset: depth === 0 && e.window ? e.window.offset : outerOffset, what: `listed on line ${lineNo}` });
        }
      }
      if (e.type === 'file' && e.window !== undefined && depth + 1 < MAX_NESTING) {
        let nested: ImageView | undefined;
        try {
          nested = openImageView(windowSource(v.source, e.window.offset, e.window.length), `${name} » ${[...chain, e.path].join(' » ')}`);
        } catch (err) {
          problems.push({ inside: [...chain, e.path], why: (err as Error).message });
          continue;
        }
        if (nested !== undefined) {
          try {
            visit(nested, [...chain, e.path], depth === 0 ? e.window.offset : outerOffset, depth + 1);
          } catch (err) {
            problems.push({ inside: [...chain, e.path], why: (err as Error).message });
          }
        }
      }
    }
  };
  visit(view, [], 0, 0);
  return { trees, listed, problems };
}
