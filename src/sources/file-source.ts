import * as fs from 'node:fs';
import { describeSystemError, NixSealError } from '../errors.js';
import { idOf, type RefGraph } from '../graph/ref-graph.js';
import type { StorePath } from '../store/store-path.js';
import { parseAttrsJson, parsePathInfoJson } from './json-sources.js';
import { RecordCollector } from './records.js';
import { addRegistration, parseRegistration } from './registration.js';
import type { GraphSource } from './source.js';

export type FileSourceKind = 'registration' | 'export-graph' | 'attrs-json' | 'path-info';

export function readSourceFile(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new NixSealError('EIO', `Cannot read ${file}: ${describeSystemError(err)}`, { path: file, cause: err });
  }
}

/** A graph read whole from a file (registration, export graph, .attrs.json, path-info JSON). */
export class FileSource implements GraphSource {
  readonly description: string;
  readonly storeDir: string;
  readonly realStoreDir: string;
  readonly graph: RefGraph;

  constructor(kind: FileSourceKind, file: string, name?: string) {
    if (kind === 'export-graph') {
      // A build gets one file per exportReferencesGraph entry: `export-graph:a,b,c` reads them all.
      const files = file.split(',');
      const c = new RecordCollector(files.length > 1 ? 'exportReferencesGraph files' : file, true);
      for (const f of files) addRegistration(c, readSourceFile(f), false, files.length > 1 ? `${f} ` : '');
      this.graph = c.finish();
      this.description = `export-graph file ${file}`;
      this.storeDir = this.realStoreDir = this.graph.storeDir;
      return;
    }
    const text = readSourceFile(file);
    switch (kind) {
      case 'registration':
        this.graph = parseRegistration(text, file, true);
        break;
      case 'attrs-json':
        this.graph = parseAttrsJson(text, file, name);
        break;
      case 'path-info':
        this.graph = parsePathInfoJson(text, file);
        break;
    }
    this.description = `${kind} file ${file}`;
    this.storeDir = this.graph.storeDir;
    this.realStoreDir = this.graph.storeDir;
  }

  loadClosure(roots: readonly StorePath[]): RefGraph {
    for (const r of roots) {
      if (idOf(this.graph, r) === undefined) {
        throw new NixSealError('EINVALIDPATH', `Cannot use ${r}: path is not listed in ${this.description}`, { path: r });
      }
    }
    return this.graph;
  }
}
