/**
 * Why a copy inside an image is not the store path: the first difference, in NAR order, between
 * the copy and the path on disk. Names, types, executable bits, sizes and symlink targets first
 * (metadata only, cheap); contents only when all of those agree. Run only for copies whose NAR
 * hash already differs.
 */
import { closeSync, constants as fsConstants, lstatSync, openSync, readSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import type { TreeNode } from '../formats/nar.js';
import { copyTree } from '../sources/embedded-store.js';
import type { Embedding } from './image-view.js';

const diskType = (st: Stats): TreeNode['type'] => (st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : 'special');
const word = (t: TreeNode['type']): string => (t === 'dir' ? 'directory' : t === 'file' ? 'regular file' : t === 'symlink' ? 'symlink' : 'special file');

/** The first difference between the copy and `fsPath`, in words, or undefined when none is found. */
export function firstDifference(c: Pick<Embedding, 'view' | 'entry'>, fsPath: string): string | undefined {
  return walk(c, fsPath, false) ?? walk(c, fsPath, true);
}

function walk(c: Pick<Embedding, 'view' | 'entry'>, fsPath: string, contents: boolean): string | undefined {
  const tree = copyTree(c);
  const visit = (inner: string, disk: string, rel: string): string | undefined => {
    const n = tree.node(inner)!;
    const st = lstatSync(disk);
    const name = rel === '' ? 'the path itself' : rel;
    const t = diskType(st);
    if (n.type !== t) return `${name}: a ${word(n.type)} in the image, a ${word(t)} in the store`;
    if (t === 'symlink') {
      const target = readlinkSync(disk);
      return n.target === target ? undefined : `${name}: a symlink to ${JSON.stringify(n.target)} in the image, to ${JSON.stringify(target)} in the store`;
    }
    if (t === 'file') {
      const exec = (st.mode & fsConstants.S_IXUSR) !== 0;
      if ((n.executable ?? false) !== exec) return `${name}: ${n.executable ? '' : 'not '}executable in the image, ${exec ? '' : 'not '}executable in the store`;
      if (n.size !== st.size) return `${name}: ${n.size} bytes in the image, ${st.size} in the store`;
      if (!contents) return undefined;
      const at = firstByteDiff(tree.contents(inner), disk);
      return at === undefined ? undefined : `${name}: contents differ from byte ${at}`;
    }
    if (t !== 'dir') return undefined;
    const a = [...tree.children(inner)].sort();
    const b = readdirSync(disk).sort();
    const onDisk = new Set(b);
    const inImage = new Set(a);
    const all = [...new Set([...a, ...b])].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    for (const k of all) {
      const r = rel === '' ? k : `${rel}/${k}`;
      if (!inImage.has(k)) return `${r}: in the store, not in the image`;
      if (!onDisk.has(k)) return `${r}: in the image, not in the store`;
      const d = visit(inner === '' ? k : `${inner}/${k}`, join(disk, k), r);
      if (d !== undefined) return d;
    }
    return undefined;
  };
  return visit(c.entry.path, fsPath, '');
}

function firstByteDiff(chunks: Iterable<Uint8Array>, disk: string): number | undefined {
  const fd = openSync(disk, 'r');
  try {
    let pos = 0;
    for (const chunk of chunks) {
      const mine = Buffer.allocUnsafe(chunk.length);
      let got = 0;
      while (got < chunk.length) {
        const n = readSync(fd, mine, got, chunk.length - got, pos + got);
        if (n === 0) break;
        got += n;
      }
      const theirs = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
      if (got < chunk.length || !mine.equals(theirs)) {
        for (let i = 0; i < got; i++) if (mine[i] !== theirs[i]) return pos + i;
        return pos + got;
      }
      pos += chunk.length;
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}
