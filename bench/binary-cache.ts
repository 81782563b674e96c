/**
 * binary-cache benchmark: `nix-seal closure ROOT --store http://…` against Nix 2.8's
 * `nix path-info -r --json --store http://…` (which fetches one narinfo at a time), in the same
 * run, on a synthetic cache of 10,000 paths served by nginx on loopback:
 *
 * - with 10 ms added to every request by a delaying proxy in front of nginx (this kernel has no
 *   netem), started and stopped by the benchmark, and
 * - without added latency (straight to nginx).
 *
 * The cache is generated once under `.bench/binary-cache/`: valid narinfos (random hashes, a wide
 * and shallow DAG: each path refers to 8 children plus up to 3 random later paths) and
 * nix-cache-info; no NARs (neither command fetches any). Both commands must list the same paths.
 * Nix's narinfo disk cache is pointed at a fresh directory for each run, so it fetches every time.
 * Reports seconds, requests per second, the ratio nix-seal/nix and peak RSS (GNU time).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNix32 } from '../src/store/nix32.js';
import { CLI } from './closure.js';
import { BENCH_DIR, fmtInt, fmtMB, fmtSeconds, mark, prng, requireTool, runWithTime, type Benchmark, type BenchOptions, type BenchResult, type TimedRun } from './lib.js';

const CACHE_DIR = join(BENCH_DIR, 'binary-cache');
const FIXTURE = { version: 1, paths: 10_000, fanout: 8, extra: 3, seed: 0xca_c4e };
const STORE_DIR = '/nix/store';
const DELAY_MS = 10;
const TARGETS = { delayedRatio: 0.1, directRatio: 0.5, maxRssMB: 200 } as const;

interface Fixture {
  params: typeof FIXTURE;
  root: string;
  edges: number;
}

export function ensureCache(log: (s: string) => void): Fixture {
  const meta = join(CACHE_DIR, 'fixture.json');
  try {
    const f = JSON.parse(readFileSync(meta, 'utf8')) as Fixture;
    if (JSON.stringify(f.params) === JSON.stringify(FIXTURE)) {
      log(`binary-cache: reusing the cache in ${CACHE_DIR}`);
      return f;
    }
  } catch {
    // generate below
  }
  log(`binary-cache: generating ${fmtInt(FIXTURE.paths)} narinfos in ${CACHE_DIR} …`);
  rmSync(CACHE_DIR, { recursive: true, force: true });
  mkdirSync(CACHE_DIR, { recursive: true });
  const rnd = prng(FIXTURE.seed);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rnd() * 256));
  const n = FIXTURE.paths;
  const base = Array.from({ length: n }, (_, i) => `${encodeNix32(bytes(20))}-pkg-${i}`);
  let edges = 0;
  for (let i = 0; i < n; i++) {
    const refs = new Set<number>();
    for (let c = FIXTURE.fanout * i + 1; c <= FIXTURE.fanout * i + FIXTURE.fanout && c < n; c++) refs.add(c);
    const extra = Math.floor(rnd() * (FIXTURE.extra + 1));
    for (let k = 0; k < extra && i + 1 < n; k++) refs.add(i + 1 + Math.floor(rnd() * (n - i - 1)));
    edges += refs.size;
    const narHash = encodeNix32(bytes(32));
    const narSize = 1000 + Math.floor(rnd() * 1_000_000);
    writeFileSync(
      join(CACHE_DIR, `${base[i]!.slice(0, 32)}.narinfo`),
      [
        `StorePath: ${STORE_DIR}/${base[i]}`,
        `URL: nar/${narHash}.nar`,
        'Compression: none',
        `FileHash: sha256:${narHash}`,
        `FileSize: ${narSize}`,
        `NarHash: sha256:${narHash}`,
        `NarSize: ${narSize}`,
        `References: ${[...refs].map((r) => base[r]).join(' ')}`,
        '',
      ].join('\n'),
    );
  }
  writeFileSync(join(CACHE_DIR, 'nix-cache-info'), `StoreDir: ${STORE_DIR}\nWantMassQuery: 1\nPriority: 40\n`);
  const f: Fixture = { params: FIXTURE, root: `${STORE_DIR}/${base[0]}`, edges };
  writeFileSync(meta, JSON.stringify(f));
  return f;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

export async function startNginx(dir: string): Promise<{ port: number; child: ChildProcess }> {
  const nginx = requireTool('nginx', 'apt-get install -y nginx (see .ci/setup)');
  const port = await freePort();
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    [
      process.getuid?.() === 0 ? 'user root;' : '',
      'daemon off;',
      'worker_processes auto;', // Debian's default: one worker per core
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log;`,
      'events { worker_connections 1024; }',
      'http {',
      '  access_log off;',
      '  keepalive_requests 100000;',
      `  client_body_temp_path ${dir}/tmp/body; proxy_temp_path ${dir}/tmp/proxy; fastcgi_temp_path ${dir}/tmp/fcgi;`,
      `  uwsgi_temp_path ${dir}/tmp/uwsgi; scgi_temp_path ${dir}/tmp/scgi;`,
      `  server { listen 127.0.0.1:${port}; root ${CACHE_DIR}; }`,
      '}',
      '',
    ].join('\n'),
  );
  const child = spawn(nginx, ['-p', dir, '-c', conf, '-e', `${dir}/error.log`], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/nix-cache-info`)).ok) break;
    } catch {
      // not yet
    }
    if (i > 100 || child.exitCode !== null) throw new Error(`nginx did not start: ${readFileSync(`${dir}/error.log`, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, child };
}

/** A proxy that holds every request DELAY_MS before passing it to nginx; counts requests. */
async function startDelayProxy(upstream: number): Promise<{ port: number; server: http.Server; requests: () => number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    setTimeout(() => {
      const up = http.request({ host: '127.0.0.1', port: upstream, path: req.url, method: req.method, headers: req.headers, agent }, (r) => {
        res.writeHead(r.statusCode!, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.writeHead(502).end());
      req.pipe(up);
    }, DELAY_MS);
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, server, requests: () => requests };
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '').sort();

export const binaryCacheBenchmark: Benchmark = {
  name: 'binary-cache',
  description: `nix-seal closure --store http://… vs nix path-info -r --store http://… (10,000 paths, nginx, ±${DELAY_MS} ms a request)`,
  async run(opts: BenchOptions): Promise<BenchResult> {
    const { log } = opts;
    const loadAtStart = loadavg().map((l) => l.toFixed(1)).join(', ');
    requireTool('nix', 'apt-get install -y nix-bin');
    const f = ensureCache(log);
    const work = mkdtempSync(join(tmpdir(), 'nix-seal-bench-cache-'));
    const { port, child } = await startNginx(join(work, 'nginx'));
    const proxy = await startDelayProxy(port);
    const failures: string[] = [];
    try {
      const confDir = join(work, 'etc-nix');
      mkdirSync(confDir);
      writeFileSync(join(confDir, 'nix.conf'), 'experimental-features = nix-command\nsubstituters =\n');
      let n = 0;
      /** A fresh HOME and cache dir per Nix run: its narinfo disk cache would answer the second run. */
      const nixEnv = (): NodeJS.ProcessEnv => {
        const home = join(work, `home-${++n}`);
        mkdirSync(home);
        return { ...process.env, HOME: home, XDG_CACHE_HOME: join(home, '.cache'), NIX_CONF_DIR: confDir, NIX_USER_CONF_FILES: join(confDir, 'nix.conf'), NIX_REMOTE: '' };
      };
      const runNix = async (url: string): Promise<TimedRun> => {
        const r = await runWithTime(['nix', 'path-info', '-r', '--json', '--store', url, f.root], nixEnv());
        if (r.code !== 0) throw new Error(`nix path-info failed: ${r.stderr}`);
        return r;
      };
      const runSeal = async (url: string): Promise<TimedRun> => {
        const r = await runWithTime([process.execPath, CLI, 'closure', f.root, '--store', url], { ...process.env, NIX_STORE_DIR: STORE_DIR });
        if (r.code !== 0) throw new Error(`nix-seal closure failed: ${r.stderr}`);
        return r;
      };
      const sealRuns = opts.runs ?? 3;
      const rows: { name: string; nix: TimedRun; seal: TimedRun[]; paths: number; requests: number }[] = [];
      for (const [name, url] of [
        [`+${DELAY_MS} ms a request (proxy)`, `http://127.0.0.1:${proxy.port}`],
        ['no added latency', `http://127.0.0.1:${port}`],
      ] as const) {
        log(`binary-cache: ${name}: nix path-info -r …`);
        const before = proxy.requests();
        const nix = await runNix(url);
        const nixRequests = proxy.requests() - before;
        const nixPaths = (JSON.parse(nix.stdout) as { path: string }[]).map((p) => p.path).sort();
        const seal: TimedRun[] = [];
        for (let i = 0; i < sealRuns; i++) {
          log(`binary-cache: ${name}: nix-seal closure (${i + 1}/${sealRuns}) …`);
          seal.push(await runSeal(url));
        }
        const sealPaths = lines(seal[0]!.stdout);
        if (JSON.stringify(sealPaths) !== JSON.stringify(nixPaths)) failures.push(`${name}: nix-seal and nix list different paths (${sealPaths.length} vs ${nixPaths.length})`);
        if (url.includes(String(proxy.port)) && nixRequests < nixPaths.length) failures.push(`${name}: nix made ${nixRequests} requests for ${nixPaths.length} paths`);
        rows.push({ name, nix, seal, paths: nixPaths.length, requests: nixPaths.length + 1 });
      }
      const median = (rs: TimedRun[]) => [...rs].sort((a, b) => a.seconds - b.seconds)[Math.floor(rs.length / 2)]!;
      const table = rows.map((r) => {
        const s = median(r.seal);
        const ratio = s.seconds / r.nix.seconds;
        const target = r.name.startsWith('+') ? TARGETS.delayedRatio : TARGETS.directRatio;
        const rss = Math.max(...r.seal.map((x) => x.maxRssKb));
        return {
          ...r,
          s,
          ratio,
          target,
          rss,
          md: `| ${r.name} | ${fmtInt(r.paths)} | ${fmtSeconds(r.nix.seconds)} (${fmtInt(Math.round(r.requests / r.nix.seconds))} req/s) | ${fmtSeconds(s.seconds)} (${fmtInt(Math.round(r.requests / s.seconds))} req/s) | ${ratio.toFixed(3)} | ≤ ${target} ${mark(ratio <= target)} | ${fmtMB(rss)} / ${fmtMB(r.nix.maxRssKb)} |`,
        };
      });
      const peak = Math.max(...table.map((t) => t.rss));
      const markdown = [
        `## Binary caches: \`nix-seal closure --store http://…\` vs \`nix path-info -r --store http://…\``,
        '',
        `A synthetic cache of ${fmtInt(FIXTURE.paths)} narinfos (${fmtInt(f.edges)} references; generated by bench/binary-cache.ts) served by nginx on loopback; the added latency comes from a proxy in front of nginx that holds each request ${DELAY_MS} ms (the kernel has no netem). Nix 2.8 fetches one narinfo at a time; nix-seal keeps 25 requests in flight (\`--http-connections\`, default). Nix's narinfo disk cache is fresh for each run. nix-seal: median of ${sealRuns} runs; nix: 1 run. Requests: one narinfo per path plus nix-cache-info.`,
        '',
        '| latency | paths | nix path-info -r | nix-seal closure | nix-seal/nix | target | peak RSS nix-seal / nix |',
        '|---|--:|--:|--:|--:|---|--:|',
        ...table.map((t) => t.md),
        '',
        `Peak memory of nix-seal: ${fmtMB(peak)} (target < ${TARGETS.maxRssMB} MB) ${mark(peak * 1024 < TARGETS.maxRssMB * 1e6)}. Same paths from both: ${mark(failures.length === 0)}.`,
        '',
        `Run: \`node dist/bench/run.js binary-cache --runs ${sealRuns}\` (Node ${process.version}, ${cpus().length} cores); load average at the start ${loadAtStart}, at the end ${loadavg().map((l) => l.toFixed(1)).join(', ')} (a shared machine: both commands run under the same load).`,
        '',
        'Where nix-seal\'s time goes without latency (`node --cpu-prof`, the walk thread): about a third is the kernel\'s loopback work inside the ' +
          'write of each request (one `write` per GET); the rest is node:http\'s per-request cost and narinfo parsing. The walk uses node:http(s) ' +
          "with a keep-alive agent (native HTTP parser; undici's WebAssembly parser and its module load cost twice as much here; undici stays for " +
          'HTTP(S)_PROXY), checks each base name once, and hands the graph to the main thread as typed arrays of edge indices.',
      ].join('\n');
      return {
        ok: failures.length === 0,
        failures,
        markdown,
        data: {
          paths: FIXTURE.paths,
          edges: f.edges,
          delayMs: DELAY_MS,
          rows: table.map((t) => ({
            latency: t.name,
            paths: t.paths,
            nixSeconds: t.nix.seconds,
            nixRssKb: t.nix.maxRssKb,
            sealSeconds: t.s.seconds,
            sealRssKb: t.rss,
            ratio: t.ratio,
            sealRequestsPerSecond: t.requests / t.s.seconds,
            nixRequestsPerSecond: t.requests / t.nix.seconds,
          })),
        },
      };
    } finally {
      proxy.server.closeAllConnections();
      proxy.server.close();
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
      rmSync(work, { recursive: true, force: true });
      if (existsSync(work)) log(`binary-cache: could not remove ${work}`);
    }
  },
};
