/**
 * A NarTree over any ImageView, so a test can hash a tree read from an image (narHashOfTree) and
 * compare it with `nix-hash` of the directory the image was made from.
 */
import type { ImageView, InnerEntry } from '../../src/formats/image.js';
import type { NarTree, TreeNode } from '../../src/formats/nar.js';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { treeArbitraries, writeTree, type Tree } from './random-tree.js';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import { BufferSource } from '../../src/formats/byte-source.js';
import type { ImageReader } from '../../src/formats/image.js';
import { narHashOfTree } from '../../src/formats/nar.js';
import { seeded } from './property.js';
import { fillNoise, prng } from './prng.js';

export function viewTree(view: ImageView): NarTree {
  const byPath = new Map<string, InnerEntry>();
  const kids = new Map<string, string[]>();
  for (const e of view.entries()) {
    byPath.set(e.path, e);
    if (e.path === '') continue;
    const slash = e.path.lastIndexOf('/');
    const parent = slash < 0 ? '' : e.path.slice(0, slash);
    const list = kids.get(parent) ?? [];
    list.push(e.path.slice(slash + 1));
    kids.set(parent, list);
  }
  return {
    node(path): TreeNode | undefined {
      const e = byPath.get(path);
      if (e === undefined) return undefined;
      const n: TreeNode = { type: e.type, size: e.size };
      if (e.executable !== undefined) n.executable = e.executable;
      if (e.target !== undefined) n.target = e.target;
      return n;
    },
    children: (path) => kids.get(path) ?? [],
    contents(path) {
      const e = byPath.get(path);
      if (e === undefined) throw new Error(`no entry ${path}`);
      return view.read(e);
    },
  };
}

/** `nix-hash --type sha256 --base32` of a directory, as "sha256:<nix32>" (the oracle). */
export function nixHashOf(dir: string): string {
  return `sha256:${execFileSync('nix-hash', ['--type', 'sha256', '--base32', dir], { encoding: 'utf8' }).trim()}`;
}

/** narHash of the tree at `root` ('' = the whole view) of `view`. */
export function viewNarHash(view: ImageView, root = ''): string {
  return narHashOfTree(viewTree(view), root, view.kind).narHash;
}

/** Opens `bytes` and walks every entry, reads every file and locates a few offsets. */
export function exercise(reader: ImageReader, bytes: Uint8Array): void {
  const src = new BufferSource(bytes);
  if (!reader.detect(src)) return;
  const view = reader.open(src, 'fuzz');
  for (const e of view.entries()) {
    if (e.type !== 'file') continue;
    let n = 0;
    for (const c of view.read(e)) n += c.length;
    if (n !== e.size) throw new Error(`${e.path}: read ${n} of ${e.size} bytes`);
    view.fileSource(e);
  }
  for (const o of [0, bytes.length >> 1, bytes.length - 1]) if (o >= 0) view.locate(o);
}

/** Either works or throws NixSealError: anything else (a TypeError, a RangeError) fails the test. */
export function cleanly(reader: ImageReader, bytes: Uint8Array): 'ok' | 'error' {
  try {
    exercise(reader, bytes);
    return 'ok';
  } catch (err) {
    if (err instanceof NixSealError) return 'error';
    throw err;
  }
}

/**
 * The hostile-input properties every reader must have: random bytes, `base` with random bytes
 * overwritten, and `base` cut at every length (up to `maxCuts` lengths, spread), each open and
 * are walked without any error but a NixSealError.
 */
export function hostileProperties(reader: ImageReader, base: Uint8Array, numRuns = 200, maxCuts = 600): void {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), (b) => void cleanly(reader, b)), seeded({ numRuns }));
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
      const b = Uint8Array.from(base);
      for (const [at, v] of edits) b[at] = v;
      cleanly(reader, b);
    }),
    seeded({ numRuns }),
  );
  const step = Math.max(1, Math.floor(base.length / maxCuts));
  for (let n = 0; n < base.length; n += step) cleanly(reader, base.subarray(0, n));
}

/**
 * The tree the file-system readers' real-tool tests put in images: random files and links from a
 * seeded random-tree sample, plus what trips readers: symlinks short (inline) and long (a data
 * block), executables, empty files, a large file with holes, deep directories, 255-byte names and
 * a directory with 150 entries (an htree on ext4). `opts` leaves out what a format cannot hold.
 */
export function writeSampleTree(dir: string, opts: { symlinks?: boolean; longNames?: boolean; longNameLength?: number; seed?: number; fat?: boolean } = {}): void {
  // FAT: no symlinks, names unique without case, no trailing dots or spaces (VFAT drops them).
  const symlinks = !opts.fat && (opts.symlinks ?? true);
  const fatOk = (names: Set<string>, n: string): boolean => {
    if (!opts.fat) return true;
    const k = n.toLowerCase();
    if (names.has(k) || /[. ]$/.test(n) || n.startsWith(' ')) return false;
    names.add(k);
    return true;
  };
  const sample = fc.sample(treeArbitraries(3000).dir, { seed: opts.seed ?? 42, numRuns: 1 })[0]!;
  const strip = (t: Tree): Tree =>
    t.kind === 'dir'
      ? ((seen) => ({ kind: 'dir', entries: Object.fromEntries(Object.entries(t.entries).filter(([n, c]) => (symlinks || c.kind !== 'link') && fatOk(seen, n)).map(([n, c]) => [n, strip(c)])) }))(new Set<string>())
      : t;
  mkdirSync(dirname(dir), { recursive: true });
  writeTree(dir, strip(sample));
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(join(dir, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  const rand = prng(12345);
  const noise = (n: number): Buffer => fillNoise(Buffer.alloc(n), rand);
  // 3 MiB with data at the start, the middle and the end, holes between.
  const big = join(dir, 'big.bin');
  writeFileSync(big, noise(70_000));
  const fd = openSync(big, 'r+');
  writeSync(fd, noise(5000), 0, 5000, 1_500_000);
  // More islands than an inode holds extents (4): ext4 needs an extent tree of depth 1.
  for (let i = 0; i < 8; i++) writeSync(fd, noise(100), 0, 100, 1_600_000 + i * 100_000);
  writeSync(fd, noise(3000), 0, 3000, 3 * 1024 * 1024 - 3000);
  closeSync(fd);
  let deep = join(dir, 'deep');
  for (let i = 0; i < 12; i++) deep = join(deep, `d${i}`);
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, 'leaf.txt'), 'bottom\n');
  const many = join(dir, 'many');
  mkdirSync(many);
  for (let i = 0; i < 150; i++) writeFileSync(join(many, `entry-number-${i}`), `${i}\n`);
  const longLen = opts.longNameLength ?? 255;
  if (opts.longNames ?? true) writeFileSync(join(dir, 'L'.repeat(longLen - 55) + '-long-name-' + 'x'.repeat(44)), 'long\n');
  if (symlinks) {
    symlinkSync('run.sh', join(dir, 'short-link'));
    symlinkSync('/nix/store/' + 'a'.repeat(32) + '-some-package-with-a-long-name-1.0/bin/program', join(dir, 'long-link'));
  }
}
