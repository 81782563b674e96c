import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Analysis } from '../analysis.js';
import { reach, sealedClosure } from '../graph/closure.js';
import { buildRefGraph, idOf } from '../graph/ref-graph.js';
import type { StorePath } from '../store/store-path.js';
import { closureLines, writeClosureLines } from './closure.js';

// The CLI writes the closure in pieces of 1024 lines: their concatenation must be closureLines,
// at the piece boundaries too (1023–1025 paths and several pieces).
test('writeClosureLines: the pieces together are closureLines', () => {
  for (const n of [1, 2, 1023, 1024, 1025, 2048, 3001]) {
    const storeDir = '/nix/store';
    const paths = Array.from({ length: n }, (_, i) => `${storeDir}/${(i * 7919).toString(36).padStart(32, '0')}-p${i}` as StorePath);
    // A chain 0 → 1 → … with some extra edges: every path in the closure of path 0.
    const from: number[] = [];
    const to: number[] = [];
    for (let i = 0; i + 1 < n; i++) from.push(i), to.push(i + 1);
    for (let i = 0; i + 5 < n; i += 3) from.push(i), to.push(i + 5);
    const graph = buildRefGraph({ storeDir, paths, narSize: new Float64Array(n), edgeFrom: from, edgeTo: to, edgeCount: from.length });
    const root = idOf(graph, paths[0]!)!;
    const full = reach(graph, [root]);
    const closure = sealedClosure(graph, [root], new Uint8Array(n), full);
    const a = { graph, closure, roots: [root] } as unknown as Analysis;
    const pieces: string[] = [];
    writeClosureLines(a, (t) => pieces.push(t));
    assert.equal(pieces.length, Math.ceil(n / 1024));
    assert.equal(pieces.join(''), closureLines(a));
    assert.equal(closureLines(a).split('\n').length, n + 1);
  }
});
