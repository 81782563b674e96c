import assert from 'node:assert/strict';
import { test } from 'node:test';
import { readRegistration, resolveInside, type InnerEntry } from './image-view.js';

const H = (c: string): string => c.repeat(32); // a valid nix32 hash part ('e', 'o', 'u', 't' are not nix32)
const FOO = `${H('a')}-foo-1.0`;
const BAR = `${H('b')}-bar-2.0`;
const BAZ = `${H('c')}-baz`;

test('resolveInside: symlinks resolved inside the image; out of it, dangling or looping is undefined', () => {
  const entries: InnerEntry[] = [
    { path: '', type: 'dir', size: 0 },
    { path: 'nix', type: 'dir', size: 0 },
    { path: 'nix/store', type: 'dir', size: 0 },
    { path: `nix/store/${FOO}`, type: 'dir', size: 0 },
    { path: `nix/store/${FOO}/bin`, type: 'dir', size: 0 },
    { path: `nix/store/${BAR}`, type: 'symlink', size: 0, target: FOO },
    { path: `nix/store/${BAZ}`, type: 'symlink', size: 0, target: `/nix/store/${FOO}/bin` },
    { path: 'nix/store/out', type: 'symlink', size: 0, target: `/host/nix/store/${FOO}` },
    { path: 'nix/store/up', type: 'symlink', size: 0, target: '../../../etc' },
    { path: 'nix/store/loop', type: 'symlink', size: 0, target: 'loop' },
  ];
  const index = { byPath: new Map(entries.map((e) => [e.path, e])), children: new Map<string, string[]>() };
  assert.equal(resolveInside(index, `nix/store/${BAR}`, '/nix/store', false)?.path, `nix/store/${FOO}`);
  assert.equal(resolveInside(index, `nix/store/${BAZ}`, '/nix/store', false)?.path, `nix/store/${FOO}/bin`);
  assert.equal(resolveInside(index, 'nix/store/out', '/nix/store', false), undefined);
  assert.equal(resolveInside(index, 'nix/store/up', '/nix/store', false), undefined);
  assert.equal(resolveInside(index, 'nix/store/loop', '/nix/store', false), undefined);
  // A store image (mounted on the store dir): absolute targets under the store dir resolve at its root.
  const store = { byPath: new Map<string, InnerEntry>([[FOO, { path: FOO, type: 'dir', size: 0 }], [BAR, { path: BAR, type: 'symlink', size: 0, target: `/nix/store/${FOO}` }], [BAZ, { path: BAZ, type: 'symlink', size: 0, target: '/etc/x' }]]), children: new Map<string, string[]>() };
  assert.equal(resolveInside(store, BAR, '/nix/store', true)?.path, FOO);
  assert.equal(resolveInside(store, BAZ, '/nix/store', true), undefined);
});

test('readRegistration: records with hashes, without, and bare path lists; other store dirs and garbage ignored', () => {
  const text = [
    `/nix/store/${FOO}`, 'sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s', '1234', '', '1', `/nix/store/${BAR}`,
    `/nix/store/${BAR}`, '', '0',
    'garbage line',
    `/gnu/store/${BAZ}`,
    `/nix/store/${BAZ}`,
    '',
  ].join('\n');
  const r = readRegistration(text, '/nix/store');
  assert.deepEqual([...r.keys()], [`/nix/store/${FOO}`, `/nix/store/${BAR}`, `/nix/store/${BAZ}`]);
  assert.deepEqual(r.get(`/nix/store/${FOO}`), { path: `/nix/store/${FOO}`, narHash: 'sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s', narSize: 1234, line: 1 });
  // BAR's reference line in FOO's record is skipped as part of the record: BAR is listed by its own record (line 7).
  assert.equal(r.get(`/nix/store/${BAR}`)!.line, 7);
  assert.equal(r.get(`/nix/store/${BAZ}`)!.line, 12);
});
