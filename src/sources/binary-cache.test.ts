import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../errors.js';
import { parseStoreSpec } from '../store/store-url.js';
import type { StorePath } from '../store/store-path.js';
import { displayUrl, parseNetrc, walkClosure, type CacheClient } from './binary-cache-fetch.js';
import { seeded } from '../../test/support/property.js';

test('--store binary cache URLs', () => {
  const env = { NIX_STORE_DIR: '/s/store' };
  assert.deepEqual(parseStoreSpec('file:///tmp/c', env), { kind: 'binary-cache', url: 'file:///tmp/c', storeDir: '/s/store' });
  assert.deepEqual(parseStoreSpec('https://cache.example/p?priority=40', {}, { httpConnections: 4, netrcFile: '/etc/netrc' }), {
    kind: 'binary-cache',
    url: 'https://cache.example/p?priority=40',
    storeDir: '/nix/store',
    httpConnections: 4,
    netrcFile: '/etc/netrc',
  });
  assert.equal((parseStoreSpec('http://h:8080?store=/gnu/store/', {}) as { storeDir: string }).storeDir, '/gnu/store');
  for (const bad of ['file://host/x', 'file:///', 'http://', 'http://h?store=rel']) {
    assert.throws(() => parseStoreSpec(bad, {}), (e: unknown) => e instanceof NixSealError && e.code === 'EUSAGE', bad);
  }
  assert.throws(
    () => parseStoreSpec('s3://bucket', {}),
    (e: unknown) => e instanceof NixSealError && /unknown store/.test(e.message) && /file:\/\/\/DIR, http:\/\/… or https:\/\/…/.test(e.hint ?? ''),
  );
});

test('displayUrl drops credentials, query and trailing slash', () => {
  assert.equal(displayUrl('http://alice:pw@h:1/p/?priority=1'), 'http://h:1/p');
  assert.equal(displayUrl('file:///tmp/c/'), 'file:///tmp/c');
});

test('netrc: machines, default, macdef and comments', () => {
  const n = parseNetrc('# c\nmachine a login u1 password p1\nmacdef init\n  cd x\n  machine b login no\n\nmachine b\n login u2\n password p2 account z\ndefault login d password dp\n');
  assert.deepEqual(n.machines.get('a'), { login: 'u1', password: 'p1' });
  assert.deepEqual(n.machines.get('b'), { login: 'u2', password: 'p2' });
  assert.deepEqual(n.fallback, { login: 'd', password: 'dp' });
});

const SD = '/nix/store';
const pathOf = (i: number) => `${SD}/${i.toString().padStart(32, '0')}-p${i}` as StorePath;

/** An in-memory cache of a random DAG that records how many lookups were in flight at once. */
function memoryCache(n: number, edges: [number, number][], missing: number | undefined) {
  const refs = Array.from({ length: n }, () => new Set<number>());
  for (const [a, b] of edges) refs[a]!.add(b);
  let inFlight = 0;
  let maxInFlight = 0;
  let requests = 0;
  const client: CacheClient = {
    display: 'mem://cache',
    async getText(rel) {
      requests++;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setImmediate(r));
      inFlight--;
      const i = Number(rel.slice(0, 32));
      if (i === missing) return undefined;
      const rs = [...refs[i]!].map((r) => pathOf(r).slice(SD.length + 1));
      return `StorePath: ${pathOf(i)}\nURL: nar/x\nNarHash: sha256:${'0'.repeat(52)}\nNarSize: ${i}\nReferences: ${rs.join(' ')}\n`;
    },
    async getStream() {
      return undefined;
    },
    async close() {},
  };
  return { client, refs, stats: () => ({ maxInFlight, requests }) };
}

test('property: the walk fetches exactly the closure, each path once, never more than N at a time', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 60 }).chain((n) =>
        fc.record({
          n: fc.constant(n),
          edges: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: n * 3 }),
          roots: fc.uniqueArray(fc.nat(n - 1), { minLength: 1, maxLength: 3 }),
          conns: fc.integer({ min: 1, max: 8 }),
        }),
      ),
      async ({ n, edges, roots, conns }) => {
        const m = memoryCache(n, edges, undefined);
        const got = await walkClosure(m.client, SD, roots.map(pathOf), conns);
        const want = new Set<number>(roots);
        for (const i of want) for (const r of m.refs[i]!) want.add(r);
        assert.deepEqual(got.map((g) => g.narSize).sort((a, b) => a - b), [...want].sort((a, b) => a - b));
        assert.equal(m.stats().requests, want.size);
        assert.ok(m.stats().maxInFlight <= conns);
      },
    ),
    seeded(),
  );
});

test('the walk keeps N lookups in flight when the frontier is wide', async () => {
  const m = memoryCache(101, Array.from({ length: 100 }, (_, i) => [0, i + 1] as [number, number]), undefined);
  await walkClosure(m.client, SD, [pathOf(0)], 25);
  assert.equal(m.stats().maxInFlight, 25);
});

test('a missing reference names itself and its referrer; a missing root says it is not in the cache', async () => {
  const m = memoryCache(3, [[0, 1], [1, 2]], 2);
  await assert.rejects(walkClosure(m.client, SD, [pathOf(0)], 4), (e: unknown) => {
    assert.ok(e instanceof NixSealError && e.code === 'EINVALIDPATH');
    assert.equal(e.message, `Cannot load the closure from mem://cache: ${pathOf(2).slice(SD.length + 1)}, a reference of ${pathOf(1)}, is not in the cache`);
    return true;
  });
  await assert.rejects(walkClosure(m.client, SD, [pathOf(2)], 4), { message: `Cannot use ${pathOf(2)}: it is not in the binary cache mem://cache` });
});

test('HTTP: a request that gets no answer, or whose body stalls, times out and is retried; a server that never answers is an error after the attempts', { timeout: 20_000 }, async () => {
  const http = await import('node:http');
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    if (req.url === '/never') return; // holds every request
    if (requests === 1) return; // no answer at all
    if (requests === 2) {
      res.writeHead(200, { 'content-length': '100' });
      res.write('StorePath: '); // then stalls
      return;
    }
    res.end('StoreDir: /nix/store\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as import('node:net').AddressInfo;
  const { openCacheClient } = await import('./binary-cache-fetch.js');
  const client = openCacheClient({ url: `http://127.0.0.1:${port}`, connections: 2, attempts: 3, retryDelayMs: 1, timeoutMs: 150 });
  try {
    assert.equal(await client.getText('nix-cache-info'), 'StoreDir: /nix/store\n');
    assert.equal(requests, 3);
    await assert.rejects(client.getText('never'), (err: NixSealError) => {
      assert.equal(err.code, 'EIO');
      assert.match(err.message, new RegExp(`^Cannot fetch http://127\\.0\\.0\\.1:${port}/never: timed out \\(after 3 attempts\\)$`));
      return true;
    });
  } finally {
    await client.close();
    server.closeAllConnections();
    server.close();
  }
});
