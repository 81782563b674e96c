/**
 * A Nix binary cache as a graph source: `file:///dir` (what `nix copy --to file://` writes) or
 * `http(s)://host[:port][/prefix]`. The closure is walked from the roots by fetching narinfos; see
 * binary-cache-fetch.ts for the HTTP side.
 */
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { NixSealError, type ErrorCode } from '../errors.js';
import { buildRefGraph, type RefGraph } from '../graph/ref-graph.js';
import type { NarInfo } from '../store/narinfo.js';
import type { StorePath } from '../store/store-path.js';
import { displayUrl, openCacheClient, type CacheOptions } from './binary-cache-fetch.js';
import type { WalkRequest } from './binary-cache-worker.js';
import type { GraphSource } from './source.js';

/** Nix's default for http-connections. */
export const DEFAULT_HTTP_CONNECTIONS = 25;

/**
 * The worker's module is loaded by a tiny CommonJS stub, so that even a failure to load it reaches
 * the waiting thread as an error instead of leaving it blocked.
 */
const STUB = `
const { workerData } = require('node:worker_threads');
const done = (msg) => {
  workerData.port.postMessage(msg);
  const cell = new Int32Array(workerData.cell);
  Atomics.store(cell, 0, 1);
  Atomics.notify(cell, 0);
};
import(workerData.module)
  .then((m) => m.runWalk(workerData.req))
  .then(
    (infos) => done({ ok: true, infos }),
    (e) => done({ ok: false, error: { name: e && e.name, code: e && e.code, message: String(e && e.message || e), path: e && e.details && e.details.path, stack: e && e.stack } }),
  );
`;

interface WalkReply {
  ok: boolean;
  infos?: NarInfo[];
  error?: { name?: string; code?: string; message: string; path?: string; stack?: string };
}

/** Runs the asynchronous walk in a worker and waits for it: GraphSource.loadClosure is synchronous. */
function walkSync(req: WalkRequest): NarInfo[] {
  const cell = new SharedArrayBuffer(4);
  const { port1, port2 } = new MessageChannel();
  const module = new URL('./binary-cache-worker.js', import.meta.url).href;
  const worker = new Worker(STUB, { eval: true, workerData: { port: port2, cell, module, req }, transferList: [port2] });
  worker.unref();
  try {
    Atomics.wait(new Int32Array(cell), 0, 0);
    const reply = receiveMessageOnPort(port1)?.message as WalkReply | undefined;
    if (!reply) throw new NixSealError('EIO', 'Cannot query the binary cache: its worker thread gave no answer');
    if (!reply.ok) {
      const e = reply.error!;
      if (e.name === 'NixSealError' && e.code) {
        const err = new NixSealError(e.code as ErrorCode, e.message, e.path !== undefined ? { path: e.path } : {});
        if (e.stack) err.stack = e.stack;
        throw err;
      }
      throw new NixSealError('EIO', `Cannot query the binary cache: ${e.message}`);
    }
    return reply.infos!;
  } finally {
    port1.close();
    void worker.terminate();
  }
}

export class BinaryCacheSource implements GraphSource {
  readonly description: string;
  /** Where the files would be if the paths were also on disk here (hash, audit, initrd read them there). */
  readonly realStoreDir: string;
  /** Every narinfo loaded so far (for NARs on demand). */
  readonly narInfos = new Map<StorePath, NarInfo>();

  constructor(
    private readonly cache: CacheOptions,
    readonly storeDir: string,
    realStoreDir: string = storeDir,
    private readonly progress: boolean = process.stderr.isTTY === true,
  ) {
    this.realStoreDir = realStoreDir;
    const http = !cache.url.startsWith('file://');
    this.description = `binary cache ${displayUrl(cache.url)}${http ? ` (${cache.connections} connections)` : ''}`;
  }

  loadClosure(roots: readonly StorePath[]): RefGraph {
    const infos = walkSync({ cache: this.cache, storeDir: this.storeDir, roots: [...roots], progress: this.progress });
    const index = new Map<string, number>();
    infos.forEach((n, i) => {
      index.set(n.storePath, i);
      this.narInfos.set(n.storePath, n);
    });
    let edgeCount = 0;
    for (const n of infos) edgeCount += n.references.length;
    const edgeFrom = new Uint32Array(edgeCount);
    const edgeTo = new Uint32Array(edgeCount);
    let e = 0;
    infos.forEach((n, i) => {
      for (const r of n.references) {
        edgeFrom[e] = i;
        edgeTo[e++] = index.get(r)!; // the walk fetched every reference or failed
      }
    });
    return buildRefGraph({
      storeDir: this.storeDir,
      paths: infos.map((n) => n.storePath),
      narSize: Float64Array.from(infos, (n) => n.narSize),
      narHash: infos.map((n) => n.narHash),
      deriver: infos.map((n) => n.deriver),
      edgeFrom,
      edgeTo,
      edgeCount,
    });
  }

  /**
   * A directory holding the files of `paths` (by base name), for commands that read bytes: the
   * local store dir when they are all on disk there, else a temporary one with the missing paths'
   * NARs fetched from the cache (verified) and the others copied. Removed when the process exits.
   */
  async storeDirWith(paths: readonly StorePath[], log?: (msg: string) => void): Promise<string> {
    // Loaded here: closure commands never need it (start-up time).
    const { materialize } = await import('./nar-fetch.js');
    const client = openCacheClient(this.cache);
    try {
      return await materialize(client, this.narInfos, paths, this.realStoreDir, {
        connections: Math.min(this.cache.connections, 8),
        ...(log ? { log } : {}),
      });
    } finally {
      await client.close();
    }
  }
}

/**
 * `a` itself, or, when its graph came from a binary cache, `a` with the files of `paths` readable
 * under its source's realStoreDir (fetched from the cache where they are not on disk): for the
 * commands that read bytes (audit).
 */
export async function withBytesOf<A extends { readonly source: GraphSource }>(a: A, paths: readonly StorePath[], log?: (msg: string) => void): Promise<A> {
  if (!(a.source instanceof BinaryCacheSource) || paths.length === 0) return a;
  const dir = await a.source.storeDirWith(paths, log);
  if (dir === a.source.realStoreDir) return a;
  // The same source, its files elsewhere.
  const source: GraphSource = Object.create(a.source, { realStoreDir: { value: dir } });
  return { ...a, source };
}
