import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../errors.js';
import { NIX32_ALPHABET } from '../store/nix32.js';
import { HashPartSet, ReferenceScanner, isHashPart, scanBytes, scanStream, type ScanHit } from './reference-scanner.js';
import { seeded } from '../../test/support/property.js';
import { noiseBytes } from '../../test/support/prng.js';

const A = 'a'.repeat(32).replace(/a/g, (_, i: number) => NIX32_ALPHABET[(i * 7 + 3) % 32]!);
const H1 = '0123456789abcdfghijklmnpqrsvwxyz';
const H2 = 'zyxwvsrqpnmlkjihgfdcba9876543210';
const H3 = 'x1g2h3i4j5k6l7m8n9p0q1r2s3v4w5x6'; // only used as a non-candidate
const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');

const printable = (c: number): string => (c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '.');

/** The obvious O(n) scan: every window, looked up as a string. */
function naiveScan(candidates: Iterable<string>, b: Uint8Array, ctx = 16): ScanHit[] {
  const set = new Set(candidates);
  const hits: ScanHit[] = [];
  const str = Buffer.from(b).toString('latin1');
  for (let i = 0; i + 32 <= b.length; i++) {
    const w = str.slice(i, i + 32);
    if (!set.has(w)) continue;
    let before = '';
    for (let a = Math.max(0, i - ctx); a < i; a++) before += printable(b[a]!);
    let after = '';
    for (let a = i + 32; a < Math.min(b.length, i + 32 + ctx); a++) after += printable(b[a]!);
    hits.push({ hash: w, offset: i, before, after });
  }
  return hits;
}

/**
 * A port of Nix's `search` and `RefScanSink::operator()` (libstore/references.cc, Nix 2.8): the
 * set of hashes Nix registers, for the same chunking.
 */
function nixRefScan(candidates: Iterable<string>, chunks: Uint8Array[]): Set<string> {
  const isBase32 = new Array<boolean>(256).fill(false);
  for (const c of NIX32_ALPHABET) isBase32[c.charCodeAt(0)] = true;
  const refLength = 32;
  const hashes = new Set(candidates);
  const seen = new Set<string>();
  const search = (s: Buffer): void => {
    for (let i = 0; i + refLength <= s.length; ) {
      let match = true;
      for (let j = refLength - 1; j >= 0; --j) {
        if (!isBase32[s[i + j]!]) {
          i += j + 1;
          match = false;
          break;
        }
      }
      if (!match) continue;
      const ref = s.toString('latin1', i, i + refLength);
      if (hashes.delete(ref)) seen.add(ref);
      ++i;
    }
  };
  let tail = Buffer.alloc(0);
  for (const c of chunks) {
    const data = Buffer.from(c);
    const tailLen = Math.min(data.length, refLength);
    search(Buffer.concat([tail, data.subarray(0, tailLen)]));
    search(data);
    const rest = refLength - tailLen;
    if (rest < tail.length) tail = tail.subarray(tail.length - rest);
    tail = Buffer.concat([tail, data.subarray(data.length - tailLen)]);
  }
  return seen;
}

/** Feeds `b` cut at `cuts` (sorted or not, any values: taken modulo length) and collects all hits. */
function feedChunked(scanner: ReferenceScanner, b: Uint8Array, cuts: number[]): { hits: ScanHit[]; chunks: Uint8Array[] } {
  const points = [...new Set(cuts.map((c) => (b.length === 0 ? 0 : c % (b.length + 1))))].sort((x, y) => x - y);
  const chunks: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, b.length]) {
    chunks.push(b.subarray(prev, p));
    prev = p;
  }
  scanner.reset();
  const hits: ScanHit[] = [];
  for (const c of chunks) {
    // A copy that is then clobbered: the scanner must not keep references to the caller's buffer.
    const copy = new Uint8Array(c);
    hits.push(...scanner.feed(copy));
    copy.fill(0x41);
  }
  hits.push(...scanner.end());
  return { hits, chunks };
}

/** Candidates that share suffixes and prefixes with each other, so the shift table and the buckets are exercised. */
const hashArb = fc
  .tuple(
    fc.string({ unit: fc.constantFrom(...'0123abc'), minLength: 26, maxLength: 26 }),
    fc.constantFrom('wxyz99', 'wxyz98', '0000zz', 'abcd00'),
  )
  .map(([a, b]) => a + b);

/** Input pieces: candidates, mangled candidates, nix32 noise, bytes outside the alphabet. */
const inputArb = fc
  .uniqueArray(hashArb, { minLength: 1, maxLength: 6 })
  .chain((cands) =>
    fc.record({
      cands: fc.constant(cands),
      nonCands: fc.array(hashArb, { maxLength: 3 }),
      pieces: fc.array(
        fc.oneof(
          fc.nat(cands.length - 1).map((i) => bytes(cands[i]!)),
          fc.tuple(fc.nat(cands.length - 1), fc.integer({ min: 1, max: 31 })).map(([i, n]) => bytes(cands[i]!.slice(0, n))),
          fc.tuple(fc.nat(cands.length - 1), fc.integer({ min: 1, max: 31 })).map(([i, n]) => bytes(cands[i]!.slice(n))),
          fc.string({ unit: fc.constantFrom(...NIX32_ALPHABET), maxLength: 40 }).map(bytes),
          fc.uint8Array({ maxLength: 12 }),
          fc.constantFrom(bytes('/nix/store/'), bytes('-'), bytes('e'), Buffer.from([0]), Buffer.from([0xff])),
        ),
        { maxLength: 30 },
      ),
      cuts: fc.array(fc.nat(2000), { maxLength: 12 }),
    }),
  )
  .map((r) => ({ ...r, input: Buffer.concat([...r.pieces]) }));

test('isHashPart accepts exactly 32 nix32 characters', () => {
  assert.ok(isHashPart(H1));
  assert.ok(!isHashPart(H1.slice(1)));
  assert.ok(!isHashPart(H1 + '0'));
  assert.ok(!isHashPart(H1.replace('a', 'e')));
  assert.ok(!isHashPart(H1.toUpperCase()));
  assert.ok(!isHashPart(H1.replace('a', 'ä')));
});

test('finds hashes at the start, in the middle and at the end, with offsets and context', () => {
  const input = bytes(`${H1}/nix/store/${H2}-hello\x00\x01\n${H1}`);
  const hits = scanBytes([H1, H2], input);
  assert.deepEqual(hits, [
    { hash: H1, offset: 0, before: '', after: '/nix/store/zyxwv' },
    { hash: H2, offset: 43, before: 'vwxyz/nix/store/', after: '-hello...0123456' },
    { hash: H1, offset: 84, before: '6543210-hello...', after: '' },
  ]);
  // Context 0 and a larger context.
  assert.deepEqual(
    scanBytes([H2], input, { context: 0 }).map((h) => [h.offset, h.before, h.after]),
    [[43, '', '']],
  );
  const wide = scanBytes([H2], input, { context: 100 });
  assert.equal(wide[0]!.before, `${H1}/nix/store/`);
  assert.equal(wide[0]!.after, `-hello...${H1}`);
});

test('a stream that is exactly one hash, or shorter, or empty', () => {
  assert.deepEqual(scanBytes([H1], bytes(H1)), [{ hash: H1, offset: 0, before: '', after: '' }]);
  assert.deepEqual(scanBytes([H1], bytes(H1.slice(0, 31))), []);
  assert.deepEqual(scanBytes([H1], bytes(H1.slice(1))), []);
  assert.deepEqual(scanBytes([H1], new Uint8Array(0)), []);
  assert.deepEqual(scanBytes([], bytes(H1)), []);
});

test('reports every occurrence: repeats and overlapping candidates', () => {
  // Two candidates overlapping in a 33-character run, and one hash repeated back to back.
  const run = H1 + 'q';
  const shifted = run.slice(1);
  const input = bytes(`${run} ${A}${A}`);
  const hits = scanBytes([H1, shifted, A], input);
  assert.deepEqual(
    hits.map((h) => [h.hash, h.offset]),
    [
      [H1, 0],
      [shifted, 1],
      [A, 34],
      [A, 66],
    ],
  );
  const scanner = new ReferenceScanner([H1, shifted, A]);
  scanner.feed(input);
  scanner.end();
  assert.equal(scanner.hitCount, 4);
  assert.deepEqual([...scanner.found].sort(), [H1, shifted, A].sort());
});

test('nix32 runs that are not candidates, and hashes Nix cannot see, are not reported', () => {
  const utf16 = Buffer.from(H1, 'utf16le');
  const split = bytes(`${H1.slice(0, 16)}\n${H1.slice(16)}`);
  const upper = bytes(H1.toUpperCase());
  const noise = bytes(`${H3}${H3}${H2.slice(0, 31)}`);
  const input = Buffer.concat([utf16, split, upper, noise]);
  assert.deepEqual(scanBytes([H1, H2], input), []);
  // A candidate inside a longer nix32 run is found (Nix does not look for word boundaries).
  assert.deepEqual(
    scanBytes([H1], bytes(`${H3}${H1}${H3}`)).map((h) => h.offset),
    [32],
  );
});

test('candidates sharing their last characters, and windows that end like a candidate but differ', () => {
  const c1 = '0'.repeat(28) + 'wxyz';
  const c2 = '1'.repeat(28) + 'wxyz';
  const c3 = '0'.repeat(27) + '1wxyz';
  const cands = [c1, c2, c3];
  const input = bytes(`${'2'.repeat(28)}wxyz ${c2} ${'0'.repeat(27)}1wxyz ${c1}`);
  assert.deepEqual(
    scanBytes(cands, input).map((h) => [h.hash, h.offset]),
    [
      [c2, 33],
      [c3, 66],
      [c1, 99],
    ],
  );
});

test('non-printable context bytes are shown as dots', () => {
  const input = Buffer.concat([Buffer.from([0, 0x1f, 0x7f, 0x80, 0xff, 0x20, 0x7e]), bytes(H1), Buffer.from([0x0a, 0x41])]);
  assert.deepEqual(scanBytes([H1], input), [{ hash: H1, offset: 7, before: '..... ~', after: '.A' }]);
});

test('feed returns hits as soon as their after-context is complete; end returns the rest', () => {
  const scanner = new ReferenceScanner([H1, H2]);
  // H1 with its full context in the first chunk; H2 near the end of it.
  const first = bytes(`xx${H1}${'-'.repeat(16)}yy${H2}abc`);
  const got1 = scanner.feed(first);
  assert.deepEqual(got1.map((h) => h.hash), [H1]);
  const got2 = scanner.feed(bytes('defgh'));
  assert.deepEqual(got2, []);
  const got3 = scanner.feed(bytes('ijklmnopqrstuvwxyz'));
  assert.deepEqual(got3, [{ hash: H2, offset: 52, before: '--------------yy', after: 'abcdefghijklmnop' }]);
  assert.deepEqual(scanner.end(), []);
  assert.throws(() => scanner.feed(bytes('x')), /after end/);
  scanner.reset();
  assert.equal(scanner.bytesScanned, 0);
  assert.deepEqual(scanner.feed(bytes(H2)), []);
  assert.deepEqual(scanner.end(), [{ hash: H2, offset: 0, before: '', after: '' }]);
});

test('scanStream yields the hits of a chunked stream', async () => {
  async function* chunks(): AsyncGenerator<Uint8Array> {
    yield bytes(`ab${H1.slice(0, 10)}`);
    yield bytes(H1.slice(10, 31));
    yield bytes(`${H1.slice(31)}cd`);
  }
  const hits: ScanHit[] = [];
  for await (const h of scanStream([H1], chunks())) hits.push(h);
  assert.deepEqual(hits, [{ hash: H1, offset: 2, before: 'ab', after: 'cd' }]);
});

test('rejects candidates that are not hash parts, and bad context sizes', () => {
  assert.throws(
    () => new HashPartSet([H1, 'not-a-hash']),
    (e: unknown) => e instanceof NixSealError && e.code === 'EBADHASH',
  );
  assert.throws(() => new ReferenceScanner([H1.toUpperCase()]), NixSealError);
  assert.throws(() => new ReferenceScanner([H1], { context: -1 }), RangeError);
  assert.throws(() => new ReferenceScanner([H1], { context: 1.5 }), RangeError);
  // Duplicates are merged.
  assert.equal(new HashPartSet([H1, H2, H1]).size, 2);
});

test('property: chunking never changes the hits (one byte at a time = whole buffer = random cuts)', () => {
  fc.assert(
    fc.property(inputArb, ({ cands, input, cuts }) => {
      const scanner = new ReferenceScanner(cands);
      const whole = feedChunked(scanner, input, []).hits;
      const byByte = feedChunked(
        scanner,
        input,
        Array.from({ length: input.length }, (_, i) => i),
      ).hits;
      const random = feedChunked(scanner, input, cuts).hits;
      assert.deepEqual(byByte, whole);
      assert.deepEqual(random, whole);
    }),
    seeded({ numRuns: 300 }),
  );
});

test('property: same hits as a naive scan of every window, for several context sizes', () => {
  fc.assert(
    fc.property(inputArb, fc.constantFrom(0, 3, 16, 40), ({ cands, nonCands, input, cuts }, ctx) => {
      const allowed = cands.filter((c) => !nonCands.includes(c));
      const scanner = new ReferenceScanner(allowed, { context: ctx });
      assert.deepEqual(feedChunked(scanner, input, cuts).hits, naiveScan(allowed, input, ctx));
    }),
    seeded({ numRuns: 500 }),
  );
});

test('property: the set found equals what Nix\'s RefScanSink finds, for the same chunks', () => {
  fc.assert(
    fc.property(inputArb, ({ cands, input, cuts }) => {
      const scanner = new ReferenceScanner(cands);
      const { chunks } = feedChunked(scanner, input, cuts);
      assert.deepEqual([...scanner.found].sort(), [...nixRefScan(cands, chunks)].sort());
    }),
    seeded({ numRuns: 500 }),
  );
});

test('random binary and random nix32 text with many candidates agree with the naive scan', () => {
  // Deterministic inputs, so a failure can be reproduced.
  const rnd = noiseBytes;
  const noise = rnd(1 << 20, 12345);
  const text = Buffer.from(rnd(1 << 20, 777).map((c) => NIX32_ALPHABET.charCodeAt(c & 31)));
  // Candidates: 2000 hashes taken from the text itself (so they occur), plus 2000 random ones.
  const cands = new Set<string>();
  for (let i = 0; i < 2000; i++) cands.add(text.toString('latin1', i * 500, i * 500 + 32));
  const r = rnd(2000 * 32, 99);
  for (let i = 0; i < 2000; i++) cands.add(Buffer.from(r.subarray(i * 32, i * 32 + 32).map((c) => NIX32_ALPHABET.charCodeAt(c & 31))).toString('latin1'));
  const set = new HashPartSet(cands);
  for (const input of [noise, text, Buffer.concat([noise.subarray(0, 1000), text.subarray(0, 5000), noise.subarray(1000, 3000)])]) {
    const scanner = new ReferenceScanner(set);
    const got = feedChunked(scanner, input, [1, 100, 4096, 65536, 65537, 300000]).hits;
    assert.deepEqual(got, naiveScan(cands, input));
  }
  assert.equal(scanBytes(set, text).length, naiveScan(cands, text).length);
  assert.ok(scanBytes(set, text).length >= 2000);
});

test('windows that differ from a candidate only near its end are not matches (table slots collide)', () => {
  // The shift table folds the last 4 characters into fewer bits, so windows unequal to a candidate
  // share its slot; every variant of two of the last 4 characters must still be told apart.
  for (const cands of [[H1], [H1, H2, A]]) {
    const set = new HashPartSet(cands);
    const scanner = new ReferenceScanner(set);
    for (const p of [28, 29, 30]) {
      for (const x of NIX32_ALPHABET) {
        for (const y of NIX32_ALPHABET) {
          const w = H1.slice(0, p) + x + H1.slice(p + 1, 31) + y;
          const hits = scanner.scan(bytes(w));
          assert.deepEqual(hits.map((h) => h.hash), w === H1 ? [H1] : [], w);
        }
      }
    }
  }
});
