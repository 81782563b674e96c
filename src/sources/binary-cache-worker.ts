/**
 * Runs in a worker thread for BinaryCacheSource.loadClosure and materialize, which must stay
 * synchronous (every GraphSource is): the walk and the NAR downloads are asynchronous network I/O,
 * so they run here with their own event loop while the calling thread waits on an Atomics cell.
 */
import * as fs from 'node:fs';
import { parseNarInfo, type NarInfo, type NarInfoRecord } from '../store/narinfo.js';
import { baseNameOf, hashPartOf, type StorePath } from '../store/store-path.js';
import { NixSealError } from '../errors.js';
import { checkCacheInfo, openCacheClient, walkClosure, type CacheOptions } from './binary-cache-fetch.js';

export interface WalkRequest {
  cache: CacheOptions;
  storeDir: string;
  roots: StorePath[];
  /** Show a progress line on standard error (a terminal). */
  progress: boolean;
}

/**
 * The closure's narinfos in the order they arrived, their references as edges between their
 * indices: typed arrays cross to the waiting thread as one copy each, where 100,000 reference
 * strings would be cloned one by one.
 */
export interface WalkResult {
  infos: NarInfoRecord[];
  edgeFrom: Uint32Array;
  edgeTo: Uint32Array;
}

function compact(infos: NarInfo[]): WalkResult {
  const index = new Map<string, number>();
  let edgeCount = 0;
  infos.forEach((n, i) => {
    index.set(n.storePath, i);
    edgeCount += n.references.length;
  });
  const edgeFrom = new Uint32Array(edgeCount);
  const edgeTo = new Uint32Array(edgeCount);
  let e = 0;
  const records = infos.map((n, i): NarInfoRecord => {
    for (const r of n.references) {
      edgeFrom[e] = i;
      edgeTo[e++] = index.get(r)!; // the walk fetched every reference or failed
    }
    const { references: _, ...rest } = n;
    return rest;
  });
  return { infos: records, edgeFrom, edgeTo };
}

export async function runWalk(req: WalkRequest): Promise<WalkResult> {
  const client = openCacheClient(req.cache);
  let last = 0;
  let shown = false;
  // Straight to fd 2: the thread that owns process.stderr is blocked until the walk is done.
  const line = (s: string) => {
    try {
      fs.writeSync(2, `\r\x1b[K${s}`);
    } catch {
      // A closed terminal is no reason to fail.
    }
  };
  try {
    await checkCacheInfo(client, req.storeDir);
    const infos = await walkClosure(client, req.storeDir, req.roots, req.cache.connections, (done, queued, inFlight) => {
      if (!req.progress) return;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      shown = true;
      line(`querying ${client.display}: ${done} paths, ${queued + inFlight} to go`);
    });
    return compact(infos);
  } finally {
    if (shown) line('');
    await client.close();
  }
}

export interface FetchRequest {
  cache: CacheOptions;
  storeDir: string;
  /** Where paths on disk are copied from. */
  localDir: string;
  /** The temporary store dir to fill. */
  dir: string;
  paths: StorePath[];
  /** The narinfos already loaded; the others are fetched (and returned). */
  infos: NarInfoRecord[];
}

/** Fills `req.dir` with `req.paths` (nar-fetch.ts' fillStoreDir); returns the narinfos it had to fetch. */
export async function runFetch(req: FetchRequest): Promise<NarInfoRecord[]> {
  const { fillStoreDir } = await import('./nar-fetch.js');
  const client = openCacheClient(req.cache);
  try {
    const infos = new Map<StorePath, NarInfoRecord>(req.infos.map((n) => [n.storePath, n]));
    const onDisk = (p: StorePath) => fs.existsSync(`${req.localDir}/${baseNameOf(p)}`);
    const unknown = req.paths.filter((p) => !infos.has(p) && !onDisk(p));
    const fetched: NarInfoRecord[] = [];
    if (unknown.length > 0) {
      await checkCacheInfo(client, req.storeDir);
      for (const p of unknown) {
        const rel = `${hashPartOf(p)}.narinfo`;
        const text = await client.getText(rel);
        if (text === undefined) throw new NixSealError('EINVALIDPATH', `Cannot use ${p}: it is not in the binary cache ${client.display}`, { path: p });
        const info = parseNarInfo(text, `${client.display}/${rel}`, req.storeDir, p);
        infos.set(p, info);
        fetched.push(info);
      }
    }
    await fillStoreDir(client, infos, req.paths, req.localDir, req.dir, req.cache.connections);
    return fetched;
  } finally {
    await client.close();
  }
}
