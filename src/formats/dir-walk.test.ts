import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NixSealError } from '../errors.js';
import { walkDirectories, type DirChild } from './dir-walk.js';

/** A directory graph in memory: id → named children (id < 100: a directory, else a file), each record at offset id*10+i. */
type Graph = Record<number, [string, number][]>;
type E = { path: string; type: 'dir' | 'file' };

function walk(g: Graph, limits = { maxEntries: 100, maxDepth: 10 }): { entries: E[]; byPath: Map<string, E> } {
  return walkDirectories<number, E>({
    root: { entry: { path: '', type: 'dir' }, dir: 0, key: 0 },
    *children(dir): Generator<DirChild<number, E>> {
      for (const [i, [name, id]] of (g[dir] ?? []).entries()) {
        yield { name, at: dir * 10 + i, open: (path) => (id < 100 ? { entry: { path, type: 'dir' }, dir: { dir: id, key: id } } : { entry: { path, type: 'file' } }) };
      }
    },
    limits,
    fail: (why, offset) => new NixSealError('EFORMAT', `Cannot read g: ${why} at offset ${offset}`, { offset }),
  });
}

const refused = (re: RegExp, offset: number) => (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT' && re.test(e.message) && e.details.offset === offset;

test('root first, then depth first in directory order; byPath finds each', () => {
  const { entries, byPath } = walk({ 0: [['b', 1], ['a', 100]], 1: [['c', 2], ['x', 101]], 2: [['y', 102]] });
  assert.deepEqual(entries.map((e) => e.path), ['', 'b', 'a', 'b/c', 'b/x', 'b/c/y']);
  assert.equal(byPath.get('b/c/y')?.type, 'file');
});

test('refusals: a loop, a name twice, bad names, depth and entry budgets, each at the record', () => {
  assert.throws(() => walk({ 0: [['d', 1]], 1: [['up', 0]] }), refused(/directory inode 0 is linked twice/, 10));
  assert.throws(() => walk({ 0: [['f', 100], ['f', 101]] }), refused(/^Cannot read g: f is named twice at offset 1$/, 1));
  for (const name of ['', '.', '..', 'a/b']) assert.throws(() => walk({ 0: [['d', 1]], 1: [[name, 100]] }), refused(/directory d holds an entry named/, 10));
  assert.throws(() => walk({ 0: [['a', 1]], 1: [['b', 2]], 2: [['c', 3]] }, { maxEntries: 100, maxDepth: 2 }), refused(/nest deeper than 2/, 20));
  assert.throws(() => walk({ 0: [['a', 100], ['b', 101], ['c', 102]] }, { maxEntries: 3, maxDepth: 10 }), refused(/more than 3 entries/, 2));
});

test('a directory of 300,000 subdirectories is walked (its children are not spread into one call)', () => {
  const n = 300_000;
  const { entries } = walkDirectories<number, E>({
    root: { entry: { path: '', type: 'dir' }, dir: -1, key: -1 },
    *children(dir): Generator<DirChild<number, E>> {
      if (dir !== -1) return;
      for (let i = 0; i < n; i++) yield { name: `d${i}`, at: i, open: (path) => ({ entry: { path, type: 'dir' }, dir: { dir: i, key: i } }) };
    },
    limits: { maxEntries: n + 1, maxDepth: 2 },
    fail: (why, offset) => new NixSealError('EFORMAT', `Cannot read g: ${why} at offset ${offset}`, { offset }),
  });
  assert.equal(entries.length, n + 1);
  assert.equal(entries[1]?.path, 'd0');
  assert.equal(entries[n]?.path, `d${n - 1}`);
});
