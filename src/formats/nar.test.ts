import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../errors.js';
import { encodeNix32 } from '../store/nix32.js';
import { treeArbitraries, writeTree } from '../../test/support/random-tree.js';
import { requireTools } from '../../test/support/tools.js';
import { narHashAndSize, narHashOfTree, narOfTree, narSizeOf, narStream } from './nar.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'nix-seal-nar-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}

const nixDump = (p: string): Buffer => execFileSync('nix-store', ['--dump', p], { maxBuffer: 1 << 30 });
const nixHash = (p: string): string =>
  execFileSync('nix-hash', ['--type', 'sha256', '--base32', p], { encoding: 'utf8' }).trim();

/**
 * Asserts that all three functions agree with Nix on `p`. `viaNixHash` also runs nix-hash (each Nix
 * command costs ~0.15 s to start, so the property test checks the hash against the dump instead).
 */
async function assertMatchesNix(p: string, viaNixHash = true): Promise<void> {
  const expected = nixDump(p);
  const ours = await collect(narStream(p));
  // Compare lengths first: a failing deepEqual on megabytes is unreadable.
  assert.equal(ours.length, expected.length, `NAR length of ${p}`);
  assert.ok(ours.equals(expected), `NAR bytes of ${p} differ from nix-store --dump`);
  const narHash = viaNixHash ? nixHash(p) : encodeNix32(createHash('sha256').update(expected).digest());
  assert.deepEqual(await narHashAndSize(p), { narHash: `sha256:${narHash}`, narSize: expected.length });
  assert.equal(await narSizeOf(p), expected.length);
}

/** A tree with every kind of node and the ordering traps. */
function buildTree(root: string): void {
  mkdirSync(join(root, 'a/b/c'), { recursive: true });
  mkdirSync(join(root, 'empty-dir'));
  writeFileSync(join(root, 'a/b/c/deep'), 'deep\n');
  writeFileSync(join(root, 'empty-file'), '');
  writeFileSync(join(root, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  // Nix's rule is the owner's x bit only: group/other x alone is not executable, owner x alone is.
  writeFileSync(join(root, 'group-x'), 'g', { mode: 0o654 });
  chmodSync(join(root, 'group-x'), 0o654);
  writeFileSync(join(root, 'owner-x'), 'o');
  chmodSync(join(root, 'owner-x'), 0o744);
  symlinkSync('a/b/c/deep', join(root, 'link'));
  symlinkSync('/nonexistent/dangling', join(root, 'dangling'));
  symlinkSync('a', join(root, 'dir-link'));
  // Byte order vs UTF-16 order: 'Z' < 'z' < 'é' (C3 A9) < 'ﬀ' (EF AC 80) < '𝔸' (F0 9D 94 B8) as bytes,
  // but in JS string order '𝔸' (surrogate D835) sorts before 'ﬀ' (FB00).
  for (const n of ['z', 'Z', 'é', 'ﬀ', '𝔸', 'a-b', 'a.b', '_', '0']) writeFileSync(join(root, n), n);
  // A name that is not UTF-8 at all: must pass through as raw bytes.
  writeFileSync(Buffer.concat([Buffer.from(root + '/'), Buffer.from([0x66, 0xff, 0xfe])]), 'latin');
  // Several read chunks (4 MiB) of random data, a size not a multiple of 8: chunking and padding.
  writeFileSync(join(root, 'a/random.bin'), randomBytes(9 * 1024 * 1024 + 5));
  // Names of every padding length (1..9 bytes).
  for (let i = 1; i <= 9; i++) writeFileSync(join(root, 'a/b', 'n'.repeat(i)), 'x'.repeat(i));
}

test('narStream, narHashAndSize and narSizeOf match nix-store --dump and nix-hash', async (t) => {
  if (!requireTools(t, 'nix-store', 'nix-hash')) return;
  const root = tempDir(t);
  buildTree(root);
  await assertMatchesNix(root);
  // Non-directory roots: a regular file, an executable, a symlink (not followed), an empty file.
  for (const p of ['a/random.bin', 'run.sh', 'link', 'dangling', 'empty-file', 'empty-dir']) {
    await assertMatchesNix(join(root, p));
  }
});

test('directory entries are ordered by bytes, not by JS string order', async (t) => {
  const root = tempDir(t);
  for (const n of ['ﬀ', '𝔸', 'é', 'z', 'Z']) writeFileSync(join(root, n), '');
  const nar = await collect(narStream(root));
  const order = ['Z', 'z', 'é', 'ﬀ', '𝔸'].map((n) => nar.indexOf(Buffer.from(n)));
  assert.ok(order.every((pos, i) => pos > 0 && (i === 0 || pos > order[i - 1]!)), `positions ${order.join(',')}`);
});

test('many small files: token batches larger than one chunk', async (t) => {
  if (!requireTools(t, 'nix-store', 'nix-hash')) return;
  const root = tempDir(t);
  // ~1.5 MiB of small files, plus files just under and over the batch buffer's free room.
  for (let i = 0; i < 2000; i++) writeFileSync(join(root, `f${i}`), randomBytes(i % 1500));
  writeFileSync(join(root, 'g-1M-minus'), randomBytes(1024 * 1024 - 200));
  writeFileSync(join(root, 'g-1M'), randomBytes(1024 * 1024));
  writeFileSync(join(root, 'g-1M-plus'), randomBytes(1024 * 1024 + 1));
  await assertMatchesNix(root);
});

test('random trees match nix-store --dump', async (t) => {
  if (!requireTools(t, 'nix-store', 'nix-hash')) return;
  const { tree } = treeArbitraries(40);
  const base = tempDir(t);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(tree, async (node) => {
      const p = join(base, `t${run++}`);
      writeTree(p, node);
      await assertMatchesNix(p, false);
    }),
    { numRuns: 30 },
  );
});

test('narSizeOf handles files over 4 GiB without reading them', async (t) => {
  const root = tempDir(t);
  const big = join(root, 'sparse');
  const size = 5 * 2 ** 30 + 3;
  writeFileSync(big, '');
  truncateSync(big, size); // sparse: no disk space used, nothing read
  writeFileSync(join(root, 'small'), 'abc');
  assert.equal((await narSizeOf(big)) - (await narSizeOf(join(root, 'small'))), size - 3);
});

async function assertNixSealError(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof NixSealError, String(e));
    assert.equal(e.code, code);
    assert.match(e.message, re);
    return true;
  });
}

test('sockets and fifos cannot be serialised', async (t) => {
  const root = tempDir(t);
  writeFileSync(join(root, 'ok'), 'fine');
  const sock = join(root, 'sock');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  t.after(() => server.close());
  await assertNixSealError(collect(narStream(root)), 'EFORMAT', /^Cannot serialise .*\/sock: it is a socket/);
  await assertNixSealError(narHashAndSize(root), 'EFORMAT', /socket/);
  await assertNixSealError(narSizeOf(root), 'EFORMAT', /socket/);

  const fifoDir = tempDir(t);
  execFileSync('mkfifo', [join(fifoDir, 'pipe')]);
  await assertNixSealError(narHashAndSize(fifoDir), 'EFORMAT', /^Cannot serialise .*\/pipe: it is a named pipe/);
});

test('a missing path is an EIO error naming it', async (t) => {
  const root = tempDir(t);
  const missing = join(root, 'gone');
  await assertNixSealError(narHashAndSize(missing), 'EIO', /^Cannot serialise .*\/gone: no such file or directory$/);
  await assertNixSealError(narSizeOf(missing), 'EIO', /no such file or directory/);
});

test('an unreadable file is an EIO error naming it', async (t) => {
  const root = tempDir(t);
  writeFileSync(join(root, 'secret'), 'x', { mode: 0o000 });
  if (process.getuid?.() !== 0) {
    await assertNixSealError(narHashAndSize(root), 'EIO', /^Cannot serialise .*\/secret: permission denied$/);
    return;
  }
  // Root reads anything: run the same call as nobody, for whom the mode does stop the read.
  if (!requireTools(t, 'runuser')) return;
  chmodSync(root, 0o755);
  const nar = new URL('./nar.js', import.meta.url).href;
  const script = `import(${JSON.stringify(nar)}).then((m) => m.narHashAndSize(process.argv[1])).then(
    () => console.log('no error'), (e) => console.log(e.code + ' ' + e.message))`;
  const r = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, '-e', script, root], { encoding: 'utf8', cwd: '/' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.trim(), /^EIO Cannot serialise .*\/secret: permission denied$/);
});

test('a consumer may stop reading early', async (t) => {
  const root = tempDir(t);
  writeFileSync(join(root, 'big'), randomBytes(12 * 1024 * 1024));
  let seen = 0;
  for await (const chunk of narStream(root)) {
    seen += chunk.length;
    if (seen > 1024 * 1024) break; // the generator's finally closes the file
  }
  assert.ok(seen > 1024 * 1024);
});

/** A NarTree over a directory on disk: narOfTree must then give exactly narStream's bytes. */
function diskTree(root: string): import('./nar.js').NarTree {
  const at = (p: string): string => (p === '' ? root : join(root, p));
  return {
    node(p) {
      const st = lstatSync(at(p));
      if (st.isDirectory()) return { type: 'dir', size: 0 };
      if (st.isSymbolicLink()) return { type: 'symlink', size: 0, target: readlinkSync(at(p), 'utf8') };
      if (st.isFile()) return { type: 'file', size: st.size, executable: (st.mode & 0o100) !== 0 };
      return { type: 'special', size: 0 };
    },
    children: (p) => readdirSync(at(p)),
    contents: (p) => {
      const data = readFileSync(at(p));
      // Uneven chunks, to exercise the hand-over between tokens and contents.
      const out: Uint8Array[] = [];
      for (let i = 0; i < data.length; i += 777) out.push(data.subarray(i, i + 777));
      return out;
    },
  };
}

test('property: narOfTree over any tree reader gives exactly the bytes of narStream (random trees)', async (t) => {
  const dir = tempDir(t);
  const { tree } = treeArbitraries(5000);
  let n = 0;
  await fc.assert(
    fc.asyncProperty(tree, async (node) => {
      const p = join(dir, `t${n++}`);
      writeTree(p, node);
      const want = await collect(narStream(p));
      // Chunks are valid until the next one is asked for: copy each at once.
      const parts: Buffer[] = [];
      for (const c of narOfTree(diskTree(p), '', p)) parts.push(Buffer.from(c));
      const got = Buffer.concat(parts);
      assert.ok(got.equals(want), `NAR of ${p}`);
      const h = narHashOfTree(diskTree(p), '', p);
      assert.deepEqual(h, await narHashAndSize(p));
    }),
    { numRuns: 150, seed: 0x4e4152, verbose: 1 },
  );
});

test('narOfTree: contents of another length than the size, and nodes a NAR cannot hold, are EFORMAT errors naming the path', () => {
  const tree = (size: number, chunks: Uint8Array[], type: 'file' | 'special' = 'file'): import('./nar.js').NarTree => ({
    node: (p) => (p === '' ? { type: 'dir', size: 0 } : { type, size }),
    children: (p) => (p === '' ? ['f'] : []),
    contents: () => chunks,
  });
  const run = (tr: import('./nar.js').NarTree): unknown => {
    try {
      for (const _ of narOfTree(tr, '', 'img » x')) void _;
      return undefined;
    } catch (err) {
      return err;
    }
  };
  const short = run(tree(10, [new Uint8Array(4)]));
  assert.ok(short instanceof NixSealError && short.code === 'EFORMAT');
  assert.equal((short as Error).message, 'Cannot serialise img » x/f: its contents end after 4 of 10 bytes');
  const long = run(tree(2, [new Uint8Array(4)]));
  assert.match((long as Error).message, /img » x\/f: its contents are longer than its size \(2 bytes\)/);
  const dev = run(tree(0, [], 'special'));
  assert.match((dev as Error).message, /img » x\/f: it is a device, fifo or socket/);
});
