import * as fs from 'node:fs';
import { analyze, prepareStore, type AnalysisOptions } from '../analysis.js';
import { describeSystemError, NixSealError, usageError, type Warning } from '../errors.js';
import { parseCompressor } from '../emit/compress.js';
import { writeInitrd, type InitrdResult } from '../emit/initrd.js';
import { followLinksToStore } from '../store/resolve-path.js';
import { isInStore } from '../store/store-path.js';
import { parseStoreSpec } from '../store/store-url.js';
import { storeDirWithBytes } from '../sources/source.js';
import { openSource } from '../sources/open-source.js';

export interface InitrdFlags {
  output: string;
  init?: string;
  link: string[];
  registration?: string;
  prepend: string[];
  compress: string;
  level?: string;
  mkdir?: boolean;
}

export interface InitrdCommandResult extends InitrdResult {
  compressor: string;
  warnings: Warning[];
}

/** `DEST=TARGET` with an absolute DEST. */
function parseLink(text: string): { dest: string; target: string } {
  const eq = text.indexOf('=');
  const dest = text.slice(0, eq);
  const target = text.slice(eq + 1);
  if (eq < 0 || !dest.startsWith('/') || dest === '/' || target === '') {
    throw usageError(`--link '${text}': expected DEST=TARGET with an absolute DEST, e.g. /bin/sh=/nix/store/…-busybox/bin/sh`);
  }
  return { dest, target };
}

/**
 * `nix-seal initrd`: the sealed closure as a compressed cpio archive. `--init PATH` makes /init a
 * symlink to PATH and PATH a root (makeInitrd's `{ object; symlink = "/init"; }`); a `--link`
 * whose target is in the store makes that target a root too, so no link in the image dangles.
 * `registration` is the text `--registration` puts into the image; it is computed by the caller
 * from the same analysis.
 */
export async function initrdCommand(
  roots: string[],
  flags: InitrdFlags,
  base: Omit<AnalysisOptions, 'roots'>,
  registrationText: ((a: ReturnType<typeof analyze>) => Promise<string>) | undefined,
  progress?: (done: number, total: number) => void,
): Promise<InitrdCommandResult> {
  const compressor = parseCompressor(flags.compress, flags.level);
  const links = flags.link.map(parseLink);
  for (const p of flags.prepend) {
    try {
      fs.accessSync(p, fs.constants.R_OK);
    } catch (err) {
      throw new NixSealError('EIO', `Cannot read --prepend ${p}: ${describeSystemError(err)}`, { path: p });
    }
  }
  if (flags.registration !== undefined && !flags.registration.startsWith('/')) {
    throw usageError(`--registration '${flags.registration}': expected an absolute path inside the image`);
  }
  // Resolve --init and store link targets against the store the graph comes from.
  const spec = typeof base.store === 'object' ? base.store : parseStoreSpec(base.store, base.env);
  await prepareStore(spec);
  const source = openSource(spec, base.log);
  try {
    const extraRoots: string[] = [];
    if (flags.init !== undefined) {
      const target = followLinksToStore(flags.init, source.storeDir);
      links.unshift({ dest: '/init', target });
      extraRoots.push(target);
    }
    for (const l of links) if (isInStore(l.target, source.storeDir) && l.dest !== '/init') extraRoots.push(l.target);
    const allRoots = [...roots, ...extraRoots];
    if (allRoots.length === 0) throw usageError('initrd needs a ROOT or --init');
    const a = analyze({ ...base, store: spec, roots: allRoots, hashes: flags.registration !== undefined, source });
    // From an image or a binary cache, the kept paths' bytes are extracted or fetched (NARs verified).
    const realStoreDir = storeDirWithBytes(a.source, a.graph.paths.filter((_, id) => a.closure.kept[id]));
    const files = flags.registration !== undefined && registrationText ? [{ dest: flags.registration, contents: Buffer.from(await registrationText(a)) }] : [];
    const result = await writeInitrd(
      {
        graph: a.graph,
        kept: a.closure.kept,
        // Paths extracted or fetched into a temporary store dir: the directories above the store
        // take their modes from where the store would be.
        modesFrom: a.source.materialize !== undefined ? a.source.storeDir : a.source.realStoreDir,
        realStoreDir,
        links,
        files,
        prepend: flags.prepend,
        compressor,
        mkdir: flags.mkdir ?? false,
        ...(progress ? { progress } : {}),
      },
      flags.output,
    );
    return { ...result, compressor: compressor.name, warnings: a.warnings };
  } finally {
    source.close?.();
  }
}
