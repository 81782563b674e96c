import { RecordCollector } from './records.js';
import type { RefGraph } from '../graph/ref-graph.js';
import { itemAt } from '../checked-index.js';

/**
 * Parses registration text: closureInfo's `registration`, `nix-store --dump-db` output
 * (`withHashes`), or the legacy `exportReferencesGraph` file (no hash and size lines). Per path:
 * path, [narHash, narSize,] deriver (may be empty), reference count, references. Nix's
 * --load-db stops at an empty path line; so do we.
 */
export function parseRegistration(text: string, file: string, withHashes: boolean): RefGraph {
  const c: RecordCollector = new RecordCollector(file);
  addRegistration(c, text, withHashes);
  return c.finish();
}

/**
 * Adds the records of one registration text to a collector. `label` prefixes the line numbers
 * when several files go into one collector (several exportReferencesGraph files in a build).
 */
export function addRegistration(c: RecordCollector, text: string, withHashes: boolean, label = ''): void {
  const lines = text.split('\n');
  // A trailing newline leaves one empty last element; it is not a record.
  let i = 0;
  const line = (what: string, start: number): string => {
    const l = lines[i];
    if (l === undefined || (i === lines.length - 1 && l === '')) {
      c.fail(`${label}line ${i + 1}`, `the record that starts on line ${start} ends before its ${what}`, i + 1);
    }
    i++;
    return l;
  };
  while (i < lines.length && lines[i] !== '') {
    const start = i + 1;
    const where = `${label}line ${start}`;
    const p = itemAt(lines, i++);
    let narHash: string | undefined;
    let narSize: number | undefined;
    if (withHashes) {
      narHash = line('narHash', start);
      const sizeText = line('narSize', start);
      if (!/^\d+$/.test(sizeText)) c.fail(`${label}line ${i}`, `narSize '${sizeText}' is not a number`, i);
      narSize = Number(sizeText);
    }
    const deriver = line('deriver', start);
    const countText = line('reference count', start);
    if (!/^\d+$/.test(countText)) c.fail(`${label}line ${i}`, `reference count '${countText}' is not a number`, i);
    const count = Number(countText);
    const references: string[] = [];
    for (let k = 0; k < count; k++) references.push(line(`reference ${k + 1} of ${count}`, start));
    c.add({ path: p, narHash, narSize, deriver, references, where, line: start });
  }
}
