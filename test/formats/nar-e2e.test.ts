/** The NAR serialiser against the real nix-store --dump and nix-hash, and as another user (runuser). */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { narHashAndSize, narSizeOf, narStream } from '../../src/formats/nar.js';
import { encodeNix32 } from '../../src/store/nix32.js';
import { assertNixSealError } from '../support/errors.js';
import { treeArbitraries, writeTree } from '../support/random-tree.js';
import { collect, tempDir } from '../support/temp.js';
import { requireTools } from '../support/tools.js';
import { seeded } from '../support/property.js';

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
    seeded({ numRuns: 30 }),
  );
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
  const nar = new URL('../../src/formats/nar.js', import.meta.url).href;
  const script = `import(${JSON.stringify(nar)}).then((m) => m.narHashAndSize(process.argv[1])).then(
    () => console.log('no error'), (e) => console.log(e.code + ' ' + e.message))`;
  const r = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, '-e', script, root], { encoding: 'utf8', cwd: '/' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout.trim(), /^EIO Cannot serialise .*\/secret: permission denied$/);
});
