import { NixSealError } from '../errors.js';
import { idOf, type RefGraph } from '../graph/ref-graph.js';
import { readUserFile } from '../io/user-file.js';
import type { StorePath } from '../store/store-path.js';
import { parseAttrsJson, parsePathInfoJson } from './json-sources.js';
import { RecordCollector } from './records.js';
import { addRegistration, parseRegistration } from './registration.js';
import type { GraphSource } from './source.js';

export type FileSourceKind = 'registration' | 'export-graph' | 'attrs-json' | 'path-info';

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
      for (const f of files) addRegistration(c, readUserFile(f), false, files.length > 1 ? `${f} ` : '');
      this.graph = c.finish();
      this.description = `export-graph file ${file}`;
      this.storeDir = this.realStoreDir = this.graph.storeDir;
      return;
    }
    const text = readUserFile(file);
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
