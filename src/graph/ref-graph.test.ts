import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NixSealError } from '../errors.js';
import type { StorePath } from '../store/store-path.js';
import { buildRefGraph, type GraphRecords } from './ref-graph.js';

const paths = ['/s/bbbb-b', '/s/aaaa-a', '/s/cccc-c'] as StorePath[];
const records = (edgeFrom: ArrayLike<number>, edgeTo: ArrayLike<number>, edgeCount = edgeFrom.length): GraphRecords => ({ storeDir: '/s', paths, narSize: [1, 2, 3], edgeFrom, edgeTo, edgeCount });

test('buildRefGraph sorts the records, remaps and deduplicates the edges, and keeps unknown sizes unknown', () => {
  const g = buildRefGraph({ ...records([0, 0, 2, 2], [1, 1, 0, 2]), narSize: [1, 2] });
  assert.deepEqual(g.paths, ['/s/aaaa-a', '/s/bbbb-b', '/s/cccc-c']);
  assert.deepEqual([...g.narSize], [2, 1, NaN]);
  assert.deepEqual([...g.refStart], [0, 0, 1, 3]);
  assert.deepEqual([...g.refs], [0, 1, 2]);
});

test('an edge naming a record that is not there is an EPARSE, not a silently smaller graph', () => {
  const bad: [string, GraphRecords][] = [
    ['past the end', records([0, 3], [1, 1])],
    ['negative', records([0], [-1])],
    ['fractional', records([0.5], [1])],
    ['NaN', records([NaN], [1])],
    ['more edges claimed than given', records([0], [1], 2)],
    ['a negative count', records([0], [1], -1)],
  ];
  for (const [what, rec] of bad) {
    assert.throws(() => buildRefGraph(rec), (e: unknown) => e instanceof NixSealError && e.code === 'EPARSE' && /^Cannot build graph: /.test(e.message), what);
  }
});
