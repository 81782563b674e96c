/**
 * The directory walk of the file-system readers (ext4, EROFS, FAT): root first, then depth first
 * in directory order, with the budgets a hostile image needs — entries, depth, a directory reached
 * twice (a loop), names no path can hold and a name given twice. One walk, so the three readers
 * refuse the same corruptions the same way; each supplies how its directories list children.
 */
import type { NixSealError } from '../errors.js';
import type { InnerEntry } from './image.js';

export interface WalkLimits {
  maxEntries: number;
  maxDepth: number;
}

/** A named child of a directory as the format lists it. */
export interface DirChild<D, E> {
  name: string;
  /** Image offset of the record naming it (what a refusal blames). */
  at: number;
  /** Reads the child (its inode): its entry, and when it is a directory what lists it and its identity (inode number, first cluster). */
  open(path: string): { entry: E; dir?: { dir: D; key: number } };
}

export interface DirWalk<D, E extends { path: string; type: InnerEntry['type'] }> {
  root: { entry: E; dir: D; key: number };
  /** The children of a directory, in directory order, without '.' and '..'. */
  children(dir: D, entry: E): Iterable<DirChild<D, E>>;
  limits: WalkLimits;
  fail(why: string, offset: number): NixSealError;
  /** The message for a directory reached a second time. */
  loop?(path: string, key: number): string;
}

/** Every entry, root ('') first, parents before children; and the entries by path. */
export function walkDirectories<D, E extends { path: string; type: InnerEntry['type'] }>(w: DirWalk<D, E>): { entries: E[]; byPath: Map<string, E> } {
  const entries: E[] = [w.root.entry];
  const byPath = new Map<string, E>([['', w.root.entry]]);
  const seen = new Set<number>([w.root.key]);
  const loop = w.loop ?? ((_p: string, key: number) => `directory inode ${key} is linked twice (a loop?)`);
  const stack: { dir: D; entry: E; depth: number }[] = [{ dir: w.root.dir, entry: w.root.entry, depth: 0 }];
  while (stack.length > 0) {
    const { dir, entry, depth } = stack.pop()!;
    const kids: { dir: D; entry: E; depth: number }[] = [];
    for (const c of w.children(dir, entry)) {
      const parent = entry.path;
      if (c.name === '' || c.name === '.' || c.name === '..' || c.name.includes('/')) throw w.fail(`directory ${parent || '/'} holds an entry named ${JSON.stringify(c.name)}`, c.at);
      const path = parent === '' ? c.name : `${parent}/${c.name}`;
      // Two records with one name: which one a path means would be a guess.
      if (byPath.has(path)) throw w.fail(`${path} is named twice`, c.at);
      const { entry: e, dir: sub } = c.open(path);
      if (entries.length >= w.limits.maxEntries) throw w.fail(`more than ${w.limits.maxEntries} entries`, c.at);
      entries.push(e);
      byPath.set(path, e);
      if (sub === undefined) continue;
      if (seen.has(sub.key)) throw w.fail(loop(path, sub.key), c.at);
      seen.add(sub.key);
      if (depth + 1 > w.limits.maxDepth) throw w.fail(`directories nest deeper than ${w.limits.maxDepth}`, c.at);
      kids.push({ dir: sub.dir, entry: e, depth: depth + 1 });
    }
    // Depth first, in directory order: pushed reversed so the first child is walked first.
    for (const k of kids.reverse()) stack.push(k); // not push(...): a huge directory would overflow the call's arguments
  }
  return { entries, byPath };
}

/**
 * children() for file systems whose directories are records of (name, inode number) — ext4,
 * EROFS: '.' and '..' skipped, each child's inode read only when the walk reaches it, and a
 * directory child listed by its own inode under its inode number.
 */
export function inodeChildren<I, E extends { type: InnerEntry['type'] }>(
  dirents: (dir: I) => Iterable<{ name: string; ino: number; at: number }>,
  inode: (ino: number, at: number) => I,
  entryOf: (path: string, inode: I) => E,
): (dir: I) => Iterable<DirChild<I, E>> {
  return function* (dir) {
    for (const { name, ino, at } of dirents(dir)) {
      if (name === '.' || name === '..') continue;
      yield {
        name,
        at,
        open(path) {
          const child = inode(ino, at);
          const entry = entryOf(path, child);
          return entry.type === 'dir' ? { entry, dir: { dir: child, key: ino } } : { entry };
        },
      };
    }
  };
}
