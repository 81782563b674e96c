/**
 * `--store image:FILE`: the closure an image embeds, read from the image itself. Nixpkgs now
 * builds ISOs, squashfs images, tarballs and repart images with `unsafeDiscardReferences`, so
 * their store paths have no references; the image still knows what it holds.
 */
import { chmodSync, closeSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, realpathSync, rmSync, symlinkSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { NixSealError, describeSystemError } from '../errors.js';
import { FdSource } from '../formats/byte-source.js';
import { readerFor } from '../formats/image-readers.js';
import type { ImageView } from '../formats/image.js';
import { narOfTree } from '../formats/nar.js';
import { idOf, type RefGraph } from '../graph/ref-graph.js';
import { ReferenceScanner, HashPartSet } from '../scan/reference-scanner.js';
import { encodeNix32 } from '../store/nix32.js';
import { DEFAULT_STORE_DIR, type StorePath } from '../store/store-path.js';
import { copyTree, embeddedStorePaths, treeIndex, type Embedding, type ImageRegistration } from './embedded-store.js';
import { RecordCollector, type PathRecord } from './records.js';
import { addRegistration } from './registration.js';
import type { GraphSource } from './source.js';
import { itemAt, u32At } from '../checked-index.js';

/** Files of a directory output looked at for images (an isoImage output has a handful). */
const MAX_DIRECTORY_FILES = 1000;

/**
 * The graph comes from the registration inside (nix-path-registration, closureInfo's
 * registration: narHash, narSize, references), checked like `nix-store --load-db` checks one (it
 * must be closed under references). An image without one gets its graph from its copies: each is
 * serialised as a NAR from the image, hashed, and scanned for the hash parts of the others, as Nix
 * scans a build output.
 *
 * The copies are not on disk: commands that read a path's bytes (audit, why --precise, initrd,
 * --seal-images) ask `materialize` first, which writes those copies into a private temporary
 * store dir (removed by `close()` and at exit).
 */
export class ImageSource implements GraphSource {
  readonly description: string;
  readonly storeDir: string;
  readonly graph: RefGraph;
  /** The roots when the user names none: the registration's paths nothing else refers to. */
  readonly defaultRoots: StorePath[];
  private readonly fds: number[] = [];
  private readonly copies: Map<string, Embedding>;
  private tempDir: string | undefined;
  private readonly onExit = (): void => this.removeTemp();

  /**
   * `defaultStoreDir`: the store dir when the image does not say (a store image without a
   * registration names only basenames): NIX_STORE_DIR, else /nix/store.
   */
  constructor(
    readonly file: string,
    log: (msg: string) => void = () => {},
    defaultStoreDir: string = DEFAULT_STORE_DIR,
  ) {
    const images = this.openImages(file);
    if (images.length === 0) {
      throw new NixSealError('EFORMAT', `Cannot read ${file}: no image nix-seal can look inside`, { path: file });
    }
    // One look inside each image; the store dir it uses decides which registrations count. Trees
    // are found under nix/store and at a store image's root whatever the store dir, so a second
    // look is needed only for a store dir of another shape (/gnu/store…) than the default's.
    let found = images.map(({ view, name }) => ({ name, ...embeddedStorePaths(view, defaultStoreDir, name) }));
    this.storeDir = storeDirOf(found) ?? defaultStoreDir;
    if (this.storeDir !== defaultStoreDir && !this.storeDir.endsWith('/nix/store')) {
      found = images.map(({ view, name }) => ({ name, ...embeddedStorePaths(view, this.storeDir, name) }));
    }
    this.copies = new Map();
    const registrations: { name: string; text: string }[] = [];
    for (const f of found) {
      const [p] = f.problems;
      if (p !== undefined) {
        throw new NixSealError('EFORMAT', `Cannot read ${[f.name, ...p.inside].join(' » ')}: ${p.why}`, { path: f.name });
      }
      for (const [base, c] of f.trees) if (!this.copies.has(base)) this.copies.set(base, c);
      for (const r of f.registrations) {
        const text = Buffer.from(r.text, 'latin1').toString('utf8');
        if (text.startsWith(this.storeDir + '/')) registrations.push({ name: [f.name, ...r.inside].join(' » '), text });
      }
    }
    if (registrations.length > 0) {
      const c = new RecordCollector(registrations.length === 1 ? itemAt(registrations, 0).name : `the registrations in ${file}`, true);
      for (const r of registrations) addRegistration(c, r.text, hasHashes(r.text), registrations.length === 1 ? '' : `${r.name} `);
      this.graph = c.finish();
      this.description = `registration ${registrations.map((r) => r.name).join(', ')}`;
    } else {
      if (this.copies.size === 0) {
        throw new NixSealError('EFORMAT', `Cannot read ${file}: the image holds neither a registration (nix-path-registration) nor store paths`, { path: file });
      }
      log(`${file} holds no registration: hashing its ${this.copies.size} store paths and scanning them for references, as Nix does`);
      this.graph = this.graphFromCopies(file);
      this.description = `store paths inside ${file} (no registration: references scanned)`;
    }
    this.defaultRoots = rootsOf(this.graph);
  }

  get realStoreDir(): string {
    if (this.tempDir === undefined) {
      this.tempDir = mkdtempSync(path.join(tmpdir(), 'nix-seal-image-store-'));
      process.once('exit', this.onExit);
    }
    return this.tempDir;
  }

  loadClosure(roots: readonly StorePath[]): RefGraph {
    for (const r of roots) {
      if (idOf(this.graph, r) === undefined) {
        throw new NixSealError('EINVALIDPATH', `Cannot use ${r}: path is not listed in ${this.description}`, { path: r });
      }
    }
    return this.graph;
  }

  /**
   * Writes the copies of `paths` into the temporary store dir (once each), so that commands that
   * read bytes find them at `<realStoreDir>/<basename>`. A path the image holds no copy of is left
   * out (the command then reports it missing on disk).
   */
  materialize(paths: readonly string[]): string {
    for (const p of paths) {
      const base = path.posix.basename(p);
      const dest = path.join(this.realStoreDir, base);
      const c = this.copies.get(base);
      if (c === undefined || exists(dest)) continue;
      extractCopy(c, dest);
    }
    return this.realStoreDir;
  }

  close(): void {
    for (const fd of this.fds.splice(0)) {
      try {
        closeSync(fd);
      } catch {
        // A read-only descriptor: nothing to lose.
      }
    }
    this.removeTemp();
    process.removeListener('exit', this.onExit);
  }

  private removeTemp(): void {
    if (this.tempDir === undefined) return;
    // Extracted copies are read-only like a store: make them writable to remove them.
    try {
      makeWritable(this.tempDir);
      rmSync(this.tempDir, { recursive: true, force: true });
    } catch {
      // Best effort, at exit.
    }
    this.tempDir = undefined;
  }

  private openImages(file: string): { view: ImageView; name: string }[] {
    let real: string;
    try {
      real = realpathSync(file);
    } catch (err) {
      throw new NixSealError('EIO', `Cannot read ${file}: ${describeSystemError(err)}`, { path: file, cause: err });
    }
    const files: string[] = [];
    const st = lstatSync(real);
    if (st.isFile()) files.push(real);
    else if (st.isDirectory()) {
      const walk = (dir: string): void => {
        for (const n of readdirSync(dir).sort()) {
          if (files.length >= MAX_DIRECTORY_FILES) return;
          const p = path.join(dir, n);
          const s = lstatSync(p);
          if (s.isDirectory()) walk(p);
          else if (s.isFile()) files.push(p);
        }
      };
      walk(real);
    }
    const out: { view: ImageView; name: string }[] = [];
    for (const f of files) {
      let fd: number;
      try {
        fd = openSync(f, 'r');
      } catch (err) {
        throw new NixSealError('EIO', `Cannot read ${f}: ${describeSystemError(err)}`, { path: f, cause: err });
      }
      this.fds.push(fd);
      const src = new FdSource(fd, f);
      const reader = readerFor(src);
      if (reader !== undefined) out.push({ view: reader.open(src, f), name: f === real ? file : f });
    }
    return out;
  }

  /** Records from the copies: NAR hash and size from the image, references by scanning. */
  private graphFromCopies(file: string): RefGraph {
    const byHash = new Map<string, string>();
    for (const base of this.copies.keys()) byHash.set(base.slice(0, 32), `${this.storeDir}/${base}`);
    const candidates = new HashPartSet(byHash.keys());
    const c = new RecordCollector(file);
    for (const [base, copy] of this.copies) {
      const scanner = new ReferenceScanner(candidates, { context: 0 });
      const hash = createHash('sha256');
      let narSize = 0;
      for (const chunk of narOfTree(copyTree(copy), copy.entry.path, [file, ...copy.inside].join(' » '))) {
        hash.update(chunk);
        narSize += chunk.length;
        scanner.feed(chunk);
      }
      scanner.end();
      const rec: PathRecord = {
        path: `${this.storeDir}/${base}`,
        narHash: `sha256:${encodeNix32(hash.digest())}`,
        narSize,
        references: [...scanner.found].map((h) => byHash.get(h)!).sort(),
        where: [file, ...copy.inside].join(' » '),
      };
      c.add(rec);
    }
    return c.finish();
  }
}

/**
 * The store dir an image uses: from the first path of a registration inside it (at any depth),
 * else `/nix/store` when it has `nix/store/<basename>` entries; undefined when it does not say.
 */
function storeDirOf(found: readonly { registrations: readonly ImageRegistration[]; trees: ReadonlyMap<string, Embedding> }[]): string | undefined {
  let namesSay: string | undefined;
  for (const f of found) {
    for (const r of f.registrations) {
      const first = r.text.slice(0, 4096).split('\n')[0] ?? '';
      if (/^\/.+\/[0-9a-z]{32}-[^/]+$/.test(first)) return path.posix.dirname(first);
    }
    for (const c of f.trees.values()) if (!c.storeImage) namesSay = DEFAULT_STORE_DIR;
  }
  return namesSay;
}

/** Whether the registration's records carry narHash and narSize (closureInfo's do; exportReferencesGraph's do not). */
function hasHashes(text: string): boolean {
  // The second line decides: a hash, or (without hashes) the deriver, a store path or empty.
  return /^(sha256:)?[0-9a-z+/=-]{40,}$/i.test(text.split('\n', 2)[1] ?? '');
}

/** The paths nothing else in the graph refers to. */
function rootsOf(g: RefGraph): StorePath[] {
  const referred = new Uint8Array(g.paths.length);
  for (let v = 0; v < g.paths.length; v++) {
    const end = u32At(g.refStart, v + 1);
    for (let k = u32At(g.refStart, v); k < end; k++) {
      const w = u32At(g.refs, k);
      if (w !== v) referred[w] = 1;
    }
  }
  return g.paths.filter((_, i) => !referred[i]);
}

function exists(p: string): boolean {
  try {
    lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Writes a copy out of the image as a store path would be: read-only, executables 0555. */
function extractCopy(c: Embedding, dest: string): void {
  const index = treeIndex(c.view);
  const write = (inner: string, out: string): void => {
    const e = index.byPath.get(inner)!;
    if (e.type === 'dir') {
      mkdirSync(out);
      for (const n of index.children.get(inner) ?? []) write(inner === '' ? n : `${inner}/${n}`, path.join(out, n));
      chmodSync(out, 0o555);
    } else if (e.type === 'symlink') {
      symlinkSync(e.target ?? '', out);
    } else if (e.type === 'file') {
      const fd = openSync(out, 'wx', 0o644);
      try {
        for (const chunk of c.view.read(e)) writeSync(fd, chunk);
      } finally {
        closeSync(fd);
      }
      chmodSync(out, e.executable ? 0o555 : 0o444);
    } else {
      throw new NixSealError('EFORMAT', `Cannot extract ${inner}: a device, fifo or socket cannot be in a store path`, { path: inner });
    }
  };
  write(c.entry.path, dest);
}

function makeWritable(dir: string): void {
  for (const n of readdirSync(dir)) {
    const p = path.join(dir, n);
    const st = lstatSync(p);
    if (st.isDirectory()) {
      chmodSync(p, 0o755);
      makeWritable(p);
    }
  }
}

