import test from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NixSealError } from '../errors.js';
import { readSealsFile } from '../seal/seal-rules.js';
import { FileSource } from '../sources/file-source.js';
import { findProgram } from './programs.js';
import { readUserFile } from './user-file.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nix-seal-io-'));
test.after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The one-line contract: EIO, the path, "Cannot read FILE: why". */
function cannotRead(file: string, why: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof NixSealError, String(e));
    assert.equal(e.code, 'EIO');
    assert.equal(e.path, file);
    assert.match(e.message, new RegExp(`^Cannot read ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: ${why.source}$`));
    assert.ok(!e.message.includes('\n'));
    return true;
  };
}

test('readUserFile: the text, or EIO with the path and why', () => {
  const f = path.join(dir, 'seals');
  fs.writeFileSync(f, 'a\nb\n');
  assert.equal(readUserFile(f), 'a\nb\n');
  const missing = path.join(dir, 'missing');
  assert.throws(() => readUserFile(missing), cannotRead(missing, /.*(no such file|does not exist).*/i));
  assert.throws(() => readUserFile(dir), cannotRead(dir, /.*director.*/i));
});

test('--seals-from and the file sources read through it: the same error', () => {
  const missing = path.join(dir, 'nope');
  assert.throws(() => readSealsFile(missing), cannotRead(missing, /.*(no such file|does not exist).*/i));
  assert.throws(() => new FileSource('registration', missing), cannotRead(missing, /.*(no such file|does not exist).*/i));
  assert.throws(() => new FileSource('export-graph', `${missing},${path.join(dir, 'seals')}`), cannotRead(missing, /.*(no such file|does not exist).*/i));
});

test('findProgram: NIX_SEAL_<NAME>, then PATH; EIO naming the program when absent', (t) => {
  const saved = { PATH: process.env.PATH, NIX_SEAL_SH: process.env.NIX_SEAL_SH };
  t.after(() => {
    process.env.PATH = saved.PATH;
    if (saved.NIX_SEAL_SH === undefined) delete process.env.NIX_SEAL_SH;
    else process.env.NIX_SEAL_SH = saved.NIX_SEAL_SH;
  });
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, 'nix-seal-test-tool'), '#!/bin/sh\n', { mode: 0o755 });
  fs.writeFileSync(path.join(bin, 'not-executable'), '', { mode: 0o644 });
  process.env.PATH = bin;
  assert.equal(findProgram('nix-seal-test-tool'), path.join(bin, 'nix-seal-test-tool'));
  assert.throws(() => findProgram('not-executable'), (e: unknown) => e instanceof NixSealError && e.code === 'EIO' && e.path === 'not-executable');
  process.env.NIX_SEAL_SH = '/custom/sh';
  assert.equal(findProgram('sh'), '/custom/sh');
});
