import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NixSealError } from '../errors.js';
import { parseStoreSpec } from '../store/store-url.js';
import { loadSourceModules, openSource } from './open-source.js';

// A file that is no image: opening it as one fails in ImageSource itself (EFORMAT), which shows
// that its module was there; without the module openSource says so (EINTERNAL).
const dir = mkdtempSync(join(tmpdir(), 'nix-seal-open-source-'));
const notAnImage = join(dir, 'not-an-image');
writeFileSync(notAnImage, 'plain text, no image format\n'.repeat(100));
const imageSpec = parseStoreSpec(`image:${notAnImage}`, {});

const codeOf = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof NixSealError, String(err));
    return err.code;
  }
  assert.fail('no error');
};

// The tests run in order and share this module's state: first without the image module.
test('openSource: the image and binary-cache sources are not imported until a store names them', () => {
  assert.equal(codeOf(() => openSource(imageSpec)), 'EINTERNAL');
  const cache = parseStoreSpec(`file://${dir}`, {});
  assert.equal(cache.kind, 'binary-cache');
  assert.equal(codeOf(() => openSource(cache)), 'EINTERNAL');
});

test('openSource: after loadSourceModules the image source opens (and rejects a non-image)', async () => {
  await loadSourceModules(imageSpec);
  assert.equal(codeOf(() => openSource(imageSpec)), 'EFORMAT');
});
