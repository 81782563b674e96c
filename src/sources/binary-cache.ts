/**
 * A Nix binary cache as a graph source: `file:///dir` (what `nix copy --to file://` writes) or
 * `http(s)://host[:port][/prefix]`. The closure is walked from the roots by fetching narinfos; see
 * binary-cache-fetch.ts for the HTTP side.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { NixSealError, type ErrorCode } from '../errors.js';
import { buildRefGraph, type RefGraph } from '../graph/ref-graph.js';
import type { NarInfoRecord } from '../store/narinfo.js';
import { baseNameOf, type StorePath } from '../store/store-path.js';
import { displayUrl, removeTree, type CacheOptions } from './binary-cache-fetch.js';
import type * as WorkerModule from './binary-cache-worker.js';
import type { GraphSource } from './source.js';

type WorkerFunctions = Pick<typeof WorkerModule, 'runWalk' | 'runFetch'>;

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
  .then((m) => m[workerData.fn](workerData.req))
  .then(
    (value) => done({ ok: true, value }),
    (e) => done({ ok: false, error: { name: e && e.name, code: e && e.code, message: String(e && e.message || e), path: e && e.details && e.details.path, stack: e && e.stack } }),
  );
`;

interface WorkerReply<T> {
  ok: boolean;
  value?: T;
  error?: { name?: string; code?: string; message: string; path?: string; stack?: string };
}

/**
 * Runs one of binary-cache-worker.ts' asynchronous functions in a worker and waits for it:
 * GraphSource.loadClosure and materialize are synchronous.
 */
function inWorker<K extends keyof WorkerFunctions>(fn: K, req: Parameters<WorkerFunctions[K]>[0]): Awaited<ReturnType<WorkerFunctions[K]>> {
  const cell = new SharedArrayBuffer(4);
  const { port1, port2 } = new MessageChannel();
  const module = new URL('./binary-cache-worker.js', import.meta.url).href;
  const worker = new Worker(STUB, { eval: true, workerData: { port: port2, cell, module, fn, req }, transferList: [port2] });
  worker.unref();
  try {
    Atomics.wait(new Int32Array(cell), 0, 0);
    const reply = receiveMessageOnPort(port1)?.message as WorkerReply<Awaited<ReturnType<WorkerFunctions[K]>>> | undefined;
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
    return reply.value!;
  } finally {
    port1.close();
    void worker.terminate();
  }
}

export class BinaryCacheSource implements GraphSource {
  readonly description: string;
  /** Where the files would be if the paths were also on disk here (read when they are). */
  readonly realStoreDir: string;
  /** Every narinfo loaded so far (for NARs on demand). */
  readonly narInfos = new Map<StorePath, NarInfoRecord>();
  /**
   * The temporary store dir NARs are fetched into, once one was needed; held in an object so that
   * views of this source (withBytesOf) share it.
   */
  private readonly fetched: { dir?: string } = {};
  private readonly localDir: string;

  constructor(
    private readonly cache: CacheOptions,
    readonly storeDir: string,
    realStoreDir: string = storeDir,
    private readonly progress: boolean = process.stderr.isTTY === true,
    private readonly log: (msg: string) => void = () => {},
  ) {
    this.realStoreDir = this.localDir = realStoreDir;
    const http = !cache.url.startsWith('file://');
    this.description = `binary cache ${displayUrl(cache.url)}${http ? ` (${cache.connections} connections)` : ''}`;
  }

  loadClosure(roots: readonly StorePath[]): RefGraph {
    const { infos, edgeFrom, edgeTo } = inWorker('runWalk', { cache: this.cache, storeDir: this.storeDir, roots: [...roots], progress: this.progress });
    for (const n of infos) this.narInfos.set(n.storePath, n);
    return buildRefGraph({
      storeDir: this.storeDir,
      paths: infos.map((n) => n.storePath),
      narSize: Float64Array.from(infos, (n) => n.narSize),
      narHash: infos.map((n) => n.narHash),
      deriver: infos.map((n) => n.deriver),
      edgeFrom,
      edgeTo,
      edgeCount: edgeFrom.length,
    });
  }

  /**
   * NARs on demand (GraphSource.materialize): the local store dir when every path is on disk there
   * and nothing was fetched yet; otherwise a temporary store dir (made once, removed by close()
   * and at exit) into which each path is copied from disk, or its NAR fetched from the cache,
   * decompressed, verified (FileSize, FileHash, NarSize, NarHash while streaming) and unpacked.
   * A path whose narinfo was not loaded (hash) has it fetched first. A mismatch is an error and
   * leaves nothing of that path.
   */
  materialize(paths: readonly string[]): string {
    const want = [...new Set(paths)] as StorePath[];
    const has = (dir: string) => (p: StorePath) => fs.existsSync(path.join(dir, baseNameOf(p)));
    if (this.fetched.dir === undefined) {
      if (want.every(has(this.localDir))) return this.localDir;
      this.fetched.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nix-seal-nars-'));
      process.on('exit', this.onExit);
    }
    const dir = this.fetched.dir;
    const todo = want.filter((p) => !has(dir)(p));
    if (todo.length === 0) return dir;
    const remote = todo.filter((p) => !has(this.localDir)(p));
    if (remote.length > 0) this.log(`fetching ${remote.length} NAR${remote.length === 1 ? '' : 's'} from ${displayUrl(this.cache.url)} into ${dir}`);
    const infos = inWorker('runFetch', {
      cache: { ...this.cache, connections: Math.min(this.cache.connections, 8) },
      storeDir: this.storeDir,
      localDir: this.localDir,
      dir,
      paths: todo,
      infos: remote.flatMap((p) => this.narInfos.get(p) ?? []),
    });
    for (const n of infos) this.narInfos.set(n.storePath, n);
    return dir;
  }

  private readonly onExit = (): void => this.removeFetched();

  private removeFetched(): void {
    if (this.fetched.dir === undefined) return;
    removeTree(this.fetched.dir);
    delete this.fetched.dir;
  }

  close(): void {
    this.removeFetched();
    process.removeListener('exit', this.onExit);
  }
}
