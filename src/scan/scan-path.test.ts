import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { narStream } from '../formats/nar.js';
import { NixSealError } from '../errors.js';
import { NIX32_ALPHABET } from '../store/nix32.js';
import { ReferenceScanner } from './reference-scanner.js';
import { scanPath, scanPathHits, scanPathReferences, type PathHit } from './scan-path.js';
import { tempDir } from '../../test/support/temp.js';
import { seeded } from '../../test/support/property.js';

const H1 = '0123456789abcdfghijklmnpqrsvwxyz';
const H2 = 'zyxwvsrqpnmlkjihgfdcba9876543210';
const H3 = 'ggggggggggggggggggggggggggggggg1';
const H4 = 'hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh2'; // never written anywhere

/** Occurrences per hash when scanning the NAR of `p` as one byte stream (what Nix does). */
async function narCounts(p: string, cands: string[]): Promise<Map<string, number>> {
  const scanner = new ReferenceScanner(cands, { context: 0 });
  const counts = new Map<string, number>();
  const add = (hs: { hash: string }[]): void => {
    for (const h of hs) counts.set(h.hash, (counts.get(h.hash) ?? 0) + 1);
  };
  for await (const chunk of narStream(p)) add(scanner.feed(chunk));
  add(scanner.end());
  return counts;
}

async function pathCounts(p: string, cands: string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const h of await scanPath(p, cands, { context: 0 })) counts.set(h.hash, (counts.get(h.hash) ?? 0) + 1);
  return counts;
}

const sorted = (m: Map<string, number>): [string, number][] => [...m].sort(([a], [b]) => (a < b ? -1 : 1));

const brief = (hits: PathHit[]): string[] => hits.map((h) => `${h.file}|${h.where}|${h.offset}|${h.hash}|${h.before}|${h.after}`);

test('reports the file, the place and the offset of every hit, in NAR order', async (t) => {
  const root = tempDir(t);
  mkdirSync(join(root, 'bin'));
  mkdirSync(join(root, `share-${H3}`));
  writeFileSync(join(root, 'bin', 'prog'), `#!/bin/sh\nexec /nix/store/${H1}-dep/bin/x "$@" # ${H1}\n`, { mode: 0o755 });
  writeFileSync(join(root, `share-${H3}`, 'empty'), '');
  writeFileSync(join(root, `share-${H3}`, 'short'), H1.slice(0, 31));
  symlinkSync(`/nix/store/${H2}-lib/lib`, join(root, 'lib'));
  symlinkSync(`../${H1}`, join(root, `${H2}.link`));
  const hits = await scanPath(root, [H1, H2, H3, H4]);
  assert.deepEqual(brief(hits), [
    // Byte-wise order: '0'-'9' < 'b' < 'l' < 's' < 'z'.
    `bin/prog|contents|26|${H1}|exec /nix/store/|-dep/bin/x "$@" `,
    `bin/prog|contents|76|${H1}|ep/bin/x "$@" # |.`,
    `lib|symlink target|11|${H2}|/nix/store/|-lib/lib`,
    `share-${H3}|name|6|${H3}|share-|`,
    `${H2}.link|name|0|${H2}||.link`,
    `${H2}.link|symlink target|3|${H1}|../|`,
  ]);
  assert.deepEqual([...(await scanPathReferences(root, [H1, H2, H3, H4]))].sort(), [H1, H2, H3].sort());
  // The scanned path's own name is not part of its NAR.
  const named = join(root, `share-${H3}`);
  assert.deepEqual(await scanPath(named, [H3]), []);
  // Roots that are a file or a symlink: file ''.
  assert.deepEqual(brief(await scanPath(join(root, 'lib'), [H2], { context: 4 })), [`|symlink target|11|${H2}|ore/|-lib`]);
  assert.deepEqual(
    (await scanPath(join(root, 'bin', 'prog'), [H1])).map((h) => [h.file, h.offset]),
    [
      ['', 26],
      ['', 76],
    ],
  );
  // No candidates: nothing, but the tree is still walked.
  assert.deepEqual(await scanPath(root, []), []);
});

test('large files: hits across read chunks, at the very end, and incrementally delivered', async (t) => {
  const root = tempDir(t);
  const size = (4 << 20) * 2 + 100;
  const big = Buffer.alloc(size, 0x2e);
  const at = [0, (4 << 20) - 16, 8 << 20, size - 32]; // the second spans a read boundary, the third starts one
  for (const o of at) big.write(H1, o, 'latin1');
  writeFileSync(join(root, 'big'), big);
  writeFileSync(join(root, 'small'), H2);
  const hits: PathHit[] = [];
  for await (const h of scanPathHits(root, [H1, H2])) hits.push(h);
  assert.deepEqual(
    hits.map((h) => [h.file, h.offset, h.hash, h.before.length, h.after.length]),
    [
      ['big', 0, H1, 0, 16],
      ['big', (4 << 20) - 16, H1, 16, 16],
      ['big', 8 << 20, H1, 16, 16],
      ['big', size - 32, H1, 16, 0],
      ['small', 0, H2, 0, 0],
    ],
  );
});

test('a consumer may stop early, while the next read of a large file is under way', async (t) => {
  const root = tempDir(t);
  const big = Buffer.alloc(12 << 20, 0x20);
  big.write(H1, 100, 'latin1');
  big.write(H1, 9 << 20, 'latin1');
  writeFileSync(join(root, 'big'), big);
  for (let i = 0; i < 3; i++) {
    for await (const h of scanPathHits(root, [H1])) {
      assert.equal(h.offset, 100);
      break; // the generator's finally waits for the read in flight, then closes the file
    }
  }
  assert.equal((await scanPath(root, [H1])).length, 2);
});

test('same occurrences as scanning the NAR from narStream (fixed tree with awkward names)', async (t) => {
  const root = tempDir(t);
  const cands = [H1, H2, H3, H4];
  mkdirSync(join(root, 'd', H1), { recursive: true });
  // Names whose lengths are multiples of 8 (no padding after them), and exactly a hash.
  writeFileSync(join(root, 'd', H1, H2), `${H3}${H3}`);
  writeFileSync(join(root, 'd', `${H1}x`.slice(0, 32) + 'abcdefgh'), H1);
  symlinkSync(H2 + H3.slice(0, 8), join(root, 'd', 'l8'));
  symlinkSync(H2, join(root, 'd', 'l32'));
  writeFileSync(join(root, 'exact'), H3); // contents exactly 32 bytes: followed by ")" framing
  writeFileSync(join(root, 'x'.repeat(40) + H2), 'y');
  writeFileSync(Buffer.concat([Buffer.from(root + '/'), Buffer.from([0xff]), Buffer.from(H4)]), '');
  const nar = await narCounts(root, cands);
  assert.deepEqual(sorted(await pathCounts(root, cands)), sorted(nar));
  assert.deepEqual(sorted(nar), [
    [H1, 3],
    [H3, 3],
    [H4, 1],
    [H2, 4],
  ]);
});

test('property: same occurrences as scanning the NAR from narStream (random trees)', async (t) => {
  const base = tempDir(t);
  const cands = [H1, H2, H3, H4];
  let n = 0;
  const textArb = fc
    .array(
      fc.oneof(
        fc.constantFrom(...cands),
        fc.constantFrom(...cands).map((h) => h.slice(0, 20)),
        fc.constantFrom(...cands).map((h) => h.slice(12)),
        fc.string({ unit: fc.constantFrom(...NIX32_ALPHABET), maxLength: 12 }),
        fc.constantFrom('/', '-', '.', '\n', 'e'),
      ),
      { maxLength: 8 },
    )
    .map((parts) => parts.join(''));
  const nameArb = textArb.map((s) => s.replace(/\//g, '_')).filter((s) => s !== '' && s !== '.' && s !== '..' && s.length < 200);
  type Node = { kind: 'file'; text: string } | { kind: 'link'; text: string } | { kind: 'dir'; entries: [string, Node][] };
  const { node: nodeArb } = fc.letrec<{ node: Node }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      textArb.map((text): Node => ({ kind: 'file', text })),
      textArb.filter((s) => s !== '').map((text): Node => ({ kind: 'link', text })),
      fc.uniqueArray(fc.tuple(nameArb, tie('node')), { maxLength: 4, selector: ([name]) => name }).map((entries): Node => ({ kind: 'dir', entries })),
    ),
  }));
  const make = (p: string, node: Node): void => {
    if (node.kind === 'file') writeFileSync(p, node.text);
    else if (node.kind === 'link') symlinkSync(node.text, p);
    else {
      mkdirSync(p);
      for (const [name, child] of node.entries) make(join(p, name), child);
    }
  };
  await fc.assert(
    fc.asyncProperty(nodeArb, async (node) => {
      const p = join(base, `t${n++}`);
      make(p, node);
      assert.deepEqual(sorted(await pathCounts(p, cands)), sorted(await narCounts(p, cands)));
    }),
    seeded({ numRuns: 150 }),
  );
  assert.ok(readdirSync(base).length > 0);
});

test('errors: a missing path is EIO, a socket is EFORMAT, a bad candidate EBADHASH', async (t) => {
  const root = tempDir(t);
  await assert.rejects(scanPath(join(root, 'missing'), [H1]), (e: unknown) => e instanceof NixSealError && e.code === 'EIO');
  await assert.rejects(scanPath(root, ['nope']), (e: unknown) => e instanceof NixSealError && e.code === 'EBADHASH');
  const sock = join(root, 's');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  t.after(() => server.close());
  await assert.rejects(scanPath(root, [H1]), (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT');
});
