/**
 * A NarTree over any ImageView, so a test can hash a tree read from an image (narHashOfTree) and
 * compare it with `nix-hash` of the directory the image was made from.
 */
import type { ImageView, InnerEntry } from '../../src/formats/image.js';
import type { NarTree, TreeNode } from '../../src/formats/nar.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import { BufferSource } from '../../src/formats/byte-source.js';
import type { ImageReader } from '../../src/formats/image.js';
import { narHashOfTree } from '../../src/formats/nar.js';

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

/** A temporary directory removed after the test. */
export function tempDir(t: TestContext, prefix = 'nix-seal-view-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
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

/** VIEW_FUZZ_SEED replays one run. */
export const fuzzParams = (numRuns: number): fc.Parameters<unknown> =>
  process.env.VIEW_FUZZ_SEED === undefined ? { numRuns } : { numRuns, seed: Number(process.env.VIEW_FUZZ_SEED) };

/**
 * The hostile-input properties every reader must have: random bytes, `base` with random bytes
 * overwritten, and `base` cut at every length (up to `maxCuts` lengths, spread), each open and
 * are walked without any error but a NixSealError.
 */
export function hostileProperties(reader: ImageReader, base: Uint8Array, numRuns = 200, maxCuts = 600): void {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 4096 }), (b) => void cleanly(reader, b)), fuzzParams(numRuns));
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (edits) => {
      const b = Uint8Array.from(base);
      for (const [at, v] of edits) b[at] = v;
      cleanly(reader, b);
    }),
    fuzzParams(numRuns),
  );
  const step = Math.max(1, Math.floor(base.length / maxCuts));
  for (let n = 0; n < base.length; n += step) cleanly(reader, base.subarray(0, n));
}
