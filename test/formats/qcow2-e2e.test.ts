import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import { fuzzCorpus, replayCorpus } from '../support/fuzz-corpus.js';
import { requireTools } from '../support/tools.js';
import { treeArbitraries, writeTree } from '../support/random-tree.js';
import { hostileProperties, nixHashOf, viewNarHash } from '../support/view-tree.js';
import { BufferSource, FdSource } from '../../src/formats/byte-source.js';
import type { ImageView } from '../../src/formats/image.js';
import { openImageView, readerFor } from '../../src/formats/image-readers.js';
import { qcow2Reader } from '../../src/formats/qcow2.js';
import { tempDir } from '../support/temp.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

function allBytes(view: ImageView): Buffer {
  const e = [...view.entries()].find((x) => x.path === 'disk')!;
  return Buffer.concat([...view.read(e)]);
}

/** A raw disk: a GPT whose first partition holds an ISO of a random tree; the tree's directory. */
function rawDisk(t: TestContext, dir: string): { raw: string; root: string } {
  const [tree] = fc.sample(treeArbitraries(20_000).dir, { numRuns: 1, seed: 7 });
  const root = join(dir, 'tree');
  writeTree(root, tree!);
  const iso = join(dir, 'in.iso');
  execFileSync('xorriso', ['-as', 'mkisofs', '-R', '-o', iso, root], { stdio: 'ignore', env: { ...process.env, LC_ALL: 'C.UTF-8' } });
  const isoSize = readFileSync(iso).length;
  const raw = join(dir, 'disk.raw');
  writeFileSync(raw, '');
  execFileSync('truncate', ['-s', String(isoSize + (3 << 20)), raw]);
  execFileSync('sgdisk', ['-n', `1:2048:+${Math.ceil(isoSize / 512)}`, raw], { stdio: 'ignore' });
  execFileSync('dd', [`if=${iso}`, `of=${raw}`, 'bs=512', 'seek=2048', 'conv=notrunc'], { stdio: 'ignore' });
  t.diagnostic(`raw disk ${readFileSync(raw).length} bytes`);
  return { raw, root };
}

interface MapExtent {
  start: number;
  length: number;
  data: boolean;
  zero: boolean;
  offset?: number;
}

test('qemu-img convert (v3, v2, compressed deflate and zstd, 512 B to 2 MiB clusters): the disk reads as the raw image, and a GPT holding an ISO nests', (t) => {
  if (!requireTools(t, 'qemu-img', 'sgdisk', 'xorriso', 'nix-hash')) return;
  const dir = tempDir(t);
  const { raw, root } = rawDisk(t, dir);
  const want = sha(readFileSync(raw));
  const wantTree = nixHashOf(root);
  const variants: Array<[string, string[], RegExp]> = [
    ['v3', ['-o', 'compat=1.1'], /^qcow2 v3 .*65536-byte clusters\)$/],
    ['v2', ['-o', 'compat=0.10'], /^qcow2 v2 /],
    ['deflate', ['-c'], /^qcow2 v3 /],
    ['zstd', ['-c', '-o', 'compression_type=zstd'], /zstd clusters/],
    ['small clusters', ['-o', 'cluster_size=512'], /512-byte clusters/],
    ['big clusters', ['-c', '-o', 'cluster_size=2M'], /2097152-byte clusters/],
  ];
  for (const [label, args, desc] of variants) {
    const q = join(dir, `${label.replace(' ', '-')}.qcow2`);
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', ...args, raw, q]);
    const fd = openSync(q, 'r');
    try {
      const src = new FdSource(fd, q);
      assert.equal(readerFor(src), qcow2Reader);
      const view = qcow2Reader.open(src, q);
      assert.match(view.description, desc, label);
      assert.equal(sha(allBytes(view)), want, label);
      // Nesting: qcow2 → GPT → ISO 9660, hashed as the original tree.
      const disk = [...view.entries()].find((e) => e.path === 'disk')!;
      const gpt = openImageView(view.fileSource(disk)!, 'disk')!;
      assert.equal(gpt.kind, 'gpt');
      const part = [...gpt.entries()].find((e) => e.path === 'partition 1')!;
      const iso = openImageView(gpt.fileSource(part)!, 'partition 1')!;
      assert.equal(iso.kind, 'iso9660');
      assert.equal(viewNarHash(iso), wantTree, label);
      // locate agrees with qemu-img map: each data extent's host bytes are that virtual range.
      const map = JSON.parse(execFileSync('qemu-img', ['map', '--output=json', '-f', 'qcow2', q], { encoding: 'utf8' })) as MapExtent[];
      let checked = 0;
      for (const m of map) {
        if (!m.data || m.offset === undefined) continue;
        for (const d of [0, m.length - 1]) {
          assert.deepEqual(view.locate(m.offset + d), { path: 'disk', offsetInFile: m.start + d, what: 'data of disk' }, `${label} extent ${m.start}`);
          checked++;
        }
      }
      if (label.includes('deflate') || label === 'zstd' || label === 'big clusters') {
        assert.equal(checked, 0, 'qemu-img map gives no host offsets for compressed clusters');
      } else assert.ok(checked > 0, label);
      assert.equal(view.locate(3).what, 'qcow2 header');
      t.diagnostic(`${label}: ${view.description}, ${checked / 2} mapped extents`);
    } finally {
      closeSync(fd);
    }
  }
});

test('zero and unallocated clusters read as zeros (qemu-io write -z, a sparse image)', (t) => {
  if (!requireTools(t, 'qemu-img', 'qemu-io')) return;
  const dir = tempDir(t);
  const q = join(dir, 'z.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', q, '4M']);
  execFileSync('qemu-io', ['-f', 'qcow2', '-c', 'write -P 0xab 0 192k', '-c', 'write -z 64k 64k', '-c', 'write -P 0xcd 3M 1k', q], { stdio: 'ignore' });
  const view = qcow2Reader.open(new BufferSource(readFileSync(q)), q);
  const want = Buffer.alloc(4 << 20);
  want.fill(0xab, 0, 192 << 10);
  want.fill(0, 64 << 10, 128 << 10);
  want.fill(0xcd, 3 << 20, (3 << 20) + 1024);
  assert.equal(sha(allBytes(view)), sha(want));
  const map = JSON.parse(execFileSync('qemu-img', ['map', '--output=json', '-f', 'qcow2', q], { encoding: 'utf8' })) as MapExtent[];
  assert.ok(map.some((m) => m.zero && !m.data && m.start === 64 << 10), 'qemu-img sees the zero cluster');
});

test('backing files, encryption and corrupt tables are EFORMAT naming the offset', (t) => {
  if (!requireTools(t, 'qemu-img')) return;
  const dir = tempDir(t);
  const base = join(dir, 'base.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', base, '1M']);
  const over = join(dir, 'over.qcow2');
  execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', over]);
  const isErr = (re: RegExp, offset: number) => (e: unknown) =>
    e instanceof NixSealError && e.code === 'EFORMAT' && re.test(e.message) && e.details.offset === offset && !e.message.includes('\n');
  assert.throws(() => qcow2Reader.open(new BufferSource(readFileSync(over)), 'over.qcow2'), isErr(/^Cannot read over\.qcow2: a qcow2 image with a backing file \(".*base\.qcow2"\) holds only part of its disk; nix-seal cannot look inside it/, 8));
  const enc = join(dir, 'enc.qcow2');
  let encBytes: Buffer;
  try {
    execFileSync('qemu-img', ['create', '-q', '--object', 'secret,id=s0,data=hunter2', '-f', 'qcow2', '-o', 'encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=10', enc, '1M'], { stdio: ['ignore', 'pipe', 'pipe'] });
    encBytes = readFileSync(enc);
  } catch {
    // LUKS key setup times the CPU (PBKDF2), which fails on some loaded or virtual machines
    // ("Unable to get accurate CPU usage"): mark a plain image's header as LUKS-encrypted instead.
    encBytes = Buffer.from(readFileSync(base));
    encBytes.writeUInt32BE(2, 32);
  }
  assert.throws(() => qcow2Reader.open(new BufferSource(encBytes), 'enc.qcow2'), isErr(/an encrypted qcow2 image \(method 2\)/, 32));
  const okImg = readFileSync(base);
  const badBits = Buffer.from(okImg);
  badBits.writeUInt32BE(40, 20);
  assert.throws(() => qcow2Reader.open(new BufferSource(badBits), 'b'), isErr(/cluster bits 40/, 20));
  const badL1 = Buffer.from(okImg);
  badL1.writeBigUInt64BE(1n << 40n, 40);
  assert.throws(() => qcow2Reader.open(new BufferSource(badL1), 'b'), isErr(/the L1 table .* is not inside the file/, 40));
  assert.equal(qcow2Reader.detect(new BufferSource(Buffer.from('QFI\xfb\0\0\0\x04'.padEnd(80, '\0'), 'latin1'))), false, 'version 4');
});

test('hostile input: random bytes, mutated images and every truncation fail only with NixSealError', (t) => {
  if (!requireTools(t, 'qemu-img', 'qemu-io')) return;
  const dir = tempDir(t);
  for (const args of [[], ['-c']]) {
    const raw = join(dir, 'r.raw');
    writeFileSync(raw, Buffer.concat([Buffer.alloc(100_000, 1), createHash('sha512').update('x').digest(), Buffer.alloc(100_000, 0)]));
    const q = join(dir, `h${args.length}.qcow2`);
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', '-o', 'cluster_size=4096', ...args, raw, q]);
    hostileProperties(qcow2Reader, readFileSync(q), 100, 300);
  }
});

test('fuzz: seeded mutations of the kept qcow2 seeds end in entries or a NixSealError, never a hang', () => {
  const kinds = fuzzCorpus(qcow2Reader, 'qcow2');
  // The mutations reach the parsers: several kinds of error, not one refusal at the header.
  assert.ok(kinds.size >= 3, [...kinds.keys()].join('\n'));
});

test('qcow2 fuzz corpus replays: each kept image ends as recorded (offsets are regression pins, not an oracle)', () => {
  replayCorpus(qcow2Reader, 'qcow2');
});
