/**
 * What a Nix store inside an image holds: copies of store paths (`…/nix/store/<basename>`
 * entries, `<basename>` at the root of a store image such as NixOS's nix-store.squashfs) and the
 * registration files listing them (nix-path-registration, closureInfo's registration). The image
 * source reads a graph from them; the audit checks copies against the store.
 *
 * Images are hostile input: the readers bound every structure; this module adds a depth budget
 * for nesting and a size cap on the registration files it reads into memory.
 */
import { openImageView } from '../formats/image-readers.js';
import { readWhole, type ImageView, type InnerEntry } from '../formats/image.js';
import type { NarTree, TreeNode } from '../formats/nar.js';
import { storeBaseNameProblem } from '../store/store-path.js';
import { itemAt } from '../checked-index.js';

/** How deep images may nest (an ISO holding a squashfs holding an ISO…). */
export const MAX_NESTING = 4;


/** An image's entries by path, and each directory's children (names): built once per view. */
export interface TreeIndex {
  byPath: Map<string, InnerEntry>;
  children: Map<string, string[]>;
}

const indexCache = new WeakMap<ImageView, TreeIndex>();

export function treeIndex(view: ImageView): TreeIndex {
  const known = indexCache.get(view);
  if (known !== undefined) return known;
  const byPath = new Map<string, InnerEntry>();
  const children = new Map<string, string[]>();
  for (const e of view.entries()) {
    byPath.set(e.path, e);
    if (e.path === '') continue;
    const slash = e.path.lastIndexOf('/');
    const parent = slash < 0 ? '' : e.path.slice(0, slash);
    const list = children.get(parent);
    if (list === undefined) children.set(parent, [e.path.slice(slash + 1)]);
    else list.push(e.path.slice(slash + 1));
  }
  const index = { byPath, children };
  indexCache.set(view, index);
  return index;
}

/**
 * Where a symlink inside an image ends, resolved inside the image as if it were mounted at `/`
 * (and, for a store image mounted on the store dir, absolute targets under the store dir resolved
 * at its root): the final entry, or undefined when the target leaves the image, does not exist or
 * loops. `storeImage`: the image's root is the store dir (nix-store.squashfs).
 */
export function resolveInside(index: TreeIndex, path: string, storeDir: string, storeImage: boolean): InnerEntry | undefined {
  let current = path;
  for (let hops = 0; hops < 40; hops++) {
    const e = index.byPath.get(current);
    if (e === undefined) return undefined;
    if (e.type !== 'symlink') return e;
    const target = e.target ?? '';
    let base: string[];
    let rest: string;
    if (target.startsWith('/')) {
      if (storeImage) {
        if (!target.startsWith(storeDir + '/')) return undefined;
        rest = target.slice(storeDir.length + 1);
      } else rest = target.slice(1);
      base = [];
    } else {
      base = current.split('/').slice(0, -1);
      rest = target;
    }
    for (const part of rest.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (base.length === 0) return undefined; // above the image's root
        base.pop();
      } else base.push(part);
    }
    current = base.join('/');
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// What an image embeds

/** Where an image holds a copy of a store path. */
export interface Embedding {
  /** The chain of paths inside nested images, outermost first, ending with the entry. */
  inside: string[];
  /** Offset in the outermost image file: the directory record, or where the nested image starts. */
  offset: number;
  what: string;
  /** The innermost image and the entry: what a NAR hash of the copy is computed from. */
  view: ImageView;
  entry: InnerEntry;
  /** The image's root is the store dir (nix-store.squashfs): absolute targets resolve there. */
  storeImage: boolean;
}

/** One store path as a registration file inside the image lists it. */
export interface Registered {
  path: string;
  /** The narHash as written (any encoding), when the registration has hashes. */
  narHash?: string;
  narSize?: number;
  line: number;
}

/** A registration file found inside the image. */
export interface ImageRegistration {
  inside: string[];
  offset: number;
  /** By store path (empty when it lists no path of the store dir asked for). */
  paths: Map<string, Registered>;
  /** The file's text (latin1: bytes as they are). */
  text: string;
}

/** Registration files bigger than this are not read (a 100,000-path registration is ~20 MB). */
export const MAX_REGISTRATION_BYTES = 64 << 20;

/** Names of files read as registrations: NixOS's nix-path-registration, closureInfo's registration. */
const REGISTRATION_NAME = /(^|\/)(nix-path-registration|registration)$/;

/** A problem met while looking inside (a nested image that would not open); the caller reports it. */
export interface ViewProblem {
  inside: string[];
  why: string;
}

/**
 * The records of a registration text (path, narHash, narSize, deriver, count, references), read
 * leniently: it is evidence, not a source, so a record that does not parse ends the reading and
 * what came before stands. Lines that are bare store paths (a store-paths list) count too.
 */
export function readRegistration(text: string, storeDir: string): Map<string, Registered> {
  const out = new Map<string, Registered>();
  const lines = text.split('\n');
  const isPath = (l: string | undefined): boolean => l !== undefined && l.startsWith(storeDir + '/') && !l.slice(storeDir.length + 1).includes('/') && storeBaseNameProblem(l.slice(storeDir.length + 1)) === undefined;
  let i = 0;
  while (i < lines.length) {
    const p = itemAt(lines, i);
    if (!isPath(p)) {
      i++;
      continue;
    }
    const start = i + 1;
    // With hashes: path, narHash, narSize, deriver, count, refs. Without: path, deriver, count, refs.
    const h = lines[i + 1];
    const size = lines[i + 2];
    const count = lines[i + 4];
    if (h !== undefined && /^(sha256:)?[0-9a-z+/=-]{40,}$/i.test(h) && size !== undefined && /^\d+$/.test(size) && count !== undefined && /^\d+$/.test(count)) {
      if (!out.has(p)) out.set(p, { path: p, narHash: h, narSize: Number(size), line: start });
      i += 5 + Number(count);
      continue;
    }
    if (!out.has(p)) out.set(p, { path: p, line: start });
    i++;
  }
  return out;
}

/**
 * The store paths (by basename) that `view` holds copies of, and the registration files inside
 * it, for store dir `storeDir`. Nested images are searched too.
 */
export function embeddedStorePaths(
  view: ImageView,
  storeDir: string,
  name: string,
): { trees: Map<string, Embedding>; registrations: ImageRegistration[]; problems: ViewProblem[] } {
  const trees = new Map<string, Embedding>();
  const registrations: ImageRegistration[] = [];
  const problems: ViewProblem[] = [];
  const storeSuffix = storeDir.replace(/^\/+/, '');
  const visit = (v: ImageView, chain: string[], outerOffset: number, depth: number): void => {
    for (const e of v.entries()) {
      if (e.path === '') continue;
      const slash = e.path.lastIndexOf('/');
      const parent = slash < 0 ? '' : e.path.slice(0, slash);
      const base = e.path.slice(slash + 1);
      const atStoreDir = parent === 'nix/store' || parent.endsWith('/nix/store') || parent === storeSuffix || parent.endsWith('/' + storeSuffix);
      // An image whose root holds store basenames is a store image: NixOS's nix-store.squashfs
      // (make-squashfs.nix), mounted on /nix/.ro-store under the overlay /nix/store; microvm and
      // repart store partitions (erofs, squashfs) mounted on the store dir.
      const atStoreRoot = parent === '' && v.kind !== 'iso9660';
      if ((atStoreDir || atStoreRoot) && storeBaseNameProblem(base) === undefined && !trees.has(base)) {
        const offset = depth === 0 && e.recordOffset !== undefined ? e.recordOffset : outerOffset;
        trees.set(base, {
          inside: [...chain, e.path],
          offset,
          what: `${e.type === 'dir' ? 'directory' : e.type}${depth === 0 && e.recordOffset !== undefined ? ' (the offset is its directory record)' : depth > 0 ? ` (the offset is where ${chain[0]} starts)` : ''}`,
          view: v,
          entry: e,
          storeImage: !atStoreDir,
        });
      }
      if (e.type === 'file' && REGISTRATION_NAME.test(e.path) && e.size <= MAX_REGISTRATION_BYTES) {
        let text: string;
        try {
          text = Buffer.from(readWhole(v, e)).toString('latin1');
        } catch (err) {
          problems.push({ inside: [...chain, e.path], why: (err as Error).message });
          continue;
        }
        const paths = readRegistration(text, storeDir);
        registrations.push({ inside: [...chain, e.path], offset: depth === 0 && e.window ? e.window.offset : outerOffset, paths, text });
      }
      if (e.type === 'file' && depth + 1 < MAX_NESTING) {
        let nested: ImageView | undefined;
        try {
          const src = v.fileSource(e);
          nested = src === undefined ? undefined : openImageView(src, `${name} » ${[...chain, e.path].join(' » ')}`);
        } catch (err) {
          problems.push({ inside: [...chain, e.path], why: (err as Error).message });
          continue;
        }
        if (nested !== undefined) {
          try {
            visit(nested, [...chain, e.path], depth === 0 && e.window !== undefined ? e.window.offset : outerOffset, depth + 1);
          } catch (err) {
            problems.push({ inside: [...chain, e.path], why: (err as Error).message });
          }
        }
      }
    }
  };
  visit(view, [], 0, 0);
  return { trees, registrations, problems };
}

// ---------------------------------------------------------------------------------------------
// A copy as a tree the NAR serializer reads (formats/nar.ts narOfTree)

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
