/**
 * `nix-seal hash` against real Nix: the hash is `nix-hash --type sha256 --base32`, the size is
 * `nix-store --dump | wc -c`, for store paths and for any path on disk.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { renderHash } from '../src/cli/render.js';
import { hashCommand } from '../src/commands/hash.js';
import { NixSealError } from '../src/errors.js';
import { isOneLineError, runCli } from './support/cli.js';
import { makeNixEnv, type NixEnv } from './support/nix-env.js';
import { requireTools } from './support/tools.js';

let nixEnv: NixEnv | undefined;
after(() => nixEnv?.cleanup());

interface Fixture {
  env: NixEnv;
  /** A plain directory (not in the store) with every kind of NAR node. */
  tree: string;
  /** The same tree added to the private store. */
  storePath: string;
  file: string;
  exe: string;
  link: string;
  empty: string;
}
let fixture: Fixture | undefined;

function setup(t: TestContext): Fixture | undefined {
  if (!requireTools(t, 'nix-store', 'nix-hash')) return undefined;
  if (fixture) return fixture;
  const env = (nixEnv = makeNixEnv('nix-seal-hash-'));
  const tree = path.join(env.root, 'tree');
  fs.mkdirSync(path.join(tree, 'sub', 'deeper'), { recursive: true });
  fs.mkdirSync(path.join(tree, 'empty-dir'));
  fs.writeFileSync(path.join(tree, 'file'), 'hello\n');
  fs.writeFileSync(path.join(tree, 'sub', 'exe'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  fs.writeFileSync(path.join(tree, 'sub', 'deeper', 'seven'), '1234567'); // padding
  fs.writeFileSync(path.join(tree, 'sub', 'deeper', 'eight'), '12345678');
  fs.writeFileSync(path.join(tree, 'empty'), '');
  fs.writeFileSync(path.join(tree, 'big'), Buffer.alloc(5 << 20, 7)); // past the 1 MiB batch and 4 MiB read chunk
  fs.symlinkSync('sub/exe', path.join(tree, 'link'));
  fs.symlinkSync('/nowhere/dangling', path.join(tree, 'dangling'));
  fs.writeFileSync(path.join(tree, 'B-upper'), 'sorted before lower case'); // byte-wise order
  const storePath = env.nixStore(['--add', tree]).trim();
  fixture = {
    env,
    tree,
    storePath,
    file: path.join(tree, 'file'),
    exe: path.join(tree, 'sub', 'exe'),
    link: path.join(tree, 'link'),
    empty: path.join(tree, 'empty'),
  };
  return fixture;
}

function nixHash(env: NixEnv, p: string): string {
  return `sha256:${env.run('nix-hash', ['--type', 'sha256', '--base32', p]).trim()}`;
}

function dumpSize(env: NixEnv, p: string): number {
  return execFileSync('nix-store', ['--dump', p], { env: env.env, maxBuffer: 1 << 28 }).length;
}

test('hash: nix-hash --type sha256 --base32 and nix-store --dump | wc -c, for store paths and plain paths', async (t) => {
  const f = setup(t);
  if (!f) return;
  const paths = [f.storePath, f.tree, f.file, f.exe, f.link, f.empty, path.join(f.tree, 'empty-dir'), path.join(f.tree, 'dangling')];
  const results = await hashCommand(paths);
  assert.deepEqual(results.map((r) => r.path), paths);
  for (const r of results) {
    assert.equal(r.narHash, nixHash(f.env, r.path), r.path);
    assert.equal(r.narSize, dumpSize(f.env, r.path), r.path);
  }
  // The store path's hash is the one Nix registered for it.
  assert.equal(results[0]!.narSize, Number(f.env.nixStore(['-q', '--size', f.storePath]).trim()));
  assert.equal(results[0]!.narHash, `sha256:${f.env.nixStore(['-q', '--hash', f.storePath]).trim().replace(/^sha256:/, '')}`);
  assert.equal(results[0]!.narHash, results[1]!.narHash, 'the tree and its copy in the store');
});

test('hash: a symlink is hashed as a symlink, as nix-hash does; PATH/ follows it', async (t) => {
  const f = setup(t);
  if (!f) return;
  const link = path.join(f.env.root, 'result');
  fs.symlinkSync(f.storePath, link);
  const [asLink, followed] = await hashCommand([link, `${link}/`]);
  assert.equal(asLink!.narHash, nixHash(f.env, link));
  assert.equal(followed!.narHash, nixHash(f.env, `${link}/`));
  assert.notEqual(asLink!.narHash, followed!.narHash);
});

test('hash: a missing path is an error naming it', async (t) => {
  const f = setup(t);
  if (!f) return;
  const missing = path.join(f.env.root, 'missing');
  await assert.rejects(hashCommand([f.file, missing]), (e: unknown) => e instanceof NixSealError && e.message === `Cannot hash ${missing}: no such file or directory`);
  assert.equal(renderHash([{ path: '/a b', narHash: 'sha256:x', narSize: 8 }]), 'sha256:x 8 /a b\n');
});

test('CLI: nix-seal hash PATH… prints "sha256:<nix32> <narSize> <path>" lines; --json', (t) => {
  const f = setup(t);
  if (!f) return;
  const r = runCli(['hash', f.storePath, f.tree, 'tree/file'], f.env.env, f.env.root);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.equal(
    r.stdout,
    [f.storePath, f.tree, 'tree/file'].map((p) => `${nixHash(f.env, path.resolve(f.env.root, p))} ${dumpSize(f.env, path.resolve(f.env.root, p))} ${p}\n`).join(''),
  );
  const j = runCli(['hash', '--json', f.exe], f.env.env);
  assert.equal(j.code, 0, j.stderr);
  assert.deepEqual(JSON.parse(j.stdout), [{ path: f.exe, narHash: nixHash(f.env, f.exe), narSize: dumpSize(f.env, f.exe) }]);
  const bad = runCli(['hash', f.file, '/no/such/path'], f.env.env);
  assert.equal(bad.code, 2);
  assert.ok(isOneLineError(bad), bad.stderr);
  assert.equal(bad.stderr, 'nix-seal: Cannot hash /no/such/path: no such file or directory\n');
  assert.equal(bad.stdout, '', 'nothing printed for the paths before the failure');
  const usage = runCli(['hash'], f.env.env);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /missing required argument/);
});
