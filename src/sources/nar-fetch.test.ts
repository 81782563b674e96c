import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { treeArbitraries, writeTree } from '../../test/support/random-tree.js';
import { collect, fileTempDir } from '../../test/support/temp.js';
import { NixSealError } from '../errors.js';
import { narHashAndSize, narStream } from '../formats/nar.js';
import { removeTree, unpackNar } from './nar-fetch.js';
import { seeded } from '../../test/support/property.js';

const tmp = fileTempDir('nix-seal-nar-fetch-');
let n = 0;

const narOf = (p: string): Promise<Buffer> => collect(narStream(p));

/** Feeds `bytes` in chunks of `size` (splitting tokens anywhere). */
async function* chunks(bytes: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

test('property: unpacking a NAR gives a tree whose NAR is the same bytes, with store modes', async () => {
  const { tree } = treeArbitraries(300);
  await fc.assert(
    fc.asyncProperty(tree, fc.integer({ min: 1, max: 64 }), async (t, size) => {
      const src = path.join(tmp, `src-${++n}`);
      writeTree(src, t);
      const nar = await narOf(src);
      const dest = path.join(tmp, `dest-${n}`);
      await unpackNar(chunks(nar, size), dest, 'test NAR');
      assert.ok((await narOf(dest)).equals(nar));
      assert.deepEqual(await narHashAndSize(dest), await narHashAndSize(src));
      const check = (p: string): void => {
        const st = fs.lstatSync(p);
        if (st.isDirectory()) {
          assert.equal(st.mode & 0o7777, 0o555, p);
          for (const e of fs.readdirSync(p)) check(path.join(p, e));
        } else if (st.isFile()) assert.ok([0o444, 0o555].includes(st.mode & 0o7777), p);
      };
      check(dest);
      removeTree(dest);
    }),
    seeded({ numRuns: 60 }),
  );
});

/** A NAR token: u64 length, bytes, zero padding. */
const tok = (s: string | Buffer): Buffer => {
  const b = Buffer.from(s);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(b.length));
  return Buffer.concat([len, b, Buffer.alloc((8 - (b.length % 8)) % 8)]);
};
const nar = (...t: (string | Buffer)[]) => Buffer.concat(t.map(tok));
const dirWith = (...names: string[]) =>
  nar('nix-archive-1', '(', 'type', 'directory', ...names.flatMap((nm) => ['entry', '(', 'name', nm, 'node', '(', 'type', 'symlink', 'target', 'x', ')', ')']), ')');

test('hostile or broken NARs: an error with the offset, nothing outside the destination', async () => {
  const cases: [Buffer, RegExp][] = [
    [dirWith('..'), /bad entry name '\.\.' \(at byte \d+\)/],
    [dirWith('a/b'), /bad entry name 'a\/b'/],
    [dirWith('b', 'a'), /entry names not in ascending order/],
    [dirWith('a', 'a'), /entry names not in ascending order/],
    [dirWith('a').subarray(0, 100), /the NAR is truncated \(at byte 100\)/],
    [Buffer.concat([dirWith('a'), Buffer.alloc(8)]), /bytes after the end of the archive/],
    [nar('nix-archive-2'), /expected 'nix-archive-1', found 'nix-archive-2' \(at byte 0\)/],
    [nar('nix-archive-1', '(', 'type', 'fifo'), /unknown node type 'fifo' \(at byte 56\)/],
    [Buffer.concat([tok('nix-archive-1'), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 40, 1, 0, 0, 0, 0, 0, 0])]), /non-zero padding \(at byte 33\)/],
  ];
  for (const [bytes, re] of cases) {
    const dest = path.join(tmp, `bad-${++n}`);
    await assert.rejects(unpackNar(chunks(bytes, 7), dest, 'test NAR'), (e: unknown) => {
      assert.ok(e instanceof NixSealError && e.code === 'EFORMAT', String(e));
      assert.match(e.message, /^Cannot unpack test NAR: /);
      assert.match(e.message, re);
      return true;
    });
    removeTree(dest);
  }
  assert.deepEqual(fs.readdirSync(tmp).filter((f) => f.startsWith('bad-') || f === 'b'), []);
});
