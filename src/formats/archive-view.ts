/**
 * What the readers of formats whose files are contiguous, uncompressed byte ranges (tar, cpio,
 * partition tables) share: a tree built from archive members in archive order (parents implied by
 * a member's path are added, `..` and absolute paths refused, a repeated directory merged, a
 * repeated file replaced as extraction would), and a view that reads, windows and locates through
 * those ranges. One module so that the three formats answer alike.
 */
import { itemAt } from '../checked-index.js';
import { NixSealError } from '../errors.js';
import { windowSource, type ByteSource } from './byte-source.js';
import type { ImageView, InnerEntry, InnerOwner } from './image.js';

/** Reads of file data are this big at most (a chunk of NAR hashing). */
const CHUNK = 1 << 20;

/** A structural region of the archive (a header, a table) for locate(). */
export interface Region {
  offset: number;
  length: number;
  /** The entry the region names, if any. */
  path?: string;
  what: string;
}

/**
 * Normalises a member path as extraction would: leading "/" and "./" dropped, "." components and
 * repeated slashes removed, a trailing slash dropped; "" is the root. Throws `fail` for "..".
 */
export function normalisePath(raw: string, fail: (why: string) => NixSealError): string {
  const parts: string[] = [];
  for (const c of raw.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw fail(`the member path ${JSON.stringify(raw)} climbs out of the archive ("..")`);
    parts.push(c);
  }
  return parts.join('/');
}

/** Builds the entry list: parents before children, one entry per path. */
export class TreeBuilder {
  private readonly byPath = new Map<string, InnerEntry>();

  constructor(
    private readonly fail: (why: string) => NixSealError,
    private readonly maxEntries: number,
  ) {
    this.byPath.set('', { path: '', type: 'dir', size: 0 });
  }

  get(path: string): InnerEntry | undefined {
    return this.byPath.get(path);
  }

  add(entry: InnerEntry): void {
    const { path } = entry;
    if (path === '') {
      if (entry.type !== 'dir') throw this.fail(`the archive's root ("." or "/") is a ${entry.type}, not a directory`);
      return;
    }
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const p = this.byPath.get(parent);
      if (p === undefined) this.put({ path: parent, type: 'dir', size: 0 });
      else if (p.type !== 'dir') throw this.fail(`${path} is inside ${parent}, which is a ${p.type}`);
    }
    const old = this.byPath.get(path);
    if (old !== undefined) {
      if (old.type === 'dir' && entry.type === 'dir') return;
      if (old.type === 'dir' || entry.type === 'dir') throw this.fail(`${path} is both a directory and a ${old.type === 'dir' ? entry.type : old.type}`);
      this.byPath.delete(path); // a later member replaces an earlier one, as extraction does
    }
    this.put(entry);
  }

  private put(entry: InnerEntry): void {
    if (this.byPath.size >= this.maxEntries) throw this.fail(`more than ${this.maxEntries} entries`);
    this.byPath.set(entry.path, entry);
  }

  /** The entries, root first, each parent before its children. */
  entries(): InnerEntry[] {
    // A replaced file moves to the end, which keeps parents first: its parents were added before.
    return [...this.byPath.values()];
  }
}

/** Bytes `offset`..`offset+length` of `src` in chunks. */
export function* readRange(src: ByteSource, offset: number, length: number): Generator<Uint8Array> {
  for (let at = 0; at < length; at += CHUNK) yield src.read(offset + at, Math.min(CHUNK, length - at));
}

/**
 * A view over entries whose files carry `window` (contiguous ranges of `src`). `regions` are the
 * structural parts (headers, tables); a byte in neither is `gap` (padding, free space).
 */
export function windowedView(opts: {
  kind: string;
  description: string;
  source: ByteSource;
  entries: InnerEntry[];
  regions: Region[];
  gap: string;
}): ImageView {
  const { source: src } = opts;
  const byPath = new Map(opts.entries.map((e) => [e.path, e]));
  // Data ranges first so that a file's bytes are named by the file; a hard link's data is the
  // first entry holding that window.
  const spans: Array<Region & { data?: boolean }> = [];
  const seen = new Set<string>();
  for (const e of opts.entries) {
    if (e.type !== 'file' || e.window === undefined || e.window.length === 0) continue;
    const key = `${e.window.offset}:${e.window.length}`;
    if (seen.has(key)) continue;
    seen.add(key);
    spans.push({ offset: e.window.offset, length: e.window.length, path: e.path, what: `data of ${e.path}`, data: true });
  }
  for (const r of opts.regions) if (r.length > 0) spans.push(r);
  spans.sort((a, b) => a.offset - b.offset || b.length - a.length);
  const resolve = (entry: InnerEntry): InnerEntry => {
    const e = byPath.get(entry.path);
    if (e === undefined || e.type !== 'file') {
      throw new NixSealError('EUSAGE', `Cannot read ${entry.path} in the ${opts.kind}: no such file`, { path: entry.path });
    }
    return e;
  };
  return {
    kind: opts.kind,
    description: opts.description,
    source: src,
    entries: () => opts.entries,
    *read(entry) {
      const w = resolve(entry).window!;
      yield* readRange(src, w.offset, w.length);
    },
    fileSource(entry) {
      const w = resolve(entry).window!;
      return windowSource(src, w.offset, w.length);
    },
    locate(offset): InnerOwner {
      // The last span starting at or before `offset` that still covers it (spans rarely nest).
      let lo = 0;
      let hi = spans.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (itemAt(spans, mid).offset <= offset) lo = mid + 1;
        else hi = mid;
      }
      for (let i = lo - 1; i >= 0 && i >= lo - 8; i--) {
        const s = itemAt(spans, i);
        if (offset < s.offset + s.length) {
          const r: InnerOwner = { what: s.what };
          if (s.path !== undefined) r.path = s.path;
          if (s.data) r.offsetInFile = offset - s.offset;
          return r;
        }
      }
      return { what: opts.gap };
    },
  };
}
