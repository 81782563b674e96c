import * as fs from 'node:fs';
import { errnoCode, NixSealError } from '../errors.js';
import type { StoreSpec } from '../store/store-url.js';
import { BinaryCacheSource, DEFAULT_HTTP_CONNECTIONS } from './binary-cache.js';
import { DaemonSource } from './daemon.js';
import { FileSource } from './file-source.js';
import { ImageSource } from './image-source.js';
import { LocalDbSource } from './local-db.js';
import type { GraphSource } from './source.js';

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
      source = new ImageSource(spec.file, log, spec.storeDir);
      break;
    case 'binary-cache':
      source = new BinaryCacheSource(
        { url: spec.url, connections: spec.httpConnections ?? DEFAULT_HTTP_CONNECTIONS, netrcFile: spec.netrcFile },
        spec.storeDir,
        spec.storeDir,
        process.stderr.isTTY === true,
        log,
      );
      break;
    case 'attrs-json':
      source = new FileSource('attrs-json', spec.file, spec.name);
      break;
    default:
      source = new FileSource(spec.kind, spec.file);
  }
  log(`reference graph from ${source.description}`);
  return source;
}
