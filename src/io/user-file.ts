/**
 * Reading a file the user named (--seals-from, registration:, export-graph:, attrs-json:,
 * path-info:): one place, so every such failure reads "Cannot read FILE: why" with the path.
 */
import * as fs from 'node:fs';
import { describeSystemError, NixSealError } from '../errors.js';

/** The whole file as UTF-8 text; EIO with the path and the system's reason when it cannot be read. */
export function readUserFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new NixSealError('EIO', `Cannot read ${file}: ${describeSystemError(err)}`, { path: file, cause: err });
  }
}
