/**
 * Looking inside one store path on disk for evidence: which of its files are images nix-seal can
 * read (ISO 9660, squashfs), which are images it cannot (qcow2, ext4, tar…: "opaque"), and, for
 * a hash found in its bytes, where exactly it sits, down to the file inside an image.
 *
 * Files are sniffed and opened lazily, once; `close()` releases the descriptors.
 */
import { closeSync, lstatSync, openSync, readdirSync, constants as fsConstants, type Stats } from 'node:fs';
import { join } from 'node:path';
import { NixSealError, describeSystemError } from '../errors.js';
import { FdSource } from '../formats/byte-source.js';
import type { PathHit } from '../scan/scan-path.js';
import { embeddedStorePaths, locateDeep, readerFor, type Embedding, type ImageRegistration, type ImageView, type ViewProblem } from './image-view.js';
import { sniffSource, type Detection } from './sniff.js';
import { itemAt } from '../checked-index.js';

/** What a file of the store path is, for evidence. */
export type FileNature =
  | { nature: 'image'; view: ImageView }
  /** An image nix-seal cannot look inside (its format, or why a readable format would not open). */
  | { nature: 'opaque'; why: string; detection?: Detection }
  | { nature: 'plain' };

/** One piece of evidence: a place in the seal's bytes, and what is there. */
export interface Evidence {
  /** The file on disk (a path in the store) and, after " » ", the path inside each nested image. */
  file: string;
  /** Byte offset in the file on disk (null when the format gives none, e.g. a name inside a compressed table). */
  offset: number | null;
  /** The chain of paths inside (nested) images; empty when the evidence is the file itself. */
  inside: string[];
  /** In words: "data of boot/grub/grub.cfg", "directory nix/store/…-bash (directory record at offset 51200)". */
  what: string;
  /** For a hash found in bytes: the bytes around it (non-printables as '.'). */
  context?: string;
  /** For a hash inside a file in an image: where it is in that file (the last of `inside`). */
  offsetInFile?: number;
}

/** A copy of a store path inside one of the store path's images. */
export interface Copy extends Embedding {
  evidence: Evidence;
  /** Identifies the copy on disk (file, image chain, entry): a copy is hashed once per audit. */
  key: string;
}

export class StorePathInspector {
  private readonly fds: number[] = [];
  private readonly natures = new Map<string, FileNature>();
  private fileList: string[] | undefined;

  /**
   * `fsPath`: where the store path's files are on disk; `logicalPath`: its name in the store
   * (they differ for `local?root=` stores); `storeDir`: the store dir whose paths images may embed.
   */
  constructor(
    readonly fsPath: string,
    readonly logicalPath: string,
    readonly storeDir: string,
  ) {}

  /** Regular files of the store path, relative ('' when the store path is itself a file), in byte order. */
  files(): string[] {
    if (this.fileList !== undefined) return this.fileList;
    const out: string[] = [];
    const st = lstatOrFail(this.fsPath);
    if (st.isFile()) out.push('');
    else if (st.isDirectory()) {
      const walk = (dir: string, rel: string): void => {
        let names: string[];
        try {
          names = readdirSync(dir);
        } catch (err) {
          throw new NixSealError('EIO', `Cannot read ${dir}: ${describeSystemError(err)}`, { path: dir, cause: err });
        }
        names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
        for (const n of names) {
          const p = join(dir, n);
          const r = rel === '' ? n : `${rel}/${n}`;
          const s = lstatOrFail(p);
          if (s.isDirectory()) walk(p, r);
          else if (s.isFile()) out.push(r);
        }
      };
      walk(this.fsPath, '');
    }
    return (this.fileList = out);
  }

  /** The display name of a file of the store path. */
  fileName(rel: string): string {
    return rel === '' ? this.logicalPath : `${this.logicalPath}/${rel}`;
  }

  /** Sniffs (once) and, for ISO 9660 / squashfs, opens the file. */
  nature(rel: string): FileNature {
    const known = this.natures.get(rel);
    if (known !== undefined) return known;
    const fsFile = rel === '' ? this.fsPath : join(this.fsPath, rel);
    let fd: number;
    try {
      fd = openSync(fsFile, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
    } catch (err) {
      throw new NixSealError('EIO', `Cannot read ${fsFile}: ${describeSystemError(err)}`, { path: fsFile, cause: err });
    }
    this.fds.push(fd);
    const src = new FdSource(fd, fsFile);
    let nature: FileNature;
    const name = this.fileName(rel);
    // One detection per file: the reader that recognises it opens it.
    const reader = readerFor(src);
    if (reader !== undefined) {
      try {
        nature = { nature: 'image', view: reader.open(src, name) };
      } catch (err) {
        nature = { nature: 'opaque', why: err instanceof NixSealError ? err.message : String(err) };
      }
    } else {
      const detection = sniffSource(src);
      nature = detection === undefined ? { nature: 'plain' } : { nature: 'opaque', detection, why: `${detection.format} image (${detection.why}): nix-seal cannot look inside it` };
    }
    this.natures.set(rel, nature);
    return nature;
  }

  /** Images nix-seal cannot look inside, among the store path's files. */
  opaqueFiles(): { file: string; why: string }[] {
    const out: { file: string; why: string }[] = [];
    for (const f of this.files()) {
      const n = this.nature(f);
      if (n.nature === 'opaque') out.push({ file: this.fileName(f), why: n.why });
    }
    return out;
  }

  /** Readable images among the store path's files. */
  images(): { rel: string; view: ImageView }[] {
    const out: { rel: string; view: ImageView }[] = [];
    for (const f of this.files()) {
      const n = this.nature(f);
      if (n.nature === 'image') out.push({ rel: f, view: n.view });
    }
    return out;
  }

  /**
   * Copies of store paths inside the readable images (by basename; the first found wins), and the
   * registration files inside them, with the file of the store path each was found in.
   */
  embedded(): { trees: Map<string, Copy>; registrations: (ImageRegistration & { file: string })[]; problems: { file: string; why: string }[] } {
    const trees = new Map<string, Copy>();
    const registrations: (ImageRegistration & { file: string })[] = [];
    const problems: { file: string; why: string }[] = [];
    for (const { rel, view } of this.images()) {
      const name = this.fileName(rel);
      let found: { trees: Map<string, Embedding>; registrations: ImageRegistration[]; problems: ViewProblem[] };
      try {
        found = embeddedStorePaths(view, this.storeDir, name);
      } catch (err) {
        problems.push({ file: name, why: (err as Error).message });
        continue;
      }
      for (const [base, e] of found.trees) {
        if (!trees.has(base)) trees.set(base, { ...e, evidence: { file: [name, ...e.inside].join(' » '), offset: e.offset, inside: e.inside, what: e.what }, key: `${this.fsPath}\0${rel}\0${e.inside.join('\0')}` });
      }
      for (const r of found.registrations) registrations.push({ ...r, file: [name, ...r.inside].join(' » ') });
      for (const p of found.problems) problems.push({ file: [name, ...p.inside].join(' » '), why: p.why });
    }
    return { trees, registrations, problems };
  }

  /** Where a hash found by the scanner sits: the file, and inside images the entry that holds it. */
  locate(hit: PathHit): Evidence & { opaque: boolean } {
    const context = `${hit.before}${hit.hash}${hit.after}`;
    const file = this.fileName(hit.file);
    if (hit.where !== 'contents') {
      return { file, offset: hit.offset, inside: [], what: hit.where === 'name' ? 'in the entry name' : 'in the symlink target', context, opaque: false };
    }
    const n = this.nature(hit.file);
    if (n.nature === 'opaque') return { file, offset: hit.offset, inside: [], what: n.why, context, opaque: true };
    if (n.nature === 'plain') return { file, offset: hit.offset, inside: [], what: 'contents', context, opaque: false };
    let steps;
    try {
      steps = locateDeep(n.view, hit.offset, file);
    } catch (err) {
      return { file, offset: hit.offset, inside: [], what: `in the image, not located: ${(err as Error).message}`, context, opaque: false };
    }
    const inside = steps.map((s) => s.path).filter((p) => p !== '');
    const opaque = steps.some((s) => s.opaque !== undefined);
    const last = itemAt(steps, steps.length - 1);
    const ev: Evidence & { opaque: boolean } = { file: [file, ...inside].join(' » '), offset: hit.offset, inside, what: last.what, context, opaque };
    if (last.offsetInFile !== undefined && last.path !== '') ev.offsetInFile = last.offsetInFile;
    return ev;
  }

  close(): void {
    for (const fd of this.fds.splice(0)) {
      try {
        closeSync(fd);
      } catch {
        // Closing a read-only descriptor cannot lose data.
      }
    }
    this.natures.clear();
  }
}

function lstatOrFail(p: string): Stats {
  try {
    return lstatSync(p);
  } catch (err) {
    throw new NixSealError('EIO', `Cannot read ${p}: ${describeSystemError(err)}`, { path: p, cause: err });
  }
}
