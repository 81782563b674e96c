import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import { fuzzCorpus, replayCorpus } from '../support/fuzz-corpus.js';
import { requireTools } from '../support/tools.js';
import { treeArbitraries, writeTree } from '../support/random-tree.js';
import { hostileProperties, nixHashOf, viewNarHash } from '../support/view-tree.js';
import { BufferSource } from '../../src/formats/byte-source.js';
import type { ImageView } from '../../src/formats/image.js';
import { readerFor } from '../../src/formats/image-readers.js';
import { tarReader } from '../../src/formats/tar.js';
import { tempDir } from '../support/temp.js';

const UTF8 = { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' };
const LONG_DIR = 'a-directory-with-a-long-name-'.repeat(4);
const LONG_FILE = `${'f'.repeat(120)}.bin`;

/** A random tree plus what the extensions are for: a >255-byte path, a >100-byte link target, a hard link. */
function makeTree(dir: string, seed: number, level: 'v7' | 'ustar' | 'long'): string {
  const long = level === 'long';
  const [tree] = fc.sample(treeArbitraries(2000).dir, { numRuns: 1, seed });
  const root = join(dir, `tree-${seed}`);
  writeTree(root, tree!);
  mkdirSync(join(root, 'x', 'y'), { recursive: true });
  writeFileSync(join(root, 'x', 'y', 'tool'), 'exec me\n', { mode: 0o755 });
  linkSync(join(root, 'x', 'y', 'tool'), join(root, 'x', 'hard'));
  if (level !== 'v7') {
    const deep = join(root, 'd'.repeat(90));
    mkdirSync(deep);
    writeFileSync(join(deep, 'e'.repeat(90)), 'a ustar prefix/name split\n');
  }
  if (long) {
    mkdirSync(join(root, LONG_DIR));
    writeFileSync(join(root, LONG_DIR, LONG_FILE), Buffer.alloc(1500, 7), { mode: 0o755 });
    symlinkSync(`${LONG_DIR}/${LONG_FILE}`, join(root, 'long-link'));
  }
  return root;
}

/** `tar -tv` of an archive (GNU tar lists every format), as [type, path, size, target]. */
function tarListing(archive: string): string[] {
  const out = execFileSync('tar', ['--quoting-style=literal', '--numeric-owner', '-tvf', archive], { encoding: 'utf8', env: UTF8 });
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m = /^(\S)(\S{9})\s+\S+\s+(\d+)\s+\S+\s+\S+\s(.*)$/.exec(l);
      assert.ok(m, `a tar -tv line: ${l}`);
      const [, kind, perms, size, rest] = m;
      const norm = (p: string): string => p.replace(/^\.\/?/, '').replace(/\/$/, '');
      if (kind === 'l') {
        const i = rest!.indexOf(' -> ');
        return `symlink ${norm(rest!.slice(0, i))} -> ${rest!.slice(i + 4)}`;
      }
      if (kind === 'h') {
        const i = rest!.indexOf(' link to ');
        return `hardlink ${norm(rest!.slice(0, i))} = ${norm(rest!.slice(i + 9))}`;
      }
      if (kind === 'd') return `dir ${norm(rest!)}`;
      return `file ${norm(rest!)} ${size} ${perms![2] === 'x' ? 'x' : '-'}`;
    })
    .filter((s) => s !== 'dir ');
}

/** The same listing from the view: hard links are the entries sharing an earlier entry's window. */
function viewListing(view: ImageView): string[] {
  const firstAt = new Map<number, string>();
  const out: string[] = [];
  for (const e of view.entries()) {
    if (e.path === '') continue;
    if (e.type === 'dir') out.push(`dir ${e.path}`);
    else if (e.type === 'symlink') out.push(`symlink ${e.path} -> ${e.target}`);
    else if (e.type === 'file') {
      const key = e.window!.length > 0 ? firstAt.get(e.window!.offset) : undefined;
      if (key !== undefined) out.push(`hardlink ${e.path} = ${key}`);
      else {
        if (e.window!.length > 0) firstAt.set(e.window!.offset, e.path);
        out.push(`file ${e.path} ${e.size} ${e.executable ? 'x' : '-'}`);
      }
    }
  }
  return out;
}

function check(t: TestContext, archive: string, root: string, flavour: RegExp): ImageView {
  const src = new BufferSource(readFileSync(archive));
  assert.equal(readerFor(src), tarReader);
  const view = tarReader.open(src, archive);
  assert.match(view.description, flavour);
  assert.deepEqual(viewListing(view).sort(), tarListing(archive).sort());
  assert.equal(viewNarHash(view), nixHashOf(root));
  t.diagnostic(`${archive.replace(/.*\//, '')}: ${view.description}, ${[...view.entries()].length} entries`);
  return view;
}

test('GNU tar (gnu, pax, ustar formats) and bsdtar: entries as tar -tv lists them, the tree hashes as nix-hash', (t) => {
  if (!requireTools(t, 'tar', 'bsdtar', 'nix-hash')) return;
  const dir = tempDir(t);
  // Seeds whose random trees have 15–37 entries.
  for (const [seed, seedShort, seedV7] of [
    [3, 9, 26],
    [7, 10, 27],
  ] as const) {
    const root = makeTree(dir, seed, 'long');
    const short = makeTree(dir, seedShort, 'ustar');
    const v7 = makeTree(dir, seedV7, 'v7');
    const tar = (fmt: string, r: string): string => {
      const out = join(dir, `${seed}-${fmt}.tar`);
      execFileSync('tar', [`--format=${fmt}`, '-C', r, '-cf', out, '.'], { env: UTF8 });
      return out;
    };
    check(t, tar('gnu', root), root, /GNU/);
    check(t, tar('pax', root), root, /pax/);
    check(t, tar('ustar', short), short, /ustar/);
    check(t, tar('v7', v7), v7, /v7/);
    const b = join(dir, `${seed}-bsd.tar`);
    execFileSync('bsdtar', ['-C', root, '-cf', b, '.'], { env: UTF8 });
    check(t, b, root, /ustar|pax/);
    const bp = join(dir, `${seed}-bsd-pax.tar`);
    execFileSync('bsdtar', ['--format', 'pax', '-C', root, '-cf', bp, '.'], { env: UTF8 });
    check(t, bp, root, /pax/);
  }
});

test('locate: headers, extension headers and data with the offset in the file', (t) => {
  if (!requireTools(t, 'tar')) return;
  const dir = tempDir(t);
  const root = makeTree(dir, 3, 'long');
  const a = join(dir, 'a.tar');
  execFileSync('tar', ['--format=gnu', '-C', root, '-cf', a, '.'], { env: UTF8 });
  const view = tarReader.open(new BufferSource(readFileSync(a)), a);
  const long = [...view.entries()].find((e) => e.path === `${LONG_DIR}/${LONG_FILE}`)!;
  const w = long.window!;
  assert.deepEqual(view.locate(w.offset + 1000), { path: long.path, offsetInFile: 1000, what: `data of ${long.path}` });
  assert.deepEqual(view.locate(w.offset - 100), { path: long.path, what: `tar header of ${long.path}` });
  assert.deepEqual(view.locate(long.recordOffset! - 512 * 2 + 3), { path: long.path, what: `GNU long name of ${long.path}` });
  assert.equal(view.locate(w.offset + w.length + 5).what, 'padding');
  assert.equal(view.locate(view.source.size - 1).what, 'end-of-archive blocks');
  assert.deepEqual(view.locate(0), { path: '', what: 'tar header of .' });
});

test('sparse members are refused with a clear EFORMAT (GNU and pax sparse)', (t) => {
  if (!requireTools(t, 'tar')) return;
  const dir = tempDir(t);
  const root = join(dir, 'r');
  mkdirSync(root);
  execFileSync('truncate', ['-s', '1M', join(root, 'sparse')]);
  writeFileSync(join(root, 'plain'), 'x');
  for (const fmt of ['gnu', 'pax']) {
    const a = join(dir, `${fmt}.tar`);
    execFileSync('tar', ['-S', `--format=${fmt}`, '-C', root, '-cf', a, 'plain', 'sparse']);
    assert.throws(
      () => tarReader.open(new BufferSource(readFileSync(a)), a),
      (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && /GNU sparse member .* at offset \d+$/.test(e.message),
      fmt,
    );
  }
});

/** A one-member ustar archive built by hand, for near misses (checksum fixed up). */
function ustar(name: string, type: string, size: number, opts: { link?: string; data?: number; body?: string } = {}): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 'utf8');
  h.write('0000644\0', 100, 'latin1');
  h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  h.write(type, 156, 'latin1');
  if (opts.link) h.write(opts.link, 157, 'utf8');
  h.write('ustar\x0000', 257, 'latin1');
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of h) sum += c;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  const body = Buffer.alloc(Math.ceil((opts.data ?? size) / 512) * 512);
  if (opts.body !== undefined) body.write(opts.body, 'latin1');
  return Buffer.concat([h, body, Buffer.alloc(1024)]);
}

test('near misses: a bad checksum is no tar; corrupt members are EFORMAT with the offset', () => {
  const ok = ustar('a', '0', 3);
  assert.equal(tarReader.detect(new BufferSource(ok)), true);
  const bad = Buffer.from(ok);
  bad[0] = 0x62;
  assert.equal(tarReader.detect(new BufferSource(bad)), false, 'checksum mismatch');
  assert.equal(tarReader.detect(new BufferSource(Buffer.alloc(1024))), false, 'zeros');
  const err = (b: Buffer, re: RegExp, offset: number): void =>
    assert.throws(
      () => tarReader.open(new BufferSource(b), 't.tar'),
      (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && re.test(e.message) && e.details.offset === offset && e.message.startsWith('Cannot read t.tar: '),
    );
  err(ustar('../evil', '0', 1), /climbs out of the archive/, 0);
  err(ustar('a', '1', 0, { link: 'nothing' }), /hard link to "nothing", which is not an earlier file/, 157);
  err(ustar('big', '0', 5000, { data: 0 }).subarray(0, 1024), /the data of big \(5000 bytes\) runs past the end/, 124);
  err(ustar('a', 'x', 20, { body: 'path=a\n' }), /pax record has no length/, 512);
  err(ustar('a', 'x', 20, { body: '99 path=a\n' }), /a pax record of 99 bytes runs past its header/, 512);
  err(ustar('a', 'x', 20, { body: '10 path=a\n' }), /the archive ends after an extended header, before its member/, 1024);
  const twice = Buffer.concat([ustar('a', '5', 0).subarray(0, 512), ustar('a/b', '0', 0).subarray(0, 512), ustar('a', '0', 0)]);
  err(twice, /a is both a directory and a file/, 1024);
});

test('hostile input: random bytes, mutated archives and every truncation fail only with NixSealError', (t) => {
  if (!requireTools(t, 'tar')) return;
  const dir = tempDir(t);
  const root = makeTree(dir, 5, 'long');
  for (const fmt of ['gnu', 'pax']) {
    const a = join(dir, `${fmt}.tar`);
    execFileSync('tar', [`--format=${fmt}`, '-C', root, '-cf', a, '.'], { env: UTF8 });
    hostileProperties(tarReader, readFileSync(a), 150, 400);
  }
});

test('fuzz: seeded mutations of the kept tar seeds end in entries or a NixSealError, never a hang', () => {
  const kinds = fuzzCorpus(tarReader, 'tar');
  // The mutations reach the parsers: several kinds of error, not one refusal at the header.
  assert.ok(kinds.size >= 3, [...kinds.keys()].join('\n'));
});

test('tar fuzz corpus replays: each kept image ends as recorded (offsets are regression pins, not an oracle)', () => {
  replayCorpus(tarReader, 'tar');
});
