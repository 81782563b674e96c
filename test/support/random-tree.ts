/**
 * Random file trees for property tests of the archive writers (NAR, cpio): fast-check arbitraries
 * and a writer that makes them real on disk.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';

export type Tree =
  | { kind: 'file'; data: Uint8Array; exec: boolean }
  | { kind: 'link'; target: string }
  | { kind: 'dir'; entries: Record<string, Tree> };

/** Entry names: short, with a non-ASCII letter and spaces (byte order ≠ UTF-16 order). */
const entryName = fc.stringMatching(/^[a-zA-Z0-9é._ -]{1,9}$/).filter((n) => n !== '.' && n !== '..');

/**
 * Arbitrary trees: `tree` may be a file, a symlink or a directory; `dir` is always a directory
 * (an archive root). Files hold up to `maxFileBytes` bytes.
 */
export function treeArbitraries(maxFileBytes: number): { tree: fc.Arbitrary<Tree>; dir: fc.Arbitrary<Tree> } {
  return fc.letrec<{ tree: Tree; dir: Tree }>((tie) => ({
    tree: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.record({ kind: fc.constant('file' as const), data: fc.uint8Array({ maxLength: maxFileBytes }), exec: fc.boolean() }),
      fc.record({ kind: fc.constant('link' as const), target: fc.string({ minLength: 1, maxLength: 30 }).filter((s) => !s.includes('\0')) }),
      tie('dir'),
    ),
    dir: fc.record({ kind: fc.constant('dir' as const), entries: fc.dictionary(entryName, tie('tree'), { maxKeys: 6 }) }),
  }));
}

/** Creates `node` at path `p` (which must not exist). Executables get 0755, other files 0644. */
export function writeTree(p: string, node: Tree): void {
  if (node.kind === 'file') writeFileSync(p, node.data, { mode: node.exec ? 0o755 : 0o644 });
  else if (node.kind === 'link') symlinkSync(node.target, p);
  else {
    mkdirSync(p);
    for (const [n, child] of Object.entries(node.entries)) writeTree(join(p, n), child);
  }
}
