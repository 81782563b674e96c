import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import { fuzzCorpus, replayCorpus } from '../support/fuzz-corpus.js';
import { requireTools } from '../support/tools.js';
import { treeArbitraries, writeTree } from '../support/random-tree.js';
import { hostileProperties, nixHashOf, viewNarHash } from '../support/view-tree.js';
import { BufferSource } from '../../src/formats/byte-source.js';
import { cpioReader } from '../../src/formats/cpio.js';
import { CpioNewcWriter } from '../../src/formats/cpio-newc.js';
import type { ImageView } from '../../src/formats/image.js';
import { openImageView, readerFor } from '../../src/formats/image-readers.js';
import { tempDir } from '../support/temp.js';

const UTF8 = { ...process.env, LC_ALL: 'C.UTF-8', LANG: 'C.UTF-8' };

/** An archive from nix-seal's own writer. */
async function written(add: (w: CpioNewcWriter) => Promise<void>): Promise<Buffer> {
  const w = new CpioNewcWriter();
  const parts: Uint8Array[] = [];
  const done = (async () => {
    for await (const c of w) parts.push(c);
  })();
  await add(w);
  await w.finish();
  await done;
  return Buffer.concat(parts);
}

function makeTree(dir: string, seed: number): string {
  const [tree] = fc.sample(treeArbitraries(2000).dir, { numRuns: 1, seed });
  const root = join(dir, `tree-${seed}`);
  writeTree(root, tree!);
  mkdirSync(join(root, 'x', 'y'), { recursive: true });
  writeFileSync(join(root, 'x', 'y', 'tool'), 'exec me\n', { mode: 0o755 });
  linkSync(join(root, 'x', 'y', 'tool'), join(root, 'x', 'hard'));
  writeFileSync(join(root, 'x', 'empty'), '');
  return root;
}

/** GNU cpio -o from `root` in format `fmt`. */
function gnuCpio(root: string, out: string, fmt: string): string {
  execFileSync('sh', ['-c', `cd "$1" && find . -print0 | cpio -o -0 --quiet -H "$2" > "$3"`, 'sh', root, fmt, out], { env: UTF8 });
  return out;
}

interface Line {
  key: string;
  path: string;
  multiLinked: boolean;
}

/** `cpio -itv` of an archive: type, path, size (left out for multiply linked files), exec bit, symlink target. */
function cpioListing(archive: string): Line[] {
  const out = execFileSync('sh', ['-c', 'cpio -itv -n --quiet < "$1"', 'sh', archive], { encoding: 'utf8', env: UTF8 });
  return out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m = /^(\S)(\S{9})\s+(\d+)\s+\S+\s+\S+\s+(\d+)\s+\S+\s+\d+\s+\S+\s(.*)$/.exec(l);
      assert.ok(m, `a cpio -tv line: ${l}`);
      const [, kind, perms, nlink, size, rest] = m;
      const path = rest!.replace(/^\.\/?/, '');
      if (kind === 'l') {
        const i = rest!.indexOf(' -> ');
        return { key: `symlink ${rest!.slice(0, i).replace(/^\.\/?/, '')} -> ${rest!.slice(i + 4)}`, path, multiLinked: false };
      }
      if (kind === 'd') return { key: `dir ${path}`, path, multiLinked: false };
      const multi = Number(nlink) > 1;
      return { key: `file ${path} ${multi ? '' : size} ${perms![2] === 'x' ? 'x' : '-'}`, path, multiLinked: multi };
    })
    .filter((s) => s.key !== 'dir ');
}

function viewListing(view: ImageView, multi: Set<string>): string[] {
  const out: string[] = [];
  for (const e of view.entries()) {
    if (e.path === '') continue;
    if (e.type === 'dir') out.push(`dir ${e.path}`);
    else if (e.type === 'symlink') out.push(`symlink ${e.path} -> ${e.target}`);
    else out.push(`file ${e.path} ${multi.has(e.path) ? '' : e.size} ${e.executable ? 'x' : '-'}`);
  }
  return out;
}

function check(t: TestContext, archive: string, root: string, flavour: RegExp): ImageView {
  const src = new BufferSource(readFileSync(archive));
  assert.equal(readerFor(src), cpioReader);
  const view = cpioReader.open(src, archive);
  assert.match(view.description, flavour);
  const listing = cpioListing(archive);
  const multi = new Set(listing.filter((l) => l.multiLinked).map((l) => l.path));
  assert.deepEqual(viewListing(view, multi).sort(), listing.map((l) => l.key).sort());
  assert.equal(viewNarHash(view), nixHashOf(root));
  t.diagnostic(`${archive.replace(/.*\//, '')}: ${view.description}, ${[...view.entries()].length} entries`);
  return view;
}

test('GNU cpio (newc, crc, odc) and bsdtar (newc, odc): entries as cpio -itv lists them, the tree hashes as nix-hash', (t) => {
  if (!requireTools(t, 'cpio', 'bsdtar', 'nix-hash')) return;
  const dir = tempDir(t);
  for (const seed of [3, 7]) {
    const root = makeTree(dir, seed);
    for (const fmt of ['newc', 'crc', 'odc']) check(t, gnuCpio(root, join(dir, `${seed}.${fmt}`), fmt), root, new RegExp(fmt));
    for (const fmt of ['newc', 'odc']) {
      const out = join(dir, `${seed}-bsd.${fmt}`);
      execFileSync('sh', ['-c', 'cd "$1" && bsdtar -cf "$3" --format "$2" .', 'sh', root, fmt, out], { env: UTF8 });
      check(t, out, root, new RegExp(fmt));
    }
  }
});

test("nix-seal's own initrd writer round-trips, and concatenated archives read as the kernel unpacks them", async (t) => {
  const one = await written(async (w) => {
    await w.addDirectory('.', 0o755);
    await w.addFile('init', 0o755, 10, Buffer.from('#!/bin/sh\n'));
    await w.addSymlink('sh', 'busybox');
  });
  const two = await written((w) => w.addFile('init', 0o644, 9, Buffer.from('replaced\n')));
  const both = Buffer.concat([one, two]);
  const view = cpioReader.open(new BufferSource(both), 'initrd');
  assert.deepEqual(
    [...view.entries()].map((e) => [e.path, e.type, e.size, e.executable ?? null, e.target ?? null]),
    [
      ['', 'dir', 0, null, null],
      ['sh', 'symlink', 0, null, 'busybox'],
      ['init', 'file', 9, false, null],
    ],
  );
  // A compressed part after the trailer (as microcode + a zstd initrd) is an entry, not ignored.
  const tail = Buffer.concat([one, Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3, 4])]);
  const v2 = cpioReader.open(new BufferSource(tail), 'initrd');
  const extra = [...v2.entries()].find((e) => e.path.startsWith('(data after'))!;
  assert.deepEqual(extra, { path: `(data after the cpio archive at offset ${one.length})`, type: 'file', size: 8, executable: false, window: { offset: one.length, length: 8 } });
  assert.deepEqual(v2.locate(one.length + 2), { path: extra.path, offsetInFile: 2, what: `data of ${extra.path}` });
  t.diagnostic(v2.locate(0).what);
  assert.equal(v2.locate(0).what, 'cpio header of .');
  assert.equal(v2.locate(one.length - 1).what, 'padding after a cpio trailer');
});

test('near misses: corrupt cpio members are EFORMAT with the offset; a bad crc fails when read', (t) => {
  if (!requireTools(t, 'cpio')) return;
  const dir = tempDir(t);
  const root = join(dir, 'r');
  mkdirSync(root);
  writeFileSync(join(root, 'f'), 'hello');
  const crc = readFileSync(gnuCpio(root, join(dir, 'a.crc'), 'crc'));
  const err = (b: Uint8Array, re: RegExp, offset: number, read = false): void =>
    assert.throws(
      () => {
        const v = cpioReader.open(new BufferSource(b), 'a.cpio');
        if (read) for (const e of v.entries()) if (e.type === 'file') for (const _ of v.read(e));
      },
      (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && re.test(e.message) && e.details.offset === offset && e.message.startsWith('Cannot read a.cpio: '),
    );
  const second = crc.indexOf('070702', 6);
  const dataAt = second + 112; // 110-byte header + "f\0", already 4-aligned
  const bad = Buffer.from(crc);
  bad[dataAt] = 0x48; // 'H'
  err(bad, /the checksum of f's data does not match its header/, dataAt, true);
  const hex = Buffer.from(crc);
  hex[second + 20] = 0x47; // 'G' in the mode field
  err(hex, /a malformed header field at byte 14/, second);
  err(crc.subarray(0, dataAt + 2), /runs past the end of the archive/, second);
  const noTrailer = crc.subarray(0, crc.indexOf('070702', second + 6));
  err(noTrailer, /no TRAILER!!! entry before the end/, noTrailer.length);
  assert.equal(cpioReader.detect(new BufferSource(Buffer.from('070701' + 'z'.repeat(200)))), false);
});

test('hostile input: random bytes, mutated archives and every truncation fail only with NixSealError', (t) => {
  if (!requireTools(t, 'cpio')) return;
  const dir = tempDir(t);
  const root = makeTree(dir, 4);
  for (const fmt of ['newc', 'odc']) hostileProperties(cpioReader, readFileSync(gnuCpio(root, join(dir, `h.${fmt}`), fmt)), 150, 400);
});

test('an initrd of an uncompressed cpio followed by a zstd-compressed one (microcode first): the second part nests', (t) => {
  if (!requireTools(t, 'cpio', 'zstd', 'nix-hash')) return;
  const dir = tempDir(t);
  const early = join(dir, 'early');
  mkdirSync(join(early, 'kernel', 'x86', 'microcode'), { recursive: true });
  writeFileSync(join(early, 'kernel', 'x86', 'microcode', 'GenuineIntel.bin'), 'ucode');
  const main = makeTree(dir, 9);
  const first = readFileSync(gnuCpio(early, join(dir, 'early.cpio'), 'newc'));
  const second = execFileSync('zstd', ['-q', '-c', gnuCpio(main, join(dir, 'main.cpio'), 'newc')]);
  const initrd = Buffer.concat([first, second]);
  const outer = openImageView(new BufferSource(initrd), 'initrd')!;
  assert.equal(outer.kind, 'cpio');
  const tail = [...outer.entries()].find((e) => e.path.startsWith('(data after'))!;
  assert.equal(tail.path, `(data after the cpio archive at offset ${first.length})`);
  const zst = openImageView(outer.fileSource(tail)!, tail.path)!;
  assert.equal(zst.kind, 'zstd');
  const [, contents] = [...zst.entries()];
  const inner = openImageView(zst.fileSource(contents!)!, contents!.path)!;
  assert.equal(inner.kind, 'cpio');
  assert.equal(viewNarHash(inner), nixHashOf(main));
});

test('fuzz: seeded mutations of the kept cpio seeds end in entries or a NixSealError, never a hang', () => {
  const kinds = fuzzCorpus(cpioReader, 'cpio');
  // The mutations reach the parsers: several kinds of error, not one refusal at the header.
  assert.ok(kinds.size >= 3, [...kinds.keys()].join('\n'));
});

test('cpio fuzz corpus replays: each kept image ends as recorded (offsets are regression pins, not an oracle)', () => {
  replayCorpus(cpioReader, 'cpio');
});
