/** The newc writer against GNU cpio (the nixpkgs initrd pipeline) and bsdtar: byte for byte, and extracted. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { CpioNewcWriter, readNewc } from '../../src/formats/cpio-newc.js';
import { treeArbitraries, writeTree } from '../support/random-tree.js';
import { collect, tempDir } from '../support/temp.js';
import { requireTools } from '../support/tools.js';
import { seeded } from '../support/property.js';

/** `find . -print0 | sort -z` in the C locale: "./"-prefixed relative names as bytes, sorted. */
function sortedFindNames(root: Buffer): Buffer[] {
  const out: Buffer[] = [Buffer.from('.')];
  const walk = (rel: Buffer): void => {
    for (const name of readdirSync(Buffer.concat([root, Buffer.from('/'), rel]), { encoding: 'buffer' })) {
      const child = Buffer.concat([rel, Buffer.from('/'), name]);
      out.push(child);
      if (lstatSync(Buffer.concat([root, Buffer.from('/'), child])).isDirectory()) walk(child);
    }
  };
  walk(Buffer.from('.'));
  return out.sort(Buffer.compare);
}

/** Archives `root` with our writer, the way the test of a caller would: sorted names, lstat data. */
async function writeWithOurs(rootPath: string): Promise<Buffer> {
  const root = Buffer.from(rootPath);
  const w = new CpioNewcWriter();
  const bytes = collect(w);
  for (const rel of sortedFindNames(root)) {
    const abs = Buffer.concat([root, Buffer.from('/'), rel]);
    const st = lstatSync(abs);
    if (st.isDirectory()) await w.addDirectory(rel, st.mode, { nlink: st.nlink });
    else if (st.isSymbolicLink()) await w.addSymlink(rel, readlinkSync(abs, { encoding: 'buffer' }));
    else await w.addFile(rel, st.mode, st.size, createReadStream(abs));
  }
  await w.finish();
  return bytes;
}

/** nixpkgs' makeInitrd pipeline, after setting every mtime to 1 as it does. */
function writeWithGnu(root: string): Buffer {
  const env = { ...process.env, LC_ALL: 'C' }; // a Nix build has no locale: sort -z is byte order
  execFileSync('sh', ['-c', 'find . -exec touch -h -d @1 {} +'], { cwd: root, env });
  return execFileSync('sh', ['-c', 'find . -print0 | sort -z | cpio -o -H newc -R +0:+0 --reproducible --null --quiet'], {
    cwd: root,
    env,
    maxBuffer: 1 << 30,
  });
}

function buildTree(root: string, big = true): void {
  mkdirSync(join(root, 'a/b/c'), { recursive: true });
  mkdirSync(join(root, 'a/d'));
  mkdirSync(join(root, 'empty-dir'));
  mkdirSync(join(root, 'private'), { mode: 0o700 });
  writeFileSync(join(root, 'a/b/c/deep'), 'deep\n');
  writeFileSync(join(root, 'a-b'), 'sorts between ./a and ./a/b in byte order');
  writeFileSync(join(root, 'a.x'), '');
  writeFileSync(join(root, 'empty-file'), '');
  writeFileSync(join(root, '.hidden'), 'h');
  writeFileSync(join(root, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  writeFileSync(join(root, 'read-only'), 'r', { mode: 0o444 });
  symlinkSync('a/b/c/deep', join(root, 'link'));
  symlinkSync('/nonexistent/dangling', join(root, 'dangling'));
  symlinkSync('a', join(root, 'dir-link'));
  for (const n of ['z', 'Z', 'é', '𝔸']) writeFileSync(join(root, n), n);
  writeFileSync(Buffer.concat([Buffer.from(root + '/'), Buffer.from([0x66, 0xff, 0xfe])]), 'not UTF-8');
  // Every name length and data length modulo 4, for both paddings.
  for (let i = 1; i <= 8; i++) writeFileSync(join(root, 'a/d', 'n'.repeat(i)), 'x'.repeat(i));
  if (big) writeFileSync(join(root, 'a/random.bin'), randomBytes(3 * 1024 * 1024 + 3));
}

type Kind = 'dir' | 'file' | 'link';

interface Node {
  kind: Kind;
  mode: number;
  content: string; // file contents (hex) or link target
}

/** The tree as a map from relative path (bytes as latin1, so non-UTF-8 names survive) to what an archive keeps. */
function snapshot(root: string): Map<string, Node> {
  const out = new Map<string, Node>();
  const rootBytes = Buffer.from(root);
  for (const rel of sortedFindNames(rootBytes)) {
    if (rel.toString() === '.') continue;
    const abs = Buffer.concat([rootBytes, Buffer.from('/'), rel]);
    const st = lstatSync(abs);
    const key = rel.toString('latin1');
    if (st.isDirectory()) out.set(key, { kind: 'dir', mode: st.mode & 0o7777, content: '' });
    else if (st.isSymbolicLink()) out.set(key, { kind: 'link', mode: 0, content: readlinkSync(abs, { encoding: 'buffer' }).toString('hex') });
    else out.set(key, { kind: 'file', mode: st.mode & 0o7777, content: readFileSync(abs).toString('hex') });
  }
  return out;
}

test('the writer is byte-identical to GNU cpio in the nixpkgs initrd pipeline', async (t) => {
  if (!requireTools(t, 'cpio')) return;
  const root = tempDir(t);
  buildTree(root);
  const gnu = writeWithGnu(root);
  const ours = await writeWithOurs(root);
  assert.equal(ours.length, gnu.length);
  assert.equal(ours.length % 512, 0);
  // On a mismatch, report the first differing entry rather than megabytes of bytes.
  if (!ours.equals(gnu)) {
    const a = readNewc(ours);
    const b = readNewc(gnu);
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      assert.deepEqual({ name: a[i]?.name, header: a[i]?.header }, { name: b[i]?.name, header: b[i]?.header }, `entry ${i}`);
    }
    assert.fail('archives differ outside the headers');
  }
});

test('random trees are byte-identical to GNU cpio', async (t) => {
  if (!requireTools(t, 'cpio')) return;
  const { dir } = treeArbitraries(700);
  const base = tempDir(t);
  let run = 0;
  await fc.assert(
    fc.asyncProperty(dir, async (node) => {
      const p = join(base, `t${run++}`);
      writeTree(p, node);
      const gnu = writeWithGnu(p);
      assert.ok((await writeWithOurs(p)).equals(gnu));
    }),
    seeded({ numRuns: 20 }),
  );
});

test('an archive that ends on a block boundary gets no extra padding block, as with GNU cpio', async (t) => {
  if (!requireTools(t, 'cpio')) return;
  const root = tempDir(t);
  // "." (112 bytes) + "f" header (112) + 164 bytes of data + trailer (124) = 512 exactly.
  writeFileSync(join(root, 'f'), Buffer.alloc(164, 1));
  const gnu = writeWithGnu(root);
  assert.equal(gnu.length, 512);
  assert.ok((await writeWithOurs(root)).equals(gnu));
});

test('GNU cpio and bsdtar extract our archive to the original tree', async (t) => {
  if (!requireTools(t, 'cpio', 'bsdtar')) return;
  const root = tempDir(t);
  buildTree(join(root, 'src'));
  const src = join(root, 'src');
  const archive = join(root, 'initrd.cpio');
  writeFileSync(archive, await writeWithOurs(src));
  const expected = snapshot(src);
  assert.ok(expected.size > 20);

  const viaCpio = join(root, 'cpio');
  mkdirSync(viaCpio);
  execFileSync('cpio', ['-idm', '--quiet'], { cwd: viaCpio, input: readFileSync(archive) });
  assert.deepEqual(snapshot(viaCpio), expected);

  const viaBsdtar = join(root, 'bsdtar');
  mkdirSync(viaBsdtar);
  execFileSync('bsdtar', ['-xf', archive, '-C', viaBsdtar]);
  assert.deepEqual(snapshot(viaBsdtar), expected);
});
