import * as path from 'node:path';
import { usageError } from '../errors.js';
import { DEFAULT_STORE_DIR } from './store-path.js';
import { itemAt } from '../checked-index.js';

/** What `--store` names, resolved against the environment the way Nix resolves it. */
export type StoreSpec =
  | {
      kind: 'local';
      storeDir: string;
      realStoreDir: string;
      stateDir: string;
      explicit: boolean;
      /** Set when a --store named the store but not the state dir: where stateDir came from, in words. */
      stateAssumed?: string;
    }
  | { kind: 'daemon'; storeDir: string }
  | { kind: 'registration' | 'export-graph' | 'path-info'; file: string }
  | { kind: 'attrs-json'; file: string; name?: string }
  /** The closure embedded in an image (or a store path holding images). */
  | { kind: 'image'; file: string; storeDir: string }
  | { kind: 'binary-cache'; url: string; storeDir: string; httpConnections?: number; netrcFile?: string };

/** Settings of binary cache stores that come from flags rather than the URL (--http-connections, --netrc-file). */
export interface CacheSettings {
  httpConnections?: number | undefined;
  netrcFile?: string | undefined;
}

const DEFAULT_STATE_DIR = '/nix/var/nix';

/** The --store forms, for hints and --help. */
export const STORE_FORMS =
  'auto (the local store), local?root=DIR, local?store=S&state=T, daemon, registration:FILE, export-graph:FILE[,FILE…], attrs-json:FILE[#NAME], path-info:FILE, image:FILE (the closure an image embeds), or a binary cache: file:///DIR, http://… or https://…';

/**
 * Parses a --store value. Local stores follow Nix: `NIX_STORE_DIR` / `NIX_STATE_DIR` by default,
 * `local?root=DIR` keeps the logical store dir but puts the store and the state under DIR,
 * `local?store=S&state=T` (and `real=R`) set them one by one. File sources are `KIND:FILE`.
 */
export function parseStoreSpec(text: string | undefined, env: NodeJS.ProcessEnv = process.env, cache: CacheSettings = {}): StoreSpec {
  const envStoreDir = env.NIX_STORE_DIR || DEFAULT_STORE_DIR;
  const envStateDir = env.NIX_STATE_DIR || DEFAULT_STATE_DIR;
  if (text !== undefined && /^(file|https?):\/\//.test(text)) return binaryCacheSpec(text, envStoreDir, cache);
  if (text === undefined || text === '' || text === 'auto') {
    return { kind: 'local', storeDir: envStoreDir, realStoreDir: envStoreDir, stateDir: envStateDir, explicit: false };
  }
  const image = /^image:(.+)$/.exec(text);
  if (image) return { kind: 'image', file: path.resolve(itemAt(image, 1)), storeDir: envStoreDir };
  const fileKind = /^(registration|export-graph|attrs-json|path-info):(.+)$/.exec(text);
  if (fileKind) {
    const kind = fileKind[1] as 'registration' | 'export-graph' | 'attrs-json' | 'path-info';
    let file = itemAt(fileKind, 2);
    if (kind === 'attrs-json') {
      const hash = file.lastIndexOf('#');
      if (hash >= 0) {
        const name = file.slice(hash + 1);
        file = file.slice(0, hash);
        if (name === '' || file === '') throw usageError(`--store '${text}': expected attrs-json:FILE#NAME`);
        return { kind, file: path.resolve(file), name };
      }
    }
    if (kind === 'export-graph') return { kind, file: file.split(',').map((f) => path.resolve(f)).join(',') };
    return { kind, file: path.resolve(file) };
  }
  if (text === 'daemon' || text.startsWith('unix://')) return { kind: 'daemon', storeDir: envStoreDir };
  const local = /^(local|[a-z]*:\/\/|\/[^?]*)?(\?(.*))?$/.exec(text);
  if (!local || (local[1] !== undefined && local[1] !== 'local' && !local[1].startsWith('/'))) {
    throw usageError(`--store '${text}': unknown store`, `--store takes ${STORE_FORMS}`);
  }
  const params = new URLSearchParams(local[3] ?? '');
  for (const key of params.keys()) {
    if (!['root', 'store', 'state', 'real', 'log'].includes(key)) throw usageError(`--store '${text}': unknown setting '${key}'`);
  }
  const abs = (v: string, what: string): string => {
    if (!path.isAbsolute(v)) throw usageError(`--store '${text}': ${what} '${v}' must be an absolute path`);
    return path.posix.normalize(v).replace(/\/+$/, '') || '/';
  };
  // A bare absolute path is Nix's shorthand for local?root=PATH.
  const root = params.get('root') ?? (local[1]?.startsWith('/') ? local[1] : undefined);
  const storeDir = params.has('store') ? abs(params.get('store')!, 'store') : envStoreDir;
  const rootDir = root === undefined ? undefined : abs(root, 'root');
  const stateDir = params.has('state') ? abs(params.get('state')!, 'state') : rootDir ? rootDir + DEFAULT_STATE_DIR : envStateDir;
  const realStoreDir = params.has('real') ? abs(params.get('real')!, 'real') : rootDir ? rootDir + storeDir : storeDir;
  if (!params.has('state') && rootDir === undefined) {
    const from = env.NIX_STATE_DIR ? 'NIX_STATE_DIR' : 'the default';
    return { kind: 'local', storeDir, realStoreDir, stateDir, explicit: true, stateAssumed: `no state= given, so the state dir is ${from} ${stateDir}` };
  }
  return { kind: 'local', storeDir, realStoreDir, stateDir, explicit: true };
}

/**
 * A binary cache URL: `file:///DIR`, `http(s)://HOST[:PORT][/PREFIX]`. `?store=DIR` names the store
 * dir the cache must be for (default: NIX_STORE_DIR or /nix/store, as Nix); Nix's other settings
 * (priority, compression, trusted, …) do not matter to a reader and are ignored.
 */
function binaryCacheSpec(text: string, storeDir: string, cache: CacheSettings): StoreSpec {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw usageError(`--store '${text}': not a valid URL`);
  }
  if (u.protocol === 'file:' && ((u.host !== '' && u.host !== 'localhost') || u.pathname === '/')) {
    throw usageError(`--store '${text}': expected file:///DIR (an absolute directory)`);
  }
  const dir = u.searchParams.get('store');
  if (dir !== null && !path.isAbsolute(dir)) throw usageError(`--store '${text}': store '${dir}' must be an absolute path`);
  return {
    kind: 'binary-cache',
    url: text,
    storeDir: dir === null ? storeDir : path.posix.normalize(dir).replace(/\/+$/, '') || '/',
    ...(cache.httpConnections !== undefined ? { httpConnections: cache.httpConnections } : {}),
    ...(cache.netrcFile !== undefined ? { netrcFile: path.resolve(cache.netrcFile) } : {}),
  };
}
