/**
 * Looking inside images for evidence (the readers are in formats/, listed in image-readers.ts):
 *
 * - what holds byte N of this image file (a file inside it, a directory record, a table…), going
 *   down into nested images, so that a hash found in the raw bytes can be shown as
 *   `iso/nixos.iso » boot/grub/grub.cfg`;
 * - which store paths the image embeds (sources/embedded-store.ts, re-exported here).
 *
 * Images are hostile input: the readers bound every structure; this module adds a depth budget
 * for nesting.
 */
import { openImageView, readerFor } from '../formats/image-readers.js';
import type { ImageView, InnerEntry } from '../formats/image.js';
import { MAX_NESTING, treeIndex } from '../sources/embedded-store.js';
import { sniffSource, type Detection } from './sniff.js';

export { openImageView, readerFor };
export type { ImageView, InnerEntry };
export type { InnerOwner } from '../formats/image.js';
export {
  MAX_NESTING,
  MAX_REGISTRATION_BYTES,
  embeddedStorePaths,
  readRegistration,
  resolveInside,
  treeIndex,
  type Embedding,
  type ImageRegistration,
  type Registered,
  type TreeIndex,
  type ViewProblem,
} from '../sources/embedded-store.js';


// ---------------------------------------------------------------------------------------------
// Locating a byte, through nested images

/** A step down: the image file, the entry inside it, what holds the byte there. */
export interface LocatedStep {
  /** Path inside this level's image ('' when the byte is in no entry: a table, padding…). */
  path: string;
  what: string;
  /** When the byte is file data the format maps exactly: its offset in that file. */
  offsetInFile?: number;
  /**
   * Set when the byte is in a file that is an image nix-seal cannot look inside (an ext4 or a
   * qcow2 in an ISO, say): whatever the hash belongs to may be contained in there.
   */
  opaque?: Detection;
}

/**
 * What holds byte `offset` of the image `view`, level by level: when it is the data of a file
 * that is itself an image stored in one piece, the answer continues inside that image.
 */
export function locateDeep(view: ImageView, offset: number, name: string, depth = 0): LocatedStep[] {
  const owner = view.locate(offset);
  const step: LocatedStep = { path: owner.path ?? '', what: owner.what };
  if (owner.offsetInFile !== undefined) step.offsetInFile = owner.offsetInFile;
  if (depth + 1 >= MAX_NESTING || owner.offsetInFile === undefined || owner.path === undefined) return [step];
  const nested = nestedImage(view, owner.path, `${name} » ${owner.path}`);
  if (nested.opaque !== undefined) {
    step.opaque = nested.opaque;
    step.what = `${step.what}, ${nested.opaque.format} image nix-seal cannot look inside (${nested.opaque.why})`;
  }
  if (nested.view === undefined) return [step];
  try {
    return [step, ...locateDeep(nested.view, owner.offsetInFile, `${name} » ${owner.path}`, depth + 1)];
  } catch {
    // A nested image too corrupt to index: the outer answer still stands.
    return [step];
  }
}

/** A file inside an image, as an image: one nix-seal reads (`view`), or one it cannot (`opaque`). */
interface NestedImage {
  view?: ImageView;
  opaque?: Detection;
}

const nestedCache = new WeakMap<ImageView, Map<string, NestedImage>>();

/**
 * The image inside file `path` of `view`, when that file is stored in one uncompressed piece (ISO
 * files are): opened when nix-seal can read it, else named by the sniffer when it is an image of
 * another format.
 */
function nestedImage(view: ImageView, path: string, name: string): NestedImage {
  let cache = nestedCache.get(view);
  if (cache === undefined) nestedCache.set(view, (cache = new Map()));
  const known = cache.get(path);
  if (known !== undefined) return known;
  const found = treeIndex(view).byPath.get(path);
  let nested: NestedImage = {};
  const src = found?.type === 'file' ? view.fileSource(found) : undefined;
  if (src !== undefined) {
    // A nested image that will not open or sniff is just file data: the outer answer stands.
    let opened: ImageView | undefined;
    try {
      opened = openImageView(src, name);
    } catch {
      opened = undefined;
    }
    if (opened !== undefined) nested = { view: opened };
    else {
      try {
        nested = { opaque: sniffSource(src) };
      } catch {
        nested = {};
      }
    }
  }
  cache.set(path, nested);
  return nested;
}

