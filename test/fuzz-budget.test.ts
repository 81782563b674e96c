/**
 * The fuzz harness's work budget, proven on readers that never end: one lists entries forever
 * (a directory cycle), one re-reads the same block forever (a chain of blocks pointing back), one
 * produces a file's zeros forever. Each must fail with WorkBudgetExceeded, not hang and not pass
 * as a refusal; an honest reader of the same input stays within it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ByteSource } from '../src/formats/byte-source.js';
import type { ImageReader, ImageView, InnerEntry } from '../src/formats/image.js';
import { exerciseImage, WorkBudgetExceeded, WorkMeter, workBudgetFor } from './support/fuzz-corpus.js';

function readerOf(entries: (src: ByteSource) => Iterable<InnerEntry>, read: (src: ByteSource, e: InnerEntry) => Iterable<Uint8Array> = () => []): ImageReader {
  return {
    kind: 'test',
    detect: () => true,
    open(src: ByteSource): ImageView {
      return {
        kind: 'test',
        description: 'test',
        source: src,
        entries: () => entries(src),
        read: (e) => read(src, e),
        fileSource: () => undefined,
        locate: () => ({ what: 'test' }),
      };
    },
  };
}

const input = new Uint8Array(64 << 10);

test('a reader listing entries forever fails the work budget', () => {
  const looping = readerOf(function* () {
    for (let i = 0; ; i++) yield { path: `d/${i}`, type: 'dir', size: 0 };
  });
  assert.throws(() => exerciseImage(looping, input), WorkBudgetExceeded);
});

test('a reader re-reading one block forever fails the work budget', () => {
  const looping = readerOf(function* (src) {
    yield { path: '', type: 'dir', size: 0 };
    for (;;) src.read(4096, 4096);
  });
  assert.throws(() => exerciseImage(looping, input), WorkBudgetExceeded);
});

test('a reader making empty reads forever fails the work budget', () => {
  const looping = readerOf(function* (src) {
    yield { path: '', type: 'dir', size: 0 };
    for (;;) src.read(0, 0);
  });
  assert.throws(() => exerciseImage(looping, input), WorkBudgetExceeded);
});

test('a reader producing empty chunks of a file forever fails the work budget', () => {
  const looping = readerOf(
    function* () {
      yield { path: 'f', type: 'file', size: 1 };
    },
    function* () {
      for (;;) yield new Uint8Array(0);
    },
  );
  // Empty chunks cost nothing by bytes; this one is caught because it is charged per chunk too.
  assert.throws(() => exerciseImage(looping, input), WorkBudgetExceeded);
});

test('an honest reader of the same input (every byte read once, a file of it produced) stays within the budget', () => {
  const honest = readerOf(
    function* () {
      yield { path: '', type: 'dir', size: 0 };
      yield { path: 'f', type: 'file', size: input.length };
    },
    function* (src) {
      for (let o = 0; o < src.size; o += 4096) yield src.read(o, 4096);
    },
  );
  const meter = new WorkMeter(workBudgetFor(input.length));
  assert.deepEqual(exerciseImage(honest, input, [], meter), { outcome: 'ok' });
  assert.ok(meter.used < meter.limit / 16, `${meter.used} of ${meter.limit}`);
});
