import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../errors.js';
import { treeArbitraries, writeTree } from '../../test/support/random-tree.js';
import { assertNixSealError } from '../../test/support/errors.js';
import { collect, tempDir } from '../../test/support/temp.js';
import { narHashAndSize, narHashOfTree, narOfTree, narSizeOf, narStream } from './nar.js';
import { seeded } from '../../test/support/property.js';

test('directory entries are ordered by bytes, not by JS string order', async (t) => {
  const root = tempDir(t);
  for (const n of ['ﬀ', '𝔸', 'é', 'z', 'Z']) writeFileSync(join(root, n), '');
  const nar = await collect(narStream(root));
  const order = ['Z', 'z', 'é', 'ﬀ', '𝔸'].map((n) => nar.indexOf(Buffer.from(n)));
  assert.ok(order.every((pos, i) => pos > 0 && (i === 0 || pos > order[i - 1]!)), `positions ${order.join(',')}`);
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
    seeded({ numRuns: 150, seed: 0x4e4152, verbose: 1 }),
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
