/**
 * Runs in a worker thread for BinaryCacheSource.loadClosure, which must stay synchronous (every
 * GraphSource is): the walk is asynchronous network I/O, so it runs here with its own event loop
 * while the calling thread waits on an Atomics cell.
 */
import * as fs from 'node:fs';
import type { NarInfo } from '../store/narinfo.js';
import type { StorePath } from '../store/store-path.js';
import { checkCacheInfo, openCacheClient, walkClosure, type CacheOptions } from './binary-cache-fetch.js';

export interface WalkRequest {
  cache: CacheOptions;
  storeDir: string;
  roots: StorePath[];
  /** Show a progress line on standard error (a terminal). */
  progress: boolean;
}

export async function runWalk(req: WalkRequest): Promise<NarInfo[]> {
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
    return await walkClosure(client, req.storeDir, req.roots, req.cache.connections, (done, queued, inFlight) => {
      if (!req.progress) return;
      const now = Date.now();
      if (now - last < 100) return;
      last = now;
      shown = true;
      line(`querying ${client.display}: ${done} paths, ${queued + inFlight} to go`);
    });
  } finally {
    if (shown) line('');
    await client.close();
  }
}
