/**
 * `.narinfo` and `nix-cache-info`: the text files of Nix's binary cache layout. Tolerant where
 * real caches are sloppy (unknown fields, unordered or missing References, any hash encoding,
 * repeated Sig, `unknown-deriver`), strict where a wrong answer would follow (the StorePath, hashes,
 * sizes, reference names): those fail naming the URL and the line.
 */
import { NixSealError } from '../errors.js';
import { parseHash } from './hash.js';
import { storeBaseNameProblem, type StorePath } from './store-path.js';
import { itemAt } from '../checked-index.js';

/** One store path's entry in a binary cache. */
export interface NarInfo {
  storePath: StorePath;
  /** The NAR file, relative to the cache's root (`nar/<filehash>.nar.xz`). */
  url: string;
  /** `xz`, `zstd`, `bzip2` (Nix's default when the field is missing), `gzip`, `none`, … */
  compression: string;
  /** Hash and size of the (compressed) file at `url`, when the cache gives them. */
  fileHash?: string | undefined;
  fileSize?: number | undefined;
  /** The NAR's hash as the cache wrote it (nix32, hex or SRI; checked to parse). */
  narHash: string;
  narSize: number;
  /** Absolute store paths, sorted and without duplicates (caches write them in any order). */
  references: StorePath[];
  deriver?: StorePath | undefined;
  system?: string | undefined;
  sigs: string[];
  ca?: string | undefined;
}

/** A narinfo without its references: what fetching its NAR needs (references travel as graph edges). */
export type NarInfoRecord = Omit<NarInfo, 'references'>;

/** What `nix-cache-info` says. */
export interface CacheInfo {
  storeDir?: string | undefined;
  wantMassQuery?: boolean | undefined;
  priority?: number | undefined;
}

function lineError(url: string, line: number, why: string): NixSealError {
  return new NixSealError('EPARSE', `Cannot parse ${url} line ${line}: ${why}`, { path: url, line });
}

/** `Key: value` lines; blank lines skipped, a trailing CR dropped. A line without `: ` is an error. */
function* fields(text: string, url: string): Generator<[key: string, value: string, line: number]> {
  const lines = text.split('\n');
  for (const [i, line] of lines.entries()) {
    let l = line;
    if (l.endsWith('\r')) l = l.slice(0, -1);
    if (l.trim() === '') continue;
    const colon = l.indexOf(':');
    if (colon <= 0) throw lineError(url, i + 1, `expected 'Name: value', got '${clip(l)}'`);
    yield [l.slice(0, colon), l.slice(colon + 1).trim(), i + 1];
  }
}

const clip = (s: string): string => (s.length > 80 ? s.slice(0, 77) + '...' : s);

/** A size field: decimal digits only (Nix's string2Int rejects anything else). */
function size(url: string, line: number, key: string, v: string): number {
  const n = /^[0-9]+$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw lineError(url, line, `${key} '${clip(v)}' is not a number`);
  return n;
}

function hash(url: string, line: number, key: string, v: string): string {
  try {
    parseHash(v, 'sha256');
  } catch {
    throw lineError(url, line, `${key} '${clip(v)}' is not a hash Nix accepts`);
  }
  return v;
}

/**
 * Base names already checked, with their store path: a closure's narinfos name each path about
 * ten times (once as StorePath, then as references), so each is checked and concatenated once
 * (and held as one string). Per store dir; bounded.
 */
const checked = { storeDir: '', paths: new Map<string, StorePath>() };

function baseName(url: string, line: number, key: string, v: string, storeDir: string): StorePath {
  if (checked.storeDir !== storeDir || checked.paths.size > 1_000_000) {
    checked.storeDir = storeDir;
    checked.paths = new Map();
  }
  const known = checked.paths.get(v);
  if (known !== undefined) return known;
  const problem = storeBaseNameProblem(v);
  if (problem || v.includes('/')) throw lineError(url, line, `${key} '${clip(v)}' is not a store path name (${problem ?? "it contains '/'"})`);
  const p = `${storeDir}/${v}` as StorePath;
  checked.paths.set(v, p);
  return p;
}

/**
 * Parses a narinfo fetched from `url` for store path `expected` (in `storeDir`). A StorePath other
 * than `expected` is an error: the cache would otherwise answer for another path.
 */
export function parseNarInfo(text: string, url: string, storeDir: string, expected?: StorePath): NarInfo {
  let storePath: StorePath | undefined;
  let narUrl: string | undefined;
  let compression: string | undefined;
  let fileHash: string | undefined;
  let fileSize: number | undefined;
  let narHash: string | undefined;
  let narSize: number | undefined;
  let deriver: StorePath | undefined;
  let system: string | undefined;
  let ca: string | undefined;
  const refs: StorePath[] = [];
  const sigs: string[] = [];
  for (const [key, v, line] of fields(text, url)) {
    switch (key) {
      case 'StorePath': {
        const slash = v.lastIndexOf('/');
        if (v.slice(0, slash) !== storeDir) throw lineError(url, line, `StorePath '${clip(v)}' is not in the store ${storeDir}`);
        storePath = baseName(url, line, key, v.slice(slash + 1), storeDir);
        if (expected !== undefined && storePath !== expected) {
          throw lineError(url, line, `StorePath is ${storePath}, but the cache was asked for ${expected}`);
        }
        break;
      }
      case 'URL':
        if (v === '') throw lineError(url, line, 'URL is empty');
        narUrl = v;
        break;
      case 'Compression':
        compression = v;
        break;
      case 'FileHash':
        fileHash = hash(url, line, key, v);
        break;
      case 'FileSize':
        fileSize = size(url, line, key, v);
        break;
      case 'NarHash':
        narHash = hash(url, line, key, v);
        break;
      case 'NarSize':
        narSize = size(url, line, key, v);
        break;
      case 'References':
        for (const r of v.split(' ')) if (r !== '') refs.push(baseName(url, line, 'reference', r, storeDir));
        break;
      case 'Deriver':
        deriver = v === '' || v === 'unknown-deriver' ? undefined : baseName(url, line, key, v, storeDir);
        break;
      case 'System':
        system = v;
        break;
      case 'Sig':
        sigs.push(v);
        break;
      case 'CA':
        ca = v;
        break;
      default:
      // Unknown fields (newer Nix, other cache servers) are ignored, as Nix does.
    }
  }
  const missing = (what: string): never => {
    throw new NixSealError('EPARSE', `Cannot parse ${url}: it has no ${what} line`, { path: url });
  };
  return {
    storePath: storePath ?? missing('StorePath'),
    url: narUrl ?? missing('URL'),
    compression: compression === undefined || compression === '' ? 'bzip2' : compression,
    fileHash,
    fileSize,
    narHash: narHash ?? missing('NarHash'),
    narSize: narSize ?? missing('NarSize'),
    references: sortedUnique(refs),
    deriver,
    system,
    sigs,
    ca,
  };
}

/** `refs` sorted without duplicates; Nix writes them sorted, so usually `refs` itself. */
function sortedUnique(refs: StorePath[]): StorePath[] {
  for (let i = 1; i < refs.length; i++) {
    if (!(itemAt(refs, i - 1) < itemAt(refs, i))) return [...new Set(refs)].sort();
  }
  return refs;
}

/** Parses `nix-cache-info`. Unknown fields are ignored; a bad Priority or WantMassQuery is an error. */
export function parseCacheInfo(text: string, url: string): CacheInfo {
  const info: CacheInfo = {};
  for (const [key, v, line] of fields(text, url)) {
    if (key === 'StoreDir') {
      if (!v.startsWith('/')) throw lineError(url, line, `StoreDir '${clip(v)}' is not an absolute path`);
      info.storeDir = v.length > 1 ? v.replace(/\/+$/, '') : v;
    } else if (key === 'WantMassQuery') {
      if (v !== '0' && v !== '1') throw lineError(url, line, `WantMassQuery '${clip(v)}' is not 0 or 1`);
      info.wantMassQuery = v === '1';
    } else if (key === 'Priority') {
      info.priority = size(url, line, key, v);
    }
  }
  return info;
}
