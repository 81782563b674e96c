import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import type { Analysis } from '../analysis.js';
import { renderClosureInfo } from '../cli/render.js';
import { closureInfoCommand } from '../commands/closure-info.js';
import { NixSealError } from '../errors.js';
import { narHashAndSize } from '../formats/nar.js';
import { sealedClosure } from '../graph/closure.js';
import { buildRefGraph, idOf, type RefGraph } from '../graph/ref-graph.js';
import { withHashesFromDisk } from '../sources/hashes-from-disk.js';
import { encodeNix32 } from '../store/nix32.js';
import type { StorePath } from '../store/store-path.js';
import { checkOutputDir, checkOutputFile, ensureOutputDir, writeFileAtomic, writeFilesAtomic } from './atomic-write.js';
import { closureInfoTexts, formatRegistration, registrationText } from './closure-info.js';
import { fileTempDir } from '../../test/support/temp.js';

const tmpRoot = fileTempDir('nix-seal-emit-');
let tmpCount = 0;
const freshDir = (): string => {
  const d = path.join(tmpRoot, `t${++tmpCount}`);
  fs.mkdirSync(d);
  return d;
};

/*
 * The hand-made graph (store dir /s):
 *
 *   launcher → qemu → glibc
 *   launcher → iso (seal) → sys → bash → glibc, bash (self)
 *                 iso → glibc, iso → bash
 *
 * Sealing the ISO keeps launcher, qemu, iso, glibc; erases sys and bash.
 */
const H = (name: string): string => name.padEnd(32, '0').replace(/[eotu]/g, 'a');
const P = {
  glibc: `/s/${H('0glibc')}-glibc-2.37` as StorePath,
  bash: `/s/${H('1bash')}-bash-5.2` as StorePath,
  sys: `/s/${H('2sys')}-nixos-system-test` as StorePath,
  iso: `/s/${H('3iso')}-nixos-test.iso` as StorePath,
  qemu: `/s/${H('4qemu')}-qemu-8.0` as StorePath,
  launcher: `/s/${H('5launcher')}-start-vm` as StorePath,
};
const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
const nix32Of = (s: string): string => `sha256:${encodeNix32(digest(s))}`;

// A pair checked against real Nix: `nix-store --dump-db` printed the hex, `nix-hash --base32` the nix32.
const REAL_HEX = '93eb9fe3169d161f1b48b926edaa5e75f422b9f5680f7e70d62ac61c61164a5d';
const REAL_NIX32 = 'sha256:0paa2rhiriiasrq7w3v8ynwj5x3mbsmfs9mr90diy5lx2virzswk';

function handMadeGraph(withHashes = true): RefGraph {
  const rec: [StorePath, string | undefined, number, StorePath[]][] = [
    // Every encoding a source may hand over: bare hex (dump-db), sha256:hex (SQLite), nix32, SRI.
    [P.glibc, REAL_HEX, 504, []],
    [P.bash, `sha256:${digest('bash').toString('hex')}`, 640, [P.glibc, P.bash]],
    [P.sys, nix32Of('sys'), 1432, [P.bash, P.glibc]],
    [P.iso, `sha256-${digest('iso').toString('base64')}`, 422000, [P.sys, P.glibc, P.bash]],
    [P.qemu, nix32Of('qemu'), 776, [P.glibc]],
    [P.launcher, nix32Of('launcher'), 336, [P.iso, P.qemu]],
  ];
  const paths = rec.map((r) => r[0]);
  const from: number[] = [];
  const to: number[] = [];
  rec.forEach((r, i) => r[3].forEach((ref) => (from.push(i), to.push(paths.indexOf(ref)))));
  return buildRefGraph({
    storeDir: '/s',
    paths,
    narSize: rec.map((r) => (withHashes ? r[2] : NaN)),
    narHash: rec.map((r) => (withHashes ? r[1] : undefined)),
    deriver: rec.map(() => '/s/00000000000000000000000000000000-x.drv'),
    edgeFrom: from,
    edgeTo: to,
    edgeCount: from.length,
  });
}

function stubAnalysis(g: RefGraph, roots: string[], seals: string[], realStoreDir = g.storeDir): Analysis {
  const rootIds = roots.map((r) => idOf(g, r)!);
  const sealMask = new Uint8Array(g.paths.length);
  for (const s of seals) sealMask[idOf(g, s)!] = 1;
  return {
    source: { description: 'test graph', storeDir: g.storeDir, realStoreDir, loadClosure: () => g },
    graph: g,
    roots: rootIds,
    seals: sealMask,
    closure: sealedClosure(g, rootIds, sealMask),
    warnings: [],
    detected: [],
  };
}

test('registration: closureInfo format, sha256:nix32 hashes, empty deriver, -qR order, erased references dropped', () => {
  const g = handMadeGraph();
  const a = stubAnalysis(g, [P.launcher], [P.iso]);
  const t = closureInfoTexts(g, a.closure);
  assert.equal(
    t.registration,
    [
      P.glibc, REAL_NIX32, '504', '', '0',
      P.iso, `sha256:${encodeNix32(digest('iso'))}`, '422000', '', '1', P.glibc,
      P.qemu, nix32Of('qemu'), '776', '', '1', P.glibc,
      P.launcher, nix32Of('launcher'), '336', '', '2', P.iso, P.qemu,
      '',
    ].join('\n'),
  );
  assert.equal(t.storePaths, [P.glibc, P.iso, P.qemu, P.launcher, ''].join('\n'));
  assert.equal(t.totalNarSize, 504 + 422000 + 776 + 336);
  assert.deepEqual(t.seals, { seals: [{ path: P.iso, erased: [P.bash, P.sys], erasedNarSize: 640 + 1432 }] });
});

test('registration without seals: every reference, self references included, hex hashes re-encoded', () => {
  const g = handMadeGraph();
  const a = stubAnalysis(g, [P.launcher], []);
  const t = closureInfoTexts(g, a.closure);
  const bashRecord = [P.bash, `sha256:${encodeNix32(digest('bash'))}`, '640', '', '2', P.glibc, P.bash, ''].join('\n');
  assert.ok(t.registration.startsWith(`${P.glibc}\n${REAL_NIX32}\n504\n\n0\n${bashRecord}`), t.registration);
  assert.ok(t.registration.includes(`\n${P.iso}\nsha256:${encodeNix32(digest('iso'))}\n422000\n\n3\n${P.glibc}\n${P.bash}\n${P.sys}\n`));
  assert.deepEqual(t.seals, { seals: [] });
  // The -qR order: every path after its references.
  assert.deepEqual(t.storePaths.trim().split('\n'), [P.glibc, P.bash, P.sys, P.iso, P.qemu, P.launcher]);
});

test('registration refuses unknown hashes or sizes rather than writing a record --load-db rejects', () => {
  const g = handMadeGraph(false);
  const a = stubAnalysis(g, [P.qemu], []);
  assert.throws(() => formatRegistration(g, [idOf(g, P.glibc)!], a.closure.kept), /Cannot write the registration of .*glibc-2.37: its narHash is unknown/);
});

test('atomic write: replaces the target, leaves no temporary file', async () => {
  const d = freshDir();
  const f = path.join(d, 'registration');
  fs.writeFileSync(f, 'old');
  await writeFileAtomic(f, 'new\n');
  assert.equal(fs.readFileSync(f, 'utf8'), 'new\n');
  assert.deepEqual(fs.readdirSync(d), ['registration']);
  await writeFilesAtomic([
    { path: path.join(d, 'a'), data: 'A' },
    { path: path.join(d, 'b'), data: new Uint8Array([66]) },
  ]);
  assert.deepEqual(fs.readdirSync(d).sort(), ['a', 'b', 'registration']);
  assert.equal(fs.readFileSync(path.join(d, 'b'), 'utf8'), 'B');
});

test('atomic write: a failure part-way leaves every target as it was and no temporary file', async () => {
  const d = freshDir();
  fs.writeFileSync(path.join(d, 'a'), 'old a');
  // The first file's temporary is written, then the second cannot be created.
  await assert.rejects(
    writeFilesAtomic([
      { path: path.join(d, 'a'), data: 'new a' },
      { path: path.join(d, 'c'), data: 'new c' },
      { path: path.join(d, 'missing', 'b'), data: 'new b' },
    ]),
    (err: unknown) => err instanceof NixSealError && err.code === 'EIO' && /^Cannot write .*\/missing\/b: directory .*\/missing does not exist$/.test(err.message),
  );
  assert.deepEqual(fs.readdirSync(d), ['a']);
  assert.equal(fs.readFileSync(path.join(d, 'a'), 'utf8'), 'old a');
  // A target that is a directory is refused before anything is written.
  fs.mkdirSync(path.join(d, 'sub'));
  await assert.rejects(
    writeFilesAtomic([
      { path: path.join(d, 'x'), data: 'x' },
      { path: path.join(d, 'sub'), data: 'y' },
    ]),
    /Cannot write .*\/sub: it is a directory/,
  );
  assert.deepEqual(fs.readdirSync(d).sort(), ['a', 'sub']);
});

test('output dir: created when missing, not its parent; a file in the way is named', async () => {
  const d = freshDir();
  assert.equal(await ensureOutputDir(path.join(d, 'out')), true);
  assert.equal(await ensureOutputDir(path.join(d, 'out')), false);
  await assert.rejects(ensureOutputDir(path.join(d, 'no', 'out')), new RegExp(`^NixSealError: Cannot write ${d}/no/out: its parent directory ${d}/no does not exist$`));
  assert.ok(!fs.existsSync(path.join(d, 'no')));
  fs.writeFileSync(path.join(d, 'file'), '');
  await assert.rejects(checkOutputDir(path.join(d, 'file')), /Cannot write .*\/file: it is not a directory/);
  await assert.rejects(checkOutputDir(path.join(d, 'file', 'out')), /Cannot write .*\/file\/out: .*\/file is not a directory/);
  await assert.rejects(checkOutputFile(path.join(d, 'no', 'reg')), /Cannot write .*\/no\/reg: directory .*\/no does not exist/);
});

/** A little store on disk for the hand-made graph's paths, so hashes can be computed from it. */
function makeDiskStore(): string {
  const store = freshDir();
  for (const [k, p] of Object.entries(P)) {
    const dir = path.join(store, path.posix.basename(p));
    fs.mkdirSync(path.join(dir, 'bin'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'bin', k), `#!/bin/sh\necho ${k}\n`, { mode: 0o755 });
    fs.symlinkSync(P.glibc, path.join(dir, 'glibc'));
  }
  return store;
}

test('withHashesFromDisk computes narHash and narSize from disk for the kept paths only, as a new graph', async () => {
  const store = makeDiskStore();
  const g0 = handMadeGraph(false);
  const a = stubAnalysis(g0, [P.launcher], [P.iso], store);
  const { graph: g, hashed } = await withHashesFromDisk(a.graph, a.source, a.closure.kept);
  assert.equal(hashed, 4);
  assert.notEqual(g, g0);
  assert.equal(g0.narHash[idOf(g0, P.glibc)!], undefined, 'the input graph is not changed');
  for (const p of [P.glibc, P.iso, P.qemu, P.launcher]) {
    const want = await narHashAndSize(path.join(store, path.posix.basename(p)));
    assert.equal(g.narHash[idOf(g, p)!], want.narHash);
    assert.equal(g.narSize[idOf(g, p)!], want.narSize);
  }
  assert.equal(g.narHash[idOf(g, P.bash)!], undefined);
  const again = await withHashesFromDisk(g, a.source, a.closure.kept);
  assert.equal(again.hashed, 0, 'nothing left to compute');
  assert.equal(again.graph, g);
  // A size the source gave must agree with the disk.
  const g2 = handMadeGraph(false);
  g2.narSize[idOf(g2, P.glibc)!] = 1;
  const a2 = stubAnalysis(g2, [P.glibc], [], store);
  await assert.rejects(withHashesFromDisk(a2.graph, a2.source, new Uint8Array(6).fill(1)), /glibc-2.37: its NAR on disk is \d+ bytes, but test graph says 1/);
});

test('withHashesFromDisk names a path that is not on disk', async () => {
  const store = makeDiskStore();
  fs.rmSync(path.join(store, path.posix.basename(P.qemu)), { recursive: true });
  const g = handMadeGraph(false);
  const a = stubAnalysis(g, [P.launcher], [P.iso], store);
  await assert.rejects(
    withHashesFromDisk(a.graph, a.source, a.closure.kept),
    (err: unknown) =>
      err instanceof NixSealError &&
      err.code === 'EIO' &&
      err.message === `Cannot compute the narHash of ${P.qemu}: ${store}/${path.posix.basename(P.qemu)} is not on disk, and test graph records no narHash for it`,
  );
});

test('closureInfoCommand writes the four files; on failure nothing stays, not even the directory it created', async () => {
  const store = makeDiskStore();
  const d = freshDir();
  const g = handMadeGraph(false);
  const a = stubAnalysis(g, [P.launcher], [P.iso], store);
  const r = await closureInfoCommand(a, { out: path.join(d, 'info') });
  assert.deepEqual(fs.readdirSync(path.join(d, 'info')).sort(), ['registration', 'seals.json', 'store-paths', 'total-nar-size']);
  assert.equal(r.count, 4);
  assert.equal(r.hashedFromDisk, 4);
  assert.equal(fs.readFileSync(path.join(d, 'info', 'registration'), 'utf8'), registrationText((await withHashesFromDisk(a.graph, a.source, a.closure.kept)).graph, a.closure.kept));
  assert.equal(fs.readFileSync(path.join(d, 'info', 'total-nar-size'), 'utf8'), `${r.totalNarSize}\n`);
  const seals = JSON.parse(fs.readFileSync(path.join(d, 'info', 'seals.json'), 'utf8'));
  // Erased paths' sizes come from disk too (lstat only), for erasedNarSize.
  const erasedSize = (await narHashAndSize(path.join(store, path.posix.basename(P.bash)))).narSize + (await narHashAndSize(path.join(store, path.posix.basename(P.sys)))).narSize;
  assert.deepEqual(seals, { seals: [{ path: P.iso, erased: [P.bash, P.sys], erasedNarSize: erasedSize }] });
  assert.match(renderClosureInfo(r), /^wrote .*\/info: 4 paths, .*\n  seal .*nixos-test.iso erased 2 paths, /);

  // --registration-only FILE writes just that file; '-' hands the text back for stdout.
  const only = await closureInfoCommand(a, { registrationOnly: path.join(d, 'reg') });
  assert.deepEqual(only.files, [path.join(d, 'reg')]);
  assert.equal(fs.readFileSync(path.join(d, 'reg'), 'utf8'), fs.readFileSync(path.join(d, 'info', 'registration'), 'utf8'));
  const dash = await closureInfoCommand(a, { registrationOnly: '-' });
  assert.equal(renderClosureInfo(dash), fs.readFileSync(path.join(d, 'reg'), 'utf8'));
  await assert.rejects(closureInfoCommand(a, {}), (e: unknown) => e instanceof NixSealError && e.code === 'EUSAGE');
  await assert.rejects(closureInfoCommand(a, { out: d, registrationOnly: '-' }), (e: unknown) => e instanceof NixSealError && e.code === 'EUSAGE');

  // A kept path missing on disk: an error, and no directory or file left behind.
  fs.rmSync(path.join(store, path.posix.basename(P.qemu)), { recursive: true });
  const a2 = stubAnalysis(handMadeGraph(false), [P.launcher], [P.iso], store);
  await assert.rejects(closureInfoCommand(a2, { out: path.join(d, 'info2') }), /Cannot compute the narHash of .*qemu-8.0: .* is not on disk/);
  await assert.rejects(closureInfoCommand(a2, { registrationOnly: path.join(d, 'reg2') }), /is not on disk/);
  assert.deepEqual(fs.readdirSync(d).sort(), ['info', 'reg']);
  // A bad output location fails before any hashing.
  await assert.rejects(closureInfoCommand(a2, { out: path.join(d, 'no', 'info') }), /Cannot write .*\/no\/info: its parent directory .*\/no does not exist/);
});
