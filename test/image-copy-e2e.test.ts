/**
 * Copies inside images, checked against the real tools:
 * - the NAR hash of a tree read back from a squashfs (mksquashfs, each run a random compressor)
 *   and from a Rock Ridge ISO (xorriso) equals `nix-hash` of the tree on disk (property test);
 * - evidence for bytes in squashfs fragment blocks names the file whose tail holds them, at the
 *   right offset, checked against the files `unsquashfs -d` extracts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { FdSource } from '../src/formats/byte-source.js';
import { openImageView } from '../src/formats/image-readers.js';
import { narHashOfTree } from '../src/formats/nar.js';
import { copyTree } from '../src/sources/embedded-store.js';
import { locateDeep, treeIndex } from '../src/seal/image-view.js';
import { treeArbitraries, writeTree } from './support/random-tree.js';
import { requireTools } from './support/tools.js';
import { seeded } from './support/property.js';
import { fileTempDir } from './support/temp.js';

const dir = fileTempDir('nix-seal-image-copy-');

const run = (cmd: string, args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C.UTF-8' } });

function withImage<T>(file: string, fn: (view: NonNullable<ReturnType<typeof openImageView>>) => T): T {
  const fd = openSync(file, 'r');
  try {
    const view = openImageView(new FdSource(fd, file), file);
    assert.ok(view, `${file} opens as an image`);
    return fn(view);
  } finally {
    closeSync(fd);
  }
}

const COMPRESSORS = ['gzip', 'xz', 'zstd', 'lz4', 'lzo'] as const;

test('property: the NAR hash of a copy read from a squashfs and from a Rock Ridge ISO equals nix-hash of the tree', (t) => {
  if (!requireTools(t, 'mksquashfs', 'xorriso', 'nix-hash')) return;
  const { dir: tree } = treeArbitraries(200_000);
  let n = 0;
  fc.assert(
    fc.property(tree, fc.constantFrom(...COMPRESSORS), (root, comp) => {
      const work = join(dir, `p${n++}`);
      mkdirSync(join(work, 'src'), { recursive: true });
      const copy = join(work, 'src', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-copy');
      writeTree(copy, root);
      const want = `sha256:${run('nix-hash', ['--type', 'sha256', '--base32', copy]).trim()}`;
      const sq = join(work, 'img.squashfs');
      run('mksquashfs', [join(work, 'src'), sq, '-comp', comp, '-all-root', '-noappend', '-quiet', '-no-progress']);
      const iso = join(work, 'img.iso');
      run('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-o', iso, join(work, 'src')]);
      for (const file of [sq, iso]) {
        withImage(file, (view) => {
          const entry = treeIndex(view).byPath.get('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx-copy');
          assert.ok(entry, `${file}: the copy is an entry`);
          assert.equal(narHashOfTree(copyTree({ view }), entry.path, file).narHash, want, `${file} (${comp})`);
        });
      }
      rmSync(work, { recursive: true, force: true });
    }),
    seeded({ numRuns: 12, seed: Number(process.env.FC_SEED ?? 20261128), verbose: 1 }),
  );
});

test('fragment blocks: evidence names the file whose tail holds the bytes, at its offset in that file (checked against unsquashfs -d)', (t) => {
  if (!requireTools(t, 'mksquashfs', 'unsquashfs', 'xorriso')) return;
  const work = join(dir, 'fragments');
  const src = join(work, 'src');
  mkdirSync(src, { recursive: true });
  // Twenty small files (each a tail in a shared fragment block), each with a marker at its own offset.
  const markers = new Map<string, string>();
  for (let i = 0; i < 20; i++) {
    const marker = `mark${String(i).padStart(2, '0')}${'z'.repeat(26)}`;
    const before = 'a'.repeat(37 * i + 5);
    writeFileSync(join(src, `file-${i}.txt`), `${before}${marker}${'b'.repeat(11 * i)}`);
    markers.set(marker, `file-${i}.txt`);
  }
  // Uncompressed tables, data and fragments: the markers are in the raw bytes.
  const sq = join(work, 'plain.squashfs');
  run('mksquashfs', [src, sq, '-noI', '-noD', '-noF', '-noX', '-all-root', '-noappend', '-quiet', '-no-progress']);
  const out = join(work, 'out');
  run('unsquashfs', ['-d', out, '-no-progress', sq]);
  // The same squashfs inside an ISO: evidence goes down a level.
  mkdirSync(join(work, 'iso'));
  writeFileSync(join(work, 'iso', 'store.squashfs'), readFileSync(sq));
  const iso = join(work, 'outer.iso');
  run('xorriso', ['-as', 'mkisofs', '-quiet', '-R', '-o', iso, join(work, 'iso')]);

  for (const [file, prefix] of [
    [sq, []],
    [iso, ['store.squashfs']],
  ] as const) {
    const bytes = readFileSync(file);
    let inFragments = 0;
    withImage(file, (view) => {
      for (const [marker, owner] of markers) {
        const at = bytes.indexOf(marker);
        assert.ok(at >= 0, `${marker} in the raw bytes of ${file}`);
        const steps = locateDeep(view, at, file);
        const last = steps[steps.length - 1]!;
        assert.deepEqual(
          steps.map((s) => s.path),
          [...prefix, owner],
          `${marker}: ${JSON.stringify(steps)}`,
        );
        assert.match(last.what, new RegExp(`^(fragment|data) of ${owner.replace('.', '\\.')}$`));
        if (last.what.startsWith('fragment')) inFragments++;
        assert.ok(last.offsetInFile !== undefined, `${marker}: an offset in ${owner}`);
        const extracted = readFileSync(join(out, owner));
        assert.equal(extracted.subarray(last.offsetInFile, last.offsetInFile + marker.length).toString(), marker, `${owner} @${last.offsetInFile}`);
      }
    });
    assert.equal(inFragments, markers.size, `${file}: every small file's tail is in a fragment block`);
  }
});
