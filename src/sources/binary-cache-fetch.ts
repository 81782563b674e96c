/**
 * The asynchronous half of the binary cache source: fetching a cache's files (`file://` from disk,
 * `http(s)://` through undici, the HTTP client behind Node's fetch: keep-alive, a bounded pool,
 * HTTP(S)_PROXY/NO_PROXY) and the breadth-first walk of narinfos that keeps N lookups in flight.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import { errnoCode, NixSealError } from '../errors.js';
import { parseCacheInfo, parseNarInfo, type NarInfo } from '../store/narinfo.js';
import { baseNameOf, hashPartOf, type StorePath } from '../store/store-path.js';
import { itemAt } from '../checked-index.js';

export interface CacheOptions {
  /** The cache's URL as given (`file:///dir`, `http://host:port/prefix`); credentials in it are used, never shown. */
  url: string;
  /** How many requests may be in flight at once (Nix's http-connections; default 25). */
  connections: number;
  /** A netrc file with credentials (Nix's netrc-file). */
  netrcFile?: string | undefined;
  /** Attempts per request on 5xx answers and network errors (Nix's download-attempts: 5). */
  attempts?: number;
  /** Backoff before the first retry, doubled each time (jittered). */
  retryDelayMs?: number;
  /** How long a request may wait for its headers or between body chunks. */
  timeoutMs?: number;
}

/** The cache's URL with any user:password removed, and no trailing slash: what messages show. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    return u.href.replace(/\/+$/, '');
  } catch {
    return url.replace(/\/\/[^/@]*@/, '//');
  }
}

interface NetrcEntry {
  login?: string;
  password?: string;
}

/** A netrc file (curl's syntax, which Nix uses): `machine H login L password P`, `default`, `macdef` skipped. */
export function parseNetrc(text: string): { machines: Map<string, NetrcEntry>; fallback?: NetrcEntry } {
  const machines = new Map<string, NetrcEntry>();
  let fallback: NetrcEntry | undefined;
  let current: NetrcEntry | undefined;
  const lines = text.split('\n');
  for (let li = 0; li < lines.length; li++) {
    const tokens = itemAt(lines, li).replace(/#.*$/, '').split(/\s+/).filter((t) => t !== '');
    for (let i = 0; i < tokens.length; i++) {
      const t = itemAt(tokens, i);
      if (t === 'machine') {
        current = {};
        const host = tokens[++i];
        if (host !== undefined && !machines.has(host)) machines.set(host, current);
      } else if (t === 'default') {
        current = fallback = {};
      } else if (t === 'login' && current) current.login = tokens[++i] ?? '';
      else if (t === 'password' && current) current.password = tokens[++i] ?? '';
      else if (t === 'account') i++;
      else if (t === 'macdef') {
        // A macro runs to the next blank line.
        while (li + 1 < lines.length && itemAt(lines, li + 1).trim() !== '') li++;
        break;
      }
    }
  }
  return fallback ? { machines, fallback } : { machines };
}

/** Reads one file of a cache: its text, or undefined when the cache does not have it (404/ENOENT). */
export interface CacheClient {
  readonly display: string;
  getText(rel: string): Promise<string | undefined>;
  /** A file's bytes as a stream (NARs), or undefined when the cache does not have it. */
  getStream(rel: string): Promise<AsyncIterable<Buffer> | undefined>;
  close(): Promise<void>;
}

class FileCacheClient implements CacheClient {
  constructor(
    private readonly dir: string,
    readonly display: string,
  ) {}
  async getText(rel: string): Promise<string | undefined> {
    try {
      return await fs.promises.readFile(`${this.dir}/${rel}`, 'utf8');
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw new NixSealError('EIO', `Cannot read ${this.display}/${rel}: ${(err as Error).message}`, { path: `${this.display}/${rel}`, cause: err });
    }
  }
  async getStream(rel: string): Promise<AsyncIterable<Buffer> | undefined> {
    const file = `${this.dir}/${rel}`;
    try {
      await fs.promises.access(file, fs.constants.R_OK);
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
      throw new NixSealError('EIO', `Cannot read ${this.display}/${rel}: ${code ?? (err as Error).message}`, { path: `${this.display}/${rel}`, cause: err });
    }
    return fs.createReadStream(file, { highWaterMark: 1 << 20 });
  }
  async close(): Promise<void> {}
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A response body: its chunks, or all of it as text. */
interface Body extends AsyncIterable<Buffer> {
  text(): Promise<string>;
}

/** What one GET answered: the status and a body to read or drop. */
interface Answer {
  status: number;
  body: Body;
  dump(): Promise<void>;
}

/**
 * Sends GETs. Without a proxy: node:http(s) with a keep-alive agent of `connections` sockets (its
 * native HTTP parser costs a fraction of undici's WebAssembly one per small narinfo, and nothing
 * to load); with HTTP(S)_PROXY set: undici's EnvHttpProxyAgent, which honours NO_PROXY too (Node
 * 20's own HTTP client ignores those variables).
 */
interface Transport {
  get(url: string, headers: Record<string, string>): Promise<Answer>;
  close(): Promise<void>;
}

class NodeTransport implements Transport {
  private readonly agent: http.Agent;
  constructor(
    private readonly mod: typeof http | typeof https,
    connections: number,
    private readonly timeout: number,
  ) {
    this.agent = new mod.Agent({ keepAlive: true, maxSockets: connections, keepAliveMsecs: 30_000, scheduling: 'lifo' });
  }
  get(url: string, headers: Record<string, string>): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = this.mod.get(url, { agent: this.agent, headers }, (res) => {
        const body: Body = Object.assign(res as AsyncIterable<Buffer>, {
          async text(): Promise<string> {
            const chunks: Buffer[] = [];
            for await (const c of res) chunks.push(c as Buffer);
            return chunks.length === 1 ? itemAt(chunks, 0).toString('utf8') : Buffer.concat(chunks).toString('utf8');
          },
        });
        resolve({ status: res.statusCode ?? 0, body, dump: () => (res.resume(), Promise.resolve()) });
      });
      // No answer, or no byte of the body, for `timeout` ms: a network error like any other.
      req.setTimeout(this.timeout, () => req.destroy(Object.assign(new Error('timed out'), { code: 'UND_ERR_HEADERS_TIMEOUT' })));
      req.on('error', reject);
    });
  }
  async close(): Promise<void> {
    this.agent.destroy();
  }
}

class UndiciTransport implements Transport {
  private readonly dispatcher: import('undici').Dispatcher;
  constructor(
    private readonly undici: typeof import('undici'),
    connections: number,
    timeout: number,
  ) {
    const options = { connections, keepAliveTimeout: 30_000, headersTimeout: timeout, bodyTimeout: timeout, connectTimeout: timeout };
    this.dispatcher = new undici.EnvHttpProxyAgent(options);
  }
  async get(url: string, headers: Record<string, string>): Promise<Answer> {
    const res = await this.undici.request(url, { dispatcher: this.dispatcher, method: 'GET', headers });
    return { status: res.statusCode, body: res.body, dump: () => res.body.dump() };
  }
  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}

class HttpCacheClient implements CacheClient {
  private readonly base: string;
  private readonly headers: Record<string, string>;
  private transport: Transport | undefined;
  constructor(
    private readonly opts: CacheOptions,
    readonly display: string,
  ) {
    const u = new URL(opts.url);
    let login = decodeURIComponent(u.username);
    let password = decodeURIComponent(u.password);
    if (login === '' && opts.netrcFile !== undefined) {
      let text: string;
      try {
        text = fs.readFileSync(opts.netrcFile, 'utf8');
      } catch (err) {
        throw new NixSealError('EIO', `Cannot read netrc file ${opts.netrcFile}: ${errnoCode(err) ?? (err as Error).message}`, {
          path: opts.netrcFile,
          cause: err,
        });
      }
      const netrc = parseNetrc(text);
      const e = netrc.machines.get(u.hostname) ?? netrc.fallback;
      login = e?.login ?? '';
      password = e?.password ?? '';
    }
    this.headers = login !== '' || password !== '' ? { authorization: 'Basic ' + Buffer.from(`${login}:${password}`).toString('base64') } : {};
    u.username = '';
    u.password = '';
    u.search = '';
    u.hash = '';
    this.base = u.href.replace(/\/+$/, '');
  }

  private async client(): Promise<Transport> {
    if (!this.transport) {
      const timeout = this.opts.timeoutMs ?? 60_000;
      const env = process.env;
      const proxied = [env.http_proxy, env.HTTP_PROXY, env.https_proxy, env.HTTPS_PROXY].some((v) => v !== undefined && v !== '');
      this.transport = proxied
        ? new UndiciTransport(await import('undici'), this.opts.connections, timeout)
        : new NodeTransport(this.base.startsWith('https:') ? https : http, this.opts.connections, timeout);
    }
    return this.transport;
  }

  /** A body cut short (reset, timeout between chunks) is fetched again, like a failed request. */
  async getText(rel: string): Promise<string | undefined> {
    const attempts = this.opts.attempts ?? 5;
    let delay = this.opts.retryDelayMs ?? 100;
    for (let attempt = 1; ; attempt++) {
      const body = await this.get(rel);
      if (body === undefined) return undefined;
      try {
        return await body.text();
      } catch (err) {
        if (attempt >= attempts) {
          throw new NixSealError('EIO', `Cannot fetch ${this.display}/${rel}: ${networkWhy(err)} (after ${attempts} attempts)`, { path: `${this.display}/${rel}` });
        }
      }
      await sleep(delay * (0.5 + Math.random()));
      delay *= 2;
    }
  }

  /** The body streams as it arrives; a failure after the headers is not retried (the bytes are already used). */
  async getStream(rel: string): Promise<AsyncIterable<Buffer> | undefined> {
    return await this.get(rel);
  }

  /** GETs `rel`; 404/403/410 → undefined (as Nix: "not in the cache"); 5xx and network errors retried with backoff. */
  private async get(rel: string): Promise<Body | undefined> {
    const transport = await this.client();
    const attempts = this.opts.attempts ?? 5;
    let delay = this.opts.retryDelayMs ?? 100;
    const shown = `${this.display}/${rel}`;
    for (let attempt = 1; ; attempt++) {
      let why: string;
      try {
        const res = await transport.get(`${this.base}/${rel}`, this.headers);
        if (res.status === 200) return res.body;
        await res.dump();
        if (res.status === 404 || res.status === 410 || res.status === 403) return undefined;
        why = `HTTP ${res.status}`;
        if (res.status < 500 && res.status !== 429 && res.status !== 408) {
          throw new NixSealError('EIO', `Cannot fetch ${shown}: ${why}${res.status === 401 ? ' (credentials: --netrc-file)' : ''}`, { path: shown });
        }
      } catch (err) {
        if (err instanceof NixSealError) throw err;
        why = networkWhy(err);
        // A certificate problem does not go away on retry.
        if (tlsProblem(err)) throw new NixSealError('EIO', `Cannot fetch ${shown}: ${why}`, { path: shown });
      }
      if (attempt >= attempts) {
        throw new NixSealError('EIO', `Cannot fetch ${shown}: ${why} (after ${attempts} attempts)`, { path: shown });
      }
      await sleep(delay * (0.5 + Math.random()));
      delay *= 2;
    }
  }

  async close(): Promise<void> {
    await this.transport?.close();
  }
}

function tlsProblem(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string } };
  const code = e?.code ?? e?.cause?.code ?? '';
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(code);
}

/** A network failure in words; never the request's URL (it could carry credentials). */
function networkWhy(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e?.code ?? e?.cause?.code;
  switch (code) {
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return 'timed out';
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'connection reset';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found';
    default:
      if (code !== undefined && tlsProblem(err)) return `TLS: ${code} (${e?.cause?.message ?? e?.message ?? ''}; a private CA can be added with NODE_EXTRA_CA_CERTS)`;
      return code ?? e?.message ?? String(err);
  }
}

/** Removes a tree unpacked read-only (directories 0555 cannot be emptied as a non-root user). */
export function removeTree(p: string): void {
  const walk = (q: string): void => {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(q);
    } catch {
      return;
    }
    if (!st.isDirectory()) return;
    fs.chmodSync(q, 0o755);
    for (const n of fs.readdirSync(q)) walk(path.join(q, n));
  };
  walk(p);
  fs.rmSync(p, { recursive: true, force: true });
}

/** A client for the cache at `opts.url`: `file://` or `http(s)://`. */
export function openCacheClient(opts: CacheOptions): CacheClient {
  const display = displayUrl(opts.url);
  if (opts.url.startsWith('file://')) {
    const dir = new URL(opts.url).pathname.replace(/\/+$/, '');
    return new FileCacheClient(decodeURIComponent(dir), display);
  }
  return new HttpCacheClient(opts, display);
}

/** Reads nix-cache-info and checks its StoreDir against the store dir asked for (as Nix does). */
export async function checkCacheInfo(client: CacheClient, storeDir: string): Promise<void> {
  const text = await client.getText('nix-cache-info');
  if (text === undefined) {
    throw new NixSealError('EIO', `Cannot open binary cache ${client.display}: it has no nix-cache-info (is it a binary cache?)`, { path: client.display });
  }
  const info = parseCacheInfo(text, `${client.display}/nix-cache-info`);
  if (info.storeDir !== undefined && info.storeDir !== storeDir) {
    throw new NixSealError(
      'EIO',
      `Cannot open binary cache ${client.display}: it is for Nix stores with prefix '${info.storeDir}', not '${storeDir}'`,
      { path: client.display },
    );
  }
}

export interface WalkProgress {
  (done: number, queued: number, inFlight: number): void;
}

/**
 * Fetches the narinfos of the closure of `roots`, breadth first, with up to `connections` lookups
 * in flight. A path that is missing from the cache is an error naming it (and its referrer: the
 * cache then breaks Nix's closure invariant). Returns the narinfos in the order they arrived.
 */
export async function walkClosure(
  client: CacheClient,
  storeDir: string,
  roots: readonly StorePath[],
  connections: number,
  progress?: WalkProgress,
): Promise<NarInfo[]> {
  const seen = new Map<StorePath, StorePath | undefined>(); // path → the referrer that led to it
  const queue: StorePath[] = [];
  const out: NarInfo[] = [];
  for (const r of roots) {
    if (!seen.has(r)) (seen.set(r, undefined), queue.push(r));
  }
  let head = 0;
  let inFlight = 0;
  return await new Promise<NarInfo[]>((resolve, reject) => {
    let failed = false;
    const fail = (err: unknown): void => {
      if (!failed) (failed = true), reject(err);
    };
    const pump = (): void => {
      if (failed) return;
      while (inFlight < connections && head < queue.length) {
        const p = itemAt(queue, head++);
        inFlight++;
        lookup(p).then(
          (info) => {
            inFlight--;
            out.push(info);
            for (const ref of info.references) {
              if (!seen.has(ref)) (seen.set(ref, p), queue.push(ref));
            }
            progress?.(out.length, queue.length - head, inFlight);
            pump();
          },
          (err) => fail(err),
        );
      }
      if (inFlight === 0 && head === queue.length) resolve(out);
    };
    const lookup = async (p: StorePath): Promise<NarInfo> => {
      const rel = `${hashPartOf(p)}.narinfo`;
      const text = await client.getText(rel);
      if (text === undefined) {
        const referrer = seen.get(p);
        throw new NixSealError(
          'EINVALIDPATH',
          referrer === undefined
            ? `Cannot use ${p}: it is not in the binary cache ${client.display}`
            : `Cannot load the closure from ${client.display}: ${baseNameOf(p)}, a reference of ${referrer}, is not in the cache`,
          { path: p },
        );
      }
      return parseNarInfo(text, `${client.display}/${rel}`, storeDir, p);
    };
    pump();
  });
}
