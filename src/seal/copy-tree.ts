/**
 * A copy of a store path inside an image, as a tree the NAR serializer reads (formats/nar.ts
 * narOfTree): the entry at the copy's root and everything below it, streamed from the image.
 */
import type { NarTree, TreeNode } from '../formats/nar.js';
import type { Embedding } from './image-view.js';
import { treeIndex } from './image-view.js';

export function copyTree(c: Pick<Embedding, 'view'>): NarTree {
  const index = treeIndex(c.view);
  return {
    node(path): TreeNode | undefined {
      const e = index.byPath.get(path);
      if (e === undefined) return undefined;
      const n: TreeNode = { type: e.type, size: e.size };
      if (e.executable !== undefined) n.executable = e.executable;
      if (e.target !== undefined) n.target = e.target;
      return n;
    },
    children(path) {
      return index.children.get(path) ?? [];
    },
    contents(path) {
      const e = index.byPath.get(path);
      if (e === undefined) return [];
      return c.view.read(e);
    },
  };
}

/** Bytes of file contents in the copy: what hashing it reads. */
export function copyBytes(c: Pick<Embedding, 'view' | 'entry'>): number {
  const index = treeIndex(c.view);
  let total = 0;
  const stack = [c.entry.path];
  while (stack.length > 0) {
    const p = stack.pop()!;
    const e = index.byPath.get(p);
    if (e === undefined) continue;
    if (e.type === 'file') total += e.size;
    else if (e.type === 'dir') for (const n of index.children.get(p) ?? []) stack.push(p === '' ? n : `${p}/${n}`);
  }
  return total;
}
