import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { resolveToStorePath } from './resolve-path.js';
import { hashPartOf, nameOf, parseStorePath, toStorePath } from './store-path.js';
import { parseStoreSpec } from './store-url.js';

const S = '/nix/store';
const P = `${S}/0123456789abcdfghijklmnpqrsvwxyz-qemu-8.0`;

test('store path parts', () => {
  const p = parseStorePath(P, S);
  assert.equal(hashPartOf(p), '0123456789abcdfghijklmnpqrsvwxyz');
  assert.equal(nameOf(p), 'qemu-8.0');
});

test('malformed store paths are rejected with the reason', () => {
  assert.throws(() => parseStorePath('/usr/bin/qemu', S), /not in the Nix store/);
  assert.throws(() => parseStorePath(`${S}/0123456789abcdfghijklmnpqrsvwxye-x`, S), /hash part is not nix32/);
  assert.throws(() => parseStorePath(`${S}/0123456789abcdfghijklmnpqrsvwxyz`, S), /too short/);
  assert.throws(() => parseStorePath(`${S}/0123456789abcdfghijklmnpqrsvwxyz-a b`, S), /characters Nix does not allow/);
  assert.throws(() => parseStorePath(`${S}/0123456789abcdfghijklmnpqrsvwxyz-.x`, S), /starts with '.'/);
});

test('a path inside a store path names that store path', () => {
  assert.equal(toStorePath(`${P}/bin/qemu-system-x86_64`, S), P);
  assert.equal(toStorePath(`${P}/bin/../lib`, S), P);
  assert.throws(() => toStorePath(`${S}/../etc`, S), /not in the Nix store/);
});

test('symlinks outside the store are followed like ./result', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nix-seal-'));
  try {
    fs.symlinkSync(`${P}/bin`, path.join(dir, 'result'));
    fs.symlinkSync('result', path.join(dir, 'result-2'));
    assert.equal(resolveToStorePath(path.join(dir, 'result-2'), S), P);
    assert.throws(() => resolveToStorePath(path.join(dir, 'missing'), S), /no such file, and not in the Nix store/);
    fs.writeFileSync(path.join(dir, 'plain'), '');
    assert.throws(() => resolveToStorePath(path.join(dir, 'plain'), S), /not in the Nix store/);
    fs.symlinkSync('loop', path.join(dir, 'loop'));
    assert.throws(() => resolveToStorePath(path.join(dir, 'loop'), S), /symbolic links/);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('--store values resolve like Nix', () => {
  const env = { NIX_STORE_DIR: '/s', NIX_STATE_DIR: '/st' };
  assert.deepEqual(parseStoreSpec(undefined, env), { kind: 'local', storeDir: '/s', realStoreDir: '/s', stateDir: '/st', explicit: false });
  assert.deepEqual(parseStoreSpec('local?root=/tmp/r', {}), {
    kind: 'local',
    storeDir: '/nix/store',
    realStoreDir: '/tmp/r/nix/store',
    stateDir: '/tmp/r/nix/var/nix',
    explicit: true,
  });
  assert.deepEqual(parseStoreSpec('local?store=/a/store&state=/a/var', {}), {
    kind: 'local',
    storeDir: '/a/store',
    realStoreDir: '/a/store',
    stateDir: '/a/var',
    explicit: true,
  });
  assert.deepEqual(parseStoreSpec('/tmp/r', {}).kind, 'local');
  assert.deepEqual(parseStoreSpec('attrs-json:x.json#closure', {}), { kind: 'attrs-json', file: path.resolve('x.json'), name: 'closure' });
  assert.deepEqual(parseStoreSpec('registration:reg', {}), { kind: 'registration', file: path.resolve('reg') });
  assert.throws(() => parseStoreSpec('s3://bucket', {}), /unknown store/);
  assert.throws(() => parseStoreSpec('local?bogus=1', {}), /unknown setting 'bogus'/);
  assert.throws(() => parseStoreSpec('local?root=rel', {}), /must be an absolute path/);
});
