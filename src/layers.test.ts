/**
 * The tree reads top-down: no module under src/ imports one from a higher layer (static, dynamic
 * and type-only imports alike). The layers are data, so a new folder must be given its place here.
 * Tests are left out: a test may build its input with any module, and use test/support.
 */
import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

/** Top first; a module may import from its own layer and the ones below it. */
export const LAYERS: readonly (readonly string[])[] = [
  ['index.ts', 'cli'],
  ['commands', 'emit'],
  ['analysis.ts'],
  ['seal'],
  ['sources', 'scan'],
  ['formats', 'graph'],
  ['store', 'io', 'errors.ts', 'checked-index.ts'],
];

/** The layer of a path relative to src/ (its first component), or undefined for a folder not in LAYERS. */
export function layerOf(rel: string): number | undefined {
  const top = rel.split('/')[0]!;
  const i = LAYERS.findIndex((l) => l.includes(top));
  return i < 0 ? undefined : i;
}

/** Each import of `text` (a file at `rel` under src/) that points up, as "from → to". */
export function upwardImports(rel: string, text: string): string[] {
  const from = layerOf(rel);
  if (from === undefined) return [`${rel}: its folder has no place in LAYERS`];
  const out: string[] = [];
  for (const { fileName } of ts.preProcessFile(text, true, true).importedFiles) {
    if (!fileName.startsWith('.')) continue; // packages and node: builtins
    const target = path.posix.normalize(path.posix.join(path.posix.dirname(rel), fileName)).replace(/\.js$/, '.ts');
    if (target.startsWith('..')) {
      out.push(`${rel} → ${fileName} (outside src/)`);
      continue;
    }
    const to = layerOf(target);
    if (to === undefined) out.push(`${rel} → ${target}: its folder has no place in LAYERS`);
    else if (to < from) out.push(`${rel} → ${target}`);
  }
  return out;
}

function sourceFiles(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) return sourceFiles(dir, r);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') && !e.name.endsWith('.test.ts') ? [r] : [];
  });
}

/** src/ of the checkout: this file runs as dist/src/layers.test.js. */
const SRC = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../src');

test('no module under src/ imports from a layer above its own', () => {
  const files = sourceFiles(SRC);
  assert.ok(files.length > 80, `found only ${files.length} files under ${SRC}`);
  const bad = files.flatMap((f) => upwardImports(f, fs.readFileSync(path.join(SRC, f), 'utf8')));
  assert.deepEqual(bad, [], `upward imports (layers, top first: ${LAYERS.map((l) => l.join(' ')).join(' → ')}):\n${bad.join('\n')}`);
});

test('the check sees static, type-only, re-exported and dynamic imports, and unplaced folders', () => {
  assert.deepEqual(upwardImports('store/x.ts', "import { a } from '../graph/closure.js';"), ['store/x.ts → graph/closure.ts']);
  assert.deepEqual(upwardImports('seal/x.ts', "import type { Analysis } from '../analysis.js';"), ['seal/x.ts → analysis.ts']);
  assert.deepEqual(upwardImports('graph/x.ts', "export { a } from '../sources/source.js';"), ['graph/x.ts → sources/source.ts']);
  assert.deepEqual(upwardImports('emit/x.ts', "const m = await import('../cli/render.js');"), ['emit/x.ts → cli/render.ts']);
  assert.deepEqual(upwardImports('sources/x.ts', "let t: import('../seal/audit.js').Verdict;"), ['sources/x.ts → seal/audit.ts']);
  // Down, sideways within a layer, and packages are fine.
  assert.deepEqual(upwardImports('cli/x.ts', "import { a } from '../store/hash.js'; import b from 'commander'; import * as fs from 'node:fs';"), []);
  assert.deepEqual(upwardImports('scan/x.ts', "import { a } from '../sources/source.js';"), []);
  assert.deepEqual(upwardImports('commands/x.ts', "import { a } from '../emit/sbom.js';"), []);
  assert.deepEqual(upwardImports('newdir/x.ts', ''), ['newdir/x.ts: its folder has no place in LAYERS']);
  assert.deepEqual(upwardImports('cli/x.ts', "import { a } from '../newdir/y.js';"), ['cli/x.ts → newdir/y.ts: its folder has no place in LAYERS']);
});
