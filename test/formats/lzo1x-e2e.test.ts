/**
 * The LZO1X decoder against the real liblzo2 (through test/support/lzo-compress.py): every LZO1X
 * compressor mksquashfs offers, on random, repetitive and long-run inputs; then hand-made streams
 * for each instruction and error, truncation at every length and mutation fuzzing (a result
 * within the limit or an Lzo1xError, nothing else). Real images: squashfs-e2e.test.ts (-comp lzo).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import fc from 'fast-check';
import { requireTools } from '../support/tools.js';
import { Lzo1xError, lzo1xDecompress } from '../../src/formats/lzo1x.js';
import { seeded } from '../support/property.js';

const ALGORITHMS = ['lzo1x_1', 'lzo1x_1_11', 'lzo1x_1_12', 'lzo1x_1_15', 'lzo1x_999'] as const;
const COMPRESS = fileURLToPath(new URL('../../../test/support/lzo-compress.py', import.meta.url));

/** Compresses each input with each algorithm, in one python3 run. */
function liblzo(inputs: Uint8Array[]): { algorithm: string; input: Uint8Array; compressed: Uint8Array }[] {
  const jobs = inputs.flatMap((input) => ALGORITHMS.map((algorithm) => ({ algorithm, hex: Buffer.from(input).toString('hex') })));
  const out = JSON.parse(execFileSync('python3', [COMPRESS], { input: JSON.stringify(jobs), maxBuffer: 1 << 28, encoding: 'utf8' })) as string[];
  return jobs.map((j, i) => ({ algorithm: j.algorithm, input: Buffer.from(j.hex, 'hex'), compressed: Buffer.from(out[i]!, 'hex') }));
}

/** Inputs that exercise every instruction: random bytes, text with repeats near and far, long runs. */
const inputArb = fc.oneof(
  fc.uint8Array({ maxLength: 3000 }),
  fc.array(fc.constantFrom('nix', 'store', '/nix/store/', 'seal', ' ', '\n', 'x'.repeat(300), 'abc'), { maxLength: 400 }).map((w) => Buffer.from(w.join(''))),
  fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 70_000 }), fc.uint8Array({ maxLength: 50 })).map(([b, n, tail]) => Buffer.concat([Buffer.alloc(n, b), tail])),
  fc.tuple(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.integer({ min: 1, max: 2000 })).map(([unit, n]) => Buffer.concat(Array.from({ length: n }, () => unit))),
);

let corpus: ReturnType<typeof liblzo> | undefined;
function realStreams(t: import('node:test').TestContext): ReturnType<typeof liblzo> | undefined {
  if (!requireTools(t, 'python3')) return undefined;
  corpus ??= liblzo([new Uint8Array(0), Buffer.from('a'), Buffer.alloc(49_152 + 100, 7), Buffer.from('0123456789'.repeat(20_000)), ...fc.sample(inputArb, 150)]);
  return corpus;
}

test('decodes what liblzo2 writes, with every LZO1X compressor mksquashfs offers', (t) => {
  const streams = realStreams(t);
  if (!streams) return;
  for (const { algorithm, input, compressed } of streams) {
    const out = lzo1xDecompress(compressed, input.length);
    assert.ok(Buffer.from(out).equals(input), `${algorithm}: ${input.length} bytes round trip`);
    // One byte less room is a bomb, not a short result.
    if (input.length > 0) assert.throws(() => lzo1xDecompress(compressed, input.length - 1), (e: unknown) => e instanceof Lzo1xError && /more than/.test(e.why));
  }
});

const hex = (s: string): Uint8Array => Buffer.from(s.replace(/\s/g, ''), 'hex');

test('hand-made streams: each instruction, and each error with its offset', () => {
  // The empty stream is the end marker alone.
  assert.equal(lzo1xDecompress(hex('110000'), 0).length, 0);
  // A first literal run (17 + 5), an M2 match of 3 at distance 5, the end marker.
  // M2: t = ((length - 1) << 5) | (((distance - 1) & 7) << 2) | trailing literals; operand (distance - 1) >> 3.
  const m2 = ((3 - 1) << 5) | (((5 - 1) & 7) << 2);
  assert.deepEqual(Buffer.from(lzo1xDecompress(Uint8Array.of(17 + 5, ...Buffer.from('hello'), m2, (5 - 1) >> 3, 0x11, 0, 0), 100)).toString(), 'hellohel');
  // An M3 run: "ab" then a 30-byte match at distance 2 (overlapping: the run grows from itself).
  const m3 = [32 | (30 - 2), ((2 - 1) << 2) & 0xff, ((2 - 1) << 2) >> 8];
  assert.equal(Buffer.from(lzo1xDecompress(Uint8Array.of(17 + 2, 0x61, 0x62, ...m3, 0x11, 0, 0), 100)).toString(), 'ab'.repeat(16));
  // A literal run with a length extension: t = 0, two zero bytes (+510), then 5: 15 + 510 + 5 + 3.
  const n = 15 + 510 + 5 + 3;
  const lit = Uint8Array.of(0, 0, 0, 5, ...Buffer.alloc(n, 0x78), 0x11, 0, 0);
  // (A stream that starts with t < 16 begins with a literal run too.)
  assert.equal(lzo1xDecompress(lit, n).length, n);

  const fails = (bytes: Uint8Array, max: number, why: RegExp, offset?: number): void =>
    assert.throws(
      () => lzo1xDecompress(bytes, max),
      (e: unknown) => e instanceof Lzo1xError && e.code === 'EFORMAT' && why.test(e.why) && (offset === undefined || e.details.offset === offset) && e.message.startsWith('Cannot decompress lzo data: '),
      `${Buffer.from(bytes).toString('hex')}: ${why}`,
    );
  fails(hex('1100'), 10, /ends early/);
  fails(hex('110000 00'), 10, /1 bytes after the end/, 3);
  fails(Uint8Array.of(17 + 1, 0x61, 0x12, 0, 0), 10, /malformed end-of-stream/, 2); // the marker's distance, length 4
  fails(Uint8Array.of(17 + 2, 0x61, 0x62, 64 | (7 << 2), 0), 100, /refers to 6 bytes before the start/, 3); // M2 distance 8 after 2 bytes
  fails(Uint8Array.of(17 + 5, ...Buffer.from('hello'), 0x11, 0, 0), 4, /more than 4 bytes/);
  fails(Uint8Array.of(0, 0, 0, 0), 1 << 20, /ends early/); // an extension that never ends
});

test('truncated at every length, and mutated: a result within the limit or an Lzo1xError', (t) => {
  const streams = realStreams(t);
  if (!streams) return;
  const check = (bytes: Uint8Array, max: number): boolean => {
    try {
      return lzo1xDecompress(bytes, max).length <= max;
    } catch (e) {
      return e instanceof Lzo1xError;
    }
  };
  const seeds = streams.filter((s) => s.input.length > 100 && s.input.length < 20_000).slice(0, 20);
  for (const { compressed, input } of seeds) {
    for (let len = 0; len < compressed.length; len++) assert.throws(() => lzo1xDecompress(compressed.subarray(0, len), input.length), Lzo1xError);
  }
  fc.assert(
    fc.property(
      fc.constantFrom(...seeds),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
      ({ compressed, input }, edits) => {
        const b = Uint8Array.from(compressed);
        for (const [at, v] of edits) b[at % b.length] = v;
        return check(b, input.length + 64);
      },
    ),
    seeded({ numRuns: 2000 }),
  );
  fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), (b) => check(b, 4096)), seeded({ numRuns: 2000 }));
});
