/**
 * Binary caches as sources, against the real thing: the seed scenario copied by Nix 2.8's
 * `nix copy --to file://DIR` (xz, and uncompressed), read from the directory and over HTTP from a
 * real nginx on loopback. Every answer must equal the one from the store's own database.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { NixSealError } from '../src/errors.js';
import { CLI, isOneLineError, type CliRun } from './support/cli.js';
import { seedCli, withSeedScenario, type SeedScenario } from './support/seed-scenario.js';
import { requireTools, which } from './support/tools.js';

const seed = withSeedScenario('nix-seal-cache-');
const cleanups: (() => void)[] = [];
after(() => {
  for (const c of cleanups.reverse()) c();
  seed.cleanup();
});

/** What the CLI exits with on a (non-usage) error on this branch: whatever NixSealError says. */
const ERROR_EXIT = new NixSealError('EIO', '').exitCode;

interface Caches {
  s: SeedScenario;
  xz: string;
  none: string;
}
let caches: Caches | undefined;

/** The seed scenario's launcher closure, copied into two file:// caches by Nix itself. */
function setup(t: TestContext): Caches | undefined {
  const s = seed.need(t, 'nix');
  if (!s) return undefined;
  if (caches) return caches;
  const xz = path.join(s.env.root, 'cache-xz');
  const none = path.join(s.env.root, 'cache-none');
  const copy = (url: string) => s.env.run('nix', ['--extra-experimental-features', 'nix-command', 'copy', '--to', url, s.launcher]);
  copy(`file://${xz}?compression=xz`);
  copy(`file://${none}?compression=none`);
  caches = { s, xz, none };
  return caches;
}

const cli = seedCli;

/** runCli without blocking this process' event loop (the test's own HTTP server must answer meanwhile). */
function cliAsync(s: SeedScenario, ...args: string[]): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], { env: s.env.env, cwd: s.env.root });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => (stdout += d));
    c.stderr.on('data', (d) => (stderr += d));
    c.on('error', reject);
    c.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((r) => srv.close(r));
  return port;
}

/** A real nginx serving `root` on 127.0.0.1, its own config in a temp dir; stopped by its PID. */
async function startNginx(dir: string, root: string, tls?: { cert: string; key: string }): Promise<{ url: string; pid: number }> {
  const port = await freePort();
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  const conf = path.join(dir, 'nginx.conf');
  fs.writeFileSync(
    conf,
    [
      // As root, nginx's workers would drop to `nobody`, who cannot enter the private temp store.
      process.getuid?.() === 0 ? 'user root;' : '',
      'daemon off;',
      'worker_processes 1;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log;`,
      'events { worker_connections 256; }',
      'http {',
      '  access_log off;',
      `  client_body_temp_path ${dir}/tmp/body; proxy_temp_path ${dir}/tmp/proxy; fastcgi_temp_path ${dir}/tmp/fcgi;`,
      `  uwsgi_temp_path ${dir}/tmp/uwsgi; scgi_temp_path ${dir}/tmp/scgi;`,
      '  default_type application/octet-stream;',
      tls
        ? `  server { listen 127.0.0.1:${port} ssl; ssl_certificate ${tls.cert}; ssl_certificate_key ${tls.key}; root ${root}; }`
        : `  server { listen 127.0.0.1:${port}; root ${root}; }`,
      '}',
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn(which('nginx')!, ['-p', dir, '-c', conf, '-e', `${dir}/error.log`], { stdio: 'ignore' });
  const pid = child.pid!;
  cleanups.push(() => {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // already gone
    }
  });
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if (tls) {
        await new Promise<void>((res, rej) => net.connect(port, '127.0.0.1', function (this: net.Socket) {
          this.destroy();
          res();
        }).on('error', rej));
        break;
      }
      const r = await fetch(`${url}/nix-cache-info`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (i > 100 || child.exitCode !== null) throw new Error(`nginx did not start: ${fs.readFileSync(`${dir}/error.log`, 'utf8')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, pid };
}

let nginx: { url: string; pid: number } | undefined;
async function nginxFor(c: Caches): Promise<string> {
  nginx ??= await startNginx(path.join(c.s.env.root, 'nginx'), c.xz);
  return nginx.url;
}

const json = (r: CliRun): unknown => {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
};

test('closure, info, why and closure-info from file:// (xz and none) and http:// equal the database', async (t) => {
  const c = setup(t);
  if (!c || !requireTools(t, 'nginx')) return;
  const { s } = c;
  const url = await nginxFor(c);
  const seal = ['--seal', '*.iso'];
  const queries: string[][] = [
    ['closure', s.launcher, '--json'],
    ['closure', s.launcher, ...seal, '--json'],
    ['info', s.launcher, ...seal, '--json'],
    ['why', s.launcher, s.bash, ...seal, '--json'],
    ['why', s.launcher, s.glibc, '--all', '--json'],
  ];
  const stores = [`file://${c.xz}`, `file://${c.none}`, url, `${url}/`];
  for (const q of queries) {
    const want = json(cli(s, ...q));
    for (const store of stores) {
      const r = await cliAsync(s, ...q, '--store', store, '--http-connections', '3');
      assert.deepEqual(json(r), want, `${q.join(' ')} --store ${store}`);
      assert.equal(r.stderr, '', 'no progress line when stderr is not a terminal');
    }
  }
  // Plain text too: exactly nix-store -qR.
  const plain = await cliAsync(s, 'closure', s.launcher, '--store', url);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, s.env.nixStore(['-qR', s.launcher]));
  // closure-info: the same files (narHash from the cache's nix32, the database's hex: both rendered alike).
  const outDb = path.join(s.env.root, 'ci-db');
  assert.equal(cli(s, 'closure-info', s.launcher, ...seal, '-o', outDb).code, 0);
  for (const store of [`file://${c.xz}`, url]) {
    const out = path.join(s.env.root, `ci-${stores.indexOf(store)}`);
    const r = await cliAsync(s, 'closure-info', s.launcher, ...seal, '-o', out, '--store', store);
    assert.equal(r.code, 0, r.stderr);
    for (const f of ['store-paths', 'registration', 'total-nar-size', 'seals.json']) {
      assert.equal(fs.readFileSync(path.join(out, f), 'utf8'), fs.readFileSync(path.join(outDb, f), 'utf8'), `${store} ${f}`);
    }
  }
  // -v names the source, without credentials.
  const v = await cliAsync(s, 'closure', s.launcher, '-v', '--store', url.replace('//', '//user:sekrit@'));
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stderr, new RegExp(`binary cache ${url.replace(/[.]/g, '\\.')} \\(25 connections\\)`));
  assert.doesNotMatch(v.stderr, /sekrit/);
});

test('a server answering 500 twice, then right, is retried; credentials from --netrc-file are sent and never printed', async (t) => {
  const c = setup(t);
  if (!c) return;
  const { s } = c;
  const failures = new Map<string, number>();
  const auths = new Set<string>();
  // Serves the xz cache itself: each file fails twice with 500 before it is served.
  const srv = http.createServer((req, res) => {
    auths.add(req.headers.authorization ?? '');
    const rel = decodeURIComponent(new URL(req.url!, 'http://x').pathname).replace(/^\/+/, '');
    const n = failures.get(rel) ?? 0;
    failures.set(rel, n + 1);
    if (n < 2) return void res.writeHead(500).end('try again');
    fs.readFile(path.join(c.xz, rel), (err, data) => (err ? res.writeHead(404).end() : res.writeHead(200).end(data)));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => srv.close());
  const url = `http://127.0.0.1:${(srv.address() as net.AddressInfo).port}`;
  const netrc = path.join(s.env.root, 'netrc');
  fs.writeFileSync(netrc, 'machine elsewhere login x password y\nmachine 127.0.0.1\n  login alice\n  password s3cr3t-pw\n');
  const r = await cliAsync(s, 'closure', s.launcher, '--store', url, '--netrc-file', netrc, '-v');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, s.env.nixStore(['-qR', s.launcher]));
  assert.ok([...failures.values()].every((n) => n === 3), JSON.stringify([...failures]));
  assert.deepEqual([...auths], ['Basic ' + Buffer.from('alice:s3cr3t-pw').toString('base64')]);
  assert.doesNotMatch(r.stderr, /s3cr3t|alice/);
  // A server that keeps failing: a one-line error after the attempts, naming the file, not the password.
  const dead = http.createServer((_req, res) => res.writeHead(503).end());
  await new Promise<void>((r2) => dead.listen(0, '127.0.0.1', r2));
  cleanups.push(() => dead.close());
  const deadUrl = `http://alice:s3cr3t-pw@127.0.0.1:${(dead.address() as net.AddressInfo).port}`;
  const d = await cliAsync(s, 'closure', s.launcher, '--store', deadUrl);
  assert.equal(d.code, ERROR_EXIT, d.stderr);
  assert.ok(isOneLineError(d), d.stderr);
  assert.match(d.stderr, /Cannot fetch http:\/\/127\.0\.0\.1:\d+\/nix-cache-info: HTTP 503 \(after 5 attempts\)/);
  assert.doesNotMatch(d.stderr, /s3cr3t|alice/);
});

/** A copy of the xz cache to break. */
function brokenCopy(c: Caches, name: string): string {
  const dir = path.join(c.s.env.root, name);
  fs.cpSync(c.xz, dir, { recursive: true });
  return dir;
}
const narinfo = (dir: string, p: string) => path.join(dir, `${path.basename(p).slice(0, 32)}.narinfo`);

test('missing paths, a narinfo for another path, a StoreDir mismatch: one-line errors naming them', async (t) => {
  const c = setup(t);
  if (!c || !requireTools(t, 'nginx')) return;
  const { s } = c;
  const url = await nginxFor(c);
  const expectError = (r: CliRun, re: RegExp) => {
    assert.equal(r.code, ERROR_EXIT, r.stderr);
    assert.ok(isOneLineError(r), r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stdout, '');
  };
  // A root the cache does not have (over HTTP: nginx answers 404).
  const notThere = `${s.env.storeDir}/${'0'.repeat(32)}-nothing-1.0`;
  expectError(await cliAsync(s, 'closure', notThere, '--store', url), new RegExp(`Cannot use ${notThere}: it is not in the binary cache ${url}`));
  // A reference the cache lacks: the cache breaks the closure invariant.
  const noGlibc = brokenCopy(c, 'cache-no-glibc');
  fs.rmSync(narinfo(noGlibc, s.glibc));
  expectError(
    cli(s, 'closure', s.launcher, '--store', `file://${noGlibc}`),
    new RegExp(`: ${path.basename(s.glibc)}, a reference of ${s.env.storeDir}/\\S+, is not in the cache$`, 'm'),
  );
  // A narinfo that answers for another path.
  const swapped = brokenCopy(c, 'cache-swapped');
  fs.copyFileSync(narinfo(swapped, s.libfoo), narinfo(swapped, s.qemu));
  expectError(
    cli(s, 'closure', s.launcher, '--store', `file://${swapped}`),
    new RegExp(`Cannot parse file://${swapped}/${path.basename(s.qemu).slice(0, 32)}\\.narinfo line 1: StorePath is ${s.libfoo}, but the cache was asked for ${s.qemu}`),
  );
  // A narinfo with a bad size.
  const badSize = brokenCopy(c, 'cache-bad-size');
  fs.writeFileSync(narinfo(badSize, s.bash), fs.readFileSync(narinfo(badSize, s.bash), 'utf8').replace(/^NarSize: (\d+)$/m, 'NarSize: $1x'));
  expectError(cli(s, 'closure', s.launcher, '--store', `file://${badSize}`), /\.narinfo line \d+: NarSize '\d+x' is not a number/);
  // A cache for another store dir.
  const other = brokenCopy(c, 'cache-other-store');
  fs.writeFileSync(path.join(other, 'nix-cache-info'), 'StoreDir: /gnu/store\n');
  expectError(
    cli(s, 'closure', s.launcher, '--store', `file://${other}`),
    new RegExp(`Cannot open binary cache file://${other}: it is for Nix stores with prefix '/gnu/store', not '${s.env.storeDir}'`),
  );
  // Not a cache at all.
  expectError(cli(s, 'closure', s.launcher, '--store', `file://${s.env.root}`), /it has no nix-cache-info \(is it a binary cache\?\)/);
  // Nothing listening.
  const port = await freePort();
  expectError(await cliAsync(s, 'closure', s.launcher, '--store', `http://127.0.0.1:${port}`), /nix-cache-info: connection refused \(after 5 attempts\)/);
  // Usage errors exit 2.
  const u = cli(s, 'closure', s.launcher, '--store', 'file://host/x');
  assert.equal(u.code, 2);
  assert.ok(isOneLineError(u), u.stderr);
  assert.equal(cli(s, 'closure', s.launcher, '--store', url, '--http-connections', '0').code, 2);
});

test('HTTP_PROXY is honoured, and NO_PROXY bypasses it', async (t) => {
  const c = setup(t);
  if (!c || !requireTools(t, 'nginx')) return;
  const { s } = c;
  const url = await nginxFor(c);
  let proxied = 0;
  // A forward proxy: CONNECT tunnels and absolute-URI requests, both counted.
  const proxy = http.createServer((req, res) => {
    proxied++;
    const u = new URL(req.url!);
    const up = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.writeHead(502).end());
    req.pipe(up);
  });
  proxy.on('connect', (req, socket, head) => {
    proxied++;
    const [host, port] = req.url!.split(':');
    const up = net.connect(Number(port), host!, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  cleanups.push(() => proxy.close());
  const proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
  const run = (extra: NodeJS.ProcessEnv) =>
    new Promise<CliRun>((resolve, reject) => {
      const env: NodeJS.ProcessEnv = { ...s.env.env };
      for (const k of ['http_proxy', 'HTTP_PROXY', 'https_proxy', 'HTTPS_PROXY', 'no_proxy', 'NO_PROXY']) delete env[k];
      Object.assign(env, extra);
      const ch = spawn(process.execPath, [CLI, 'closure', s.launcher, '--store', url], { env, cwd: s.env.root });
      let stdout = '';
      let stderr = '';
      ch.stdout.on('data', (d) => (stdout += d));
      ch.stderr.on('data', (d) => (stderr += d));
      ch.on('error', reject);
      ch.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  const want = s.env.nixStore(['-qR', s.launcher]);
  const viaProxy = await run({ HTTP_PROXY: proxyUrl });
  assert.equal(viaProxy.code, 0, viaProxy.stderr);
  assert.equal(viaProxy.stdout, want);
  assert.ok(proxied > 0, 'the proxy saw the requests');
  proxied = 0;
  const bypass = await run({ HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' });
  assert.equal(bypass.code, 0, bypass.stderr);
  assert.equal(bypass.stdout, want);
  assert.equal(proxied, 0, 'NO_PROXY bypasses the proxy');
});

test('with the local store gone, initrd from the cache equals the local one byte for byte and audit and why --precise give the same answers; bad NARs are one-line errors and leave no output', async (t) => {
  const c = setup(t);
  if (!c || !requireTools(t, 'nginx', 'zstd', 'xz', 'bzip2')) return;
  const { s } = c;
  const url = await nginxFor(c);
  const args = (out: string) => ['initrd', s.launcher, '--seal', '*.iso', '--registration', '/nix-path-registration', '-o', out];
  const local = path.join(s.env.root, 'initrd-local');
  const r0 = cli(s, ...args(local));
  assert.equal(r0.code, 0, r0.stderr);
  const audit = ['audit', s.launcher, '--seal', '*.iso', '--json'];
  const auditLocal = json(cli(s, ...audit));
  const precise = ['why', s.launcher, s.bash, '--seal', '*.iso', '--precise', '--json'];
  const preciseLocal = json(cli(s, ...precise));
  // Broken caches, prepared while the store is still there.
  const truncated = brokenCopy(c, 'cache-truncated-nar');
  const narOf = (dir: string, p: string) => path.join(dir, /^URL: (.*)$/m.exec(fs.readFileSync(narinfo(dir, p), 'utf8'))![1]!);
  const qemuNar = narOf(truncated, s.qemu);
  fs.truncateSync(qemuNar, Math.floor(fs.statSync(qemuNar).size / 2));
  const wrongHash = brokenCopy(c, 'cache-wrong-narhash');
  const hashOf = (dir: string, p: string) => /^NarHash: (.*)$/m.exec(fs.readFileSync(narinfo(dir, p), 'utf8'))![1]!;
  fs.writeFileSync(narinfo(wrongHash, s.qemu), fs.readFileSync(narinfo(wrongHash, s.qemu), 'utf8').replace(hashOf(wrongHash, s.qemu), hashOf(wrongHash, s.glibc)));
  const flipped = path.join(s.env.root, 'cache-none-flipped');
  fs.cpSync(c.none, flipped, { recursive: true });
  const libfooNar = narOf(flipped, s.libfoo);
  const bytes = fs.readFileSync(libfooNar);
  // The first byte of the first file's contents: after the 'contents' token and the u64 length.
  const at = bytes.indexOf('contents') + 16;
  assert.ok(at > 16 && bytes.readBigUInt64LE(at - 8) > 0n);
  bytes[at] = bytes[at]! ^ 1;
  fs.writeFileSync(libfooNar, bytes);

  for (const z of ['zstd', 'bzip2', 'gzip']) {
    s.env.run('nix', ['--extra-experimental-features', 'nix-command', 'copy', '--to', `file://${s.env.root}/cache-${z}?compression=${z}`, s.launcher]);
    assert.match(fs.readFileSync(narinfo(path.join(s.env.root, `cache-${z}`), s.qemu), 'utf8'), new RegExp(`^Compression: ${z}$`, 'm'));
  }
  const moved = `${s.env.storeDir}.moved`;
  fs.renameSync(s.env.storeDir, moved);
  try {
    // Nix's other compressions: each NAR decoder, the same bytes.
    const others = ['zstd', 'bzip2', 'gzip'].map((z) => path.join(s.env.root, `cache-${z}`));
    for (const store of [url, `file://${c.xz}`, `file://${c.none}`, ...others.map((d) => `file://${d}`)]) {
      const out = path.join(s.env.root, `initrd-${store.startsWith('http') ? 'http' : path.basename(store)}`);
      const r = await cliAsync(s, ...args(out), '--store', store);
      assert.equal(r.code, 0, r.stderr);
      assert.ok(fs.readFileSync(out).equals(fs.readFileSync(local)), `initrd from ${store} differs from the local one`);
    }
    // audit reads the seal's bytes: fetched from the cache, the same verdicts and evidence.
    for (const store of [url, `file://${c.none}`]) assert.deepEqual(json(await cliAsync(s, ...audit, '--store', store)), auditLocal, `audit from ${store}`);
    // So does why --precise (the referrers' bytes).
    assert.deepEqual(json(await cliAsync(s, ...precise, '--store', url)), preciseLocal);
    assert.ok(((preciseLocal as { edges: unknown[] }).edges ?? []).length > 0);
    const bad = async (store: string, re: RegExp) => {
      const out = path.join(s.env.root, 'initrd-bad');
      const r = await cliAsync(s, ...args(out), '--store', store);
      assert.equal(r.code, ERROR_EXIT, r.stderr);
      assert.ok(isOneLineError(r), r.stderr);
      assert.match(r.stderr, re);
      assert.ok(!fs.existsSync(out), 'no output is left');
      assert.deepEqual(fs.readdirSync(s.env.root).filter((f) => f.startsWith('.initrd-bad')), [], 'no temporary file is left');
    };
    await bad(`file://${truncated}`, new RegExp(`Cannot (unpack|decompress) the NAR of ${s.qemu} from file://.*: .*(truncated|Unexpected end of input)`));
    await bad(`file://${wrongHash}`, new RegExp(`Cannot unpack the NAR of ${s.qemu} from .*: its NarHash is sha256:\\w+, but the narinfo says sha256:`));
    await bad(`file://${flipped}`, new RegExp(`Cannot unpack the NAR of ${s.libfoo} from .*: its FileHash is sha256:\\w+, but the narinfo says sha256:`));
  } finally {
    fs.renameSync(moved, s.env.storeDir);
  }
  // The fetched NARs went to a temporary store dir that is gone again.
  assert.deepEqual(fs.readdirSync(s.env.env.TMPDIR ?? '/tmp').filter((f) => f.startsWith('nix-seal-nars-')), []);
});

test('with the local store gone, closure --seal-images, suggest and hash fetch the NARs they read and answer as the database; a bad NAR is a one-line error', async (t) => {
  const c = setup(t);
  if (!c || !requireTools(t, 'nginx', 'xz')) return;
  const { s } = c;
  const url = await nginxFor(c);
  const sealImages = ['closure', s.launcher, '--seal-images', '--json'];
  const suggest = ['suggest', s.launcher, '--json'];
  const hashed = [s.iso, s.launcher, s.bash, `${s.bash}/bin`];
  const closureLocal = json(cli(s, ...sealImages)) as { seals: { path: string }[] };
  assert.deepEqual(closureLocal.seals.map((x) => x.path), [s.iso], 'the ISO is detected from the local store');
  const suggestLocal = json(cli(s, ...suggest)) as { images: { path: string; proven: boolean }[] };
  assert.deepEqual(suggestLocal.images.map((i) => [i.path, i.proven]), [[s.iso, true]]);
  const hashLocal = json(cli(s, 'hash', ...hashed, '--json')) as { narHash: string }[];
  // nix-store's own hashes of the store paths (the last one is a directory inside one).
  assert.deepEqual(hashLocal.slice(0, 3).map((h) => h.narHash), hashed.slice(0, 3).map((p) => s.env.nixStore(['-q', '--hash', p]).trim()));
  const wrongHash = brokenCopy(c, 'cache-wrong-narhash-iso');
  const hashOf = (dir: string, p: string) => /^NarHash: (.*)$/m.exec(fs.readFileSync(narinfo(dir, p), 'utf8'))![1]!;
  fs.writeFileSync(narinfo(wrongHash, s.iso), fs.readFileSync(narinfo(wrongHash, s.iso), 'utf8').replace(hashOf(wrongHash, s.iso), hashOf(wrongHash, s.glibc)));
  const tmp = s.env.env.TMPDIR ?? '/tmp';
  const leftovers = () => fs.readdirSync(tmp).filter((f) => f.startsWith('nix-seal-nars-'));
  const before = leftovers();
  const moved = `${s.env.storeDir}.moved`;
  fs.renameSync(s.env.storeDir, moved);
  try {
    for (const store of [url, `file://${c.xz}`, `file://${c.none}`]) {
      assert.deepEqual(json(await cliAsync(s, ...sealImages, '--store', store)), closureLocal, `closure --seal-images from ${store}`);
      assert.deepEqual(json(await cliAsync(s, ...suggest, '--store', store)), suggestLocal, `suggest from ${store}`);
      assert.deepEqual(json(await cliAsync(s, 'hash', ...hashed, '--json', '--store', store)), hashLocal, `hash from ${store}`);
    }
    // Without --store, hash reads the disk only: the path is gone.
    const gone = cli(s, 'hash', s.iso);
    assert.equal(gone.code, ERROR_EXIT, gone.stderr);
    for (const args of [sealImages, suggest, ['hash', s.iso]]) {
      const r = await cliAsync(s, ...args.filter((a) => a !== '--json'), '--store', `file://${wrongHash}`);
      assert.equal(r.code, ERROR_EXIT, r.stderr);
      assert.ok(isOneLineError(r), r.stderr);
      assert.match(r.stderr, new RegExp(`Cannot unpack the NAR of ${s.iso} from .*: its NarHash is sha256:\\w+, but the narinfo says sha256:`));
      assert.equal(r.stdout, '');
    }
  } finally {
    fs.renameSync(moved, s.env.storeDir);
  }
  assert.deepEqual(leftovers(), before, 'the fetched NARs went to a temporary store dir that is gone again');
});

test('https:// with a certificate the system trusts (NODE_EXTRA_CA_CERTS here), and not without', async (t) => {
  const c = setup(t);
  if (!c || !requireTools(t, 'nginx', 'openssl')) return;
  const { s } = c;
  const dir = path.join(s.env.root, 'nginx-tls');
  fs.mkdirSync(dir, { recursive: true });
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  s.env.run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert]);
  const { url } = await startNginx(dir, c.xz, { cert, key });
  const run = (env: NodeJS.ProcessEnv) =>
    new Promise<CliRun>((resolve, reject) => {
      const ch = spawn(process.execPath, [CLI, 'closure', s.launcher, '--store', url], { env, cwd: s.env.root });
      let stdout = '';
      let stderr = '';
      ch.stdout.on('data', (d) => (stdout += d));
      ch.stderr.on('data', (d) => (stderr += d));
      ch.on('error', reject);
      ch.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  const ok = await run({ ...s.env.env, NODE_EXTRA_CA_CERTS: cert });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, s.env.nixStore(['-qR', s.launcher]));
  // An untrusted certificate is an error naming the file, not retried.
  const env = { ...s.env.env };
  delete env.NODE_EXTRA_CA_CERTS;
  const bad = await run(env);
  assert.equal(bad.code, ERROR_EXIT, bad.stderr);
  assert.ok(isOneLineError(bad), bad.stderr);
  assert.match(bad.stderr, /Cannot fetch https:\/\/127\.0\.0\.1:\d+\/nix-cache-info: TLS: \w+/);
  assert.doesNotMatch(bad.stderr, /attempts/);
});
