import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';

// The library's synchronous openSource/analyze open an image store with nothing awaited first: the
// index registers the sources the CLI imports lazily. A fresh process, so nothing else loaded them.
test('library index: synchronous openSource opens an image store without loadSourceModules', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nix-seal-lib-sources-'));
  const file = join(dir, 'not-an-image');
  writeFileSync(file, 'plain text\n'.repeat(100));
  const index = pathToFileURL(join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'src', 'index.js')).href;
  const script = `
    const { openSource, NixSealError } = await import(${JSON.stringify(index)});
    try { openSource({ kind: 'image', file: ${JSON.stringify(file)}, storeDir: '/nix/store' }); console.log('opened'); }
    catch (e) { console.log(e instanceof NixSealError ? e.code : 'other ' + e); }`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), 'EFORMAT');
});
