import * as fs from 'node:fs';
import { errnoCode, NixSealError } from '../errors.js';
import type { StoreSpec } from '../store/store-url.js';
import type * as BinaryCacheModule from './binary-cache.js';
import { DaemonSource } from './daemon.js';
import { FileSource } from './file-source.js';
import type * as ImageSourceModule from './image-source.js';
import { LocalDbSource } from './local-db.js';
import type { GraphSource } from './source.js';

/*
 * The image and binary-cache sources bring every image reader, the decompressors and the HTTP
 * client with them, a large share of a small `closure` run's start-up (BENCHMARKS.md). They are imported only when a store names them: loadSourceModules() (async, before
 * openSource; analyzeStore calls it), or useSourceModules() by a caller that has imported them
 * anyway (the library's index does, so the library's synchronous openSource/analyze need nothing).
 */
interface SourceModules {
  image?: typeof ImageSourceModule;
  binaryCache?: typeof BinaryCacheModule;
}
const modules: SourceModules = {};

/** Makes already imported source modules available to openSource. */
export function useSourceModules(m: SourceModules): void {
  if (m.image) modules.image = m.image;
  if (m.binaryCache) modules.binaryCache = m.binaryCache;
}

/** Imports the module the store's source lives in, if openSource cannot open it without. */
export async function loadSourceModules(spec: StoreSpec): Promise<void> {
  if (spec.kind === 'image') modules.image ??= await import('./image-source.js');
  else if (spec.kind === 'binary-cache') modules.binaryCache ??= await import('./binary-cache.js');
}

function loaded<K extends keyof SourceModules>(key: K, spec: StoreSpec): NonNullable<SourceModules[K]> {
  const m = modules[key];
  if (m) return m;
  throw new NixSealError('EINTERNAL', `Cannot open the ${spec.kind} store: its module is not loaded (await loadSourceModules(spec) first, or import from the package's index)`);
}

/** True when this user is denied reading `file` (EACCES, the multi-user install's normal case); false when readable or missing. */
function unreadable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    return false;
  } catch (err) {
    return errnoCode(err) === 'EACCES';
  }
}

/** Database failures the daemon can get around: this user may not open the file, or not read-only. */
const FALLBACK_REASONS = new Set(['EACCES', 'EPERM', 'SQLITE_CANTOPEN', 'SQLITE_READONLY', 'SQLITE_READONLY_DIRECTORY']);

/**
 * Opens the source a StoreSpec names. The default local store falls back to the nix command when
 * the database exists but this user cannot read it, as Nix itself goes through the daemon then.
 */
export function openSource(spec: StoreSpec, log: (msg: string) => void = () => {}): GraphSource {
  let source: GraphSource;
  switch (spec.kind) {
    case 'local': {
      const dbPath = `${spec.stateDir}/db/db.sqlite`;
      if (!spec.explicit && unreadable(dbPath)) {
        log(`cannot read ${dbPath}: asking the nix command instead`);
        source = new DaemonSource(spec.storeDir);
        break;
      }
      try {
        source = new LocalDbSource(spec, dbPath);
      } catch (err) {
        if (!spec.explicit && err instanceof NixSealError && err.code === 'EDB' && err.reason !== undefined && FALLBACK_REASONS.has(err.reason)) {
          log(`${err.message}: asking the nix command instead`);
          source = new DaemonSource(spec.storeDir);
          break;
        }
        throw err;
      }
      break;
    }
    case 'daemon':
      source = new DaemonSource(spec.storeDir);
      break;
    case 'image':
      source = new (loaded('image', spec).ImageSource)(spec.file, log, spec.storeDir);
      break;
    case 'binary-cache': {
      const { BinaryCacheSource, DEFAULT_HTTP_CONNECTIONS } = loaded('binaryCache', spec);
      source = new BinaryCacheSource(
        { url: spec.url, connections: spec.httpConnections ?? DEFAULT_HTTP_CONNECTIONS, netrcFile: spec.netrcFile },
        spec.storeDir,
        spec.storeDir,
        process.stderr.isTTY === true,
        log,
      );
      break;
    }
    case 'attrs-json':
      source = new FileSource('attrs-json', spec.file, spec.name);
      break;
    default:
      source = new FileSource(spec.kind, spec.file);
  }
  log(`reference graph from ${source.description}`);
  return source;
}
