import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { idOf, referencesOf, type RefGraph } from '../graph/ref-graph.js';
import { encodeNix32 } from '../store/nix32.js';
import { parseAttrsJson, parsePathInfoJson } from './json-sources.js';
import { parseRegistration } from './registration.js';

const S = '/nix/store';
const A = `${S}/00000000000000000000000000000000-a`;
const B = `${S}/11111111111111111111111111111111-b`;
const digest = createHash('sha256').update('x').digest();
const NIX32 = `sha256:${encodeNix32(digest)}`;
const HEX = digest.toString('hex');

function summary(g: RefGraph): Record<string, { size: number; refs: string[] }> {
  return Object.fromEntries(
    g.paths.map((p, i) => [p, { size: g.narSize[i]!, refs: [...referencesOf(g, i)].map((r) => g.paths[r]!) }]),
  );
}
const expected = { [A]: { size: 120, refs: [A, B] }, [B]: { size: 64, refs: [] } };

test('closureInfo registration (sha256:nix32) and dump-db (bare hex) parse the same', () => {
  const reg = `${A}\n${NIX32}\n120\n\n2\n${A}\n${B}\n${B}\n${NIX32}\n64\n\n0\n`;
  const dump = `${B}\n${HEX}\n64\n\n0\n${A}\n${HEX}\n120\n/nix/store/22222222222222222222222222222222-a.drv\n2\n${B}\n${A}\n`;
  assert.deepEqual(summary(parseRegistration(reg, 'reg', true)), expected);
  const g = parseRegistration(dump, 'dump', true);
  assert.deepEqual(summary(g), expected);
  assert.equal(g.deriver[idOf(g, A)!], '/nix/store/22222222222222222222222222222222-a.drv');
});

test('the legacy exportReferencesGraph file has no hash or size', () => {
  const g = parseRegistration(`${A}\n\n1\n${B}\n${B}\n\n0\n`, 'graph', false);
  assert.deepEqual(Object.keys(summary(g)), [A, B]);
  assert.ok(Number.isNaN(g.narSize[0]!));
});

test('malformed registrations name the line and the problem', () => {
  const cases: [string, RegExp][] = [
    [`${A}\n${NIX32}\n12x\n\n0\n`, /reg line 3: narSize '12x' is not a number/],
    [`${A}\n${NIX32}\n120\n\nmany\n`, /reg line 5: reference count 'many' is not a number/],
    [`${A}\n${NIX32}\n120\n\n2\n${B}\n`, /the record that starts on line 1 ends before its reference 2 of 2/],
    [`${A}\nsha256:zz\n120\n\n0\n`, /reg line 1: 'sha256:zz' is not a hash/],
    [`${A}\n${NIX32}\n120\n\n1\n${B}\n`, /reg line 1: reference .*-b of .*-a is not listed in the file/],
    [`${B}\n${NIX32}\n1\n\n0\n/usr/bin/0123456789abcdfghijklmnpqrsvwxyz-x\n${NIX32}\n1\n\n0\n`, /reg line 6: '\/usr\/bin\/0123.*-x': not in the Nix store \/nix\/store/],
    [`${A}\n${NIX32}\n1\n\n0\n${A}\n${NIX32}\n1\n\n0\n`, /is listed twice/],
    ['', /lists no store paths/],
  ];
  for (const [text, re] of cases) assert.throws(() => parseRegistration(text, 'reg', true), re);
});

test('path-info JSON: the list shape (Nix ≤ 2.18) and the map shape (2.19+)', () => {
  const list = [
    { path: A, narHash: NIX32, narSize: 120, references: [A, B], deriver: null },
    { path: B, narHash: `sha256-${digest.toString('base64')}`, narSize: 64, references: [] },
  ];
  assert.deepEqual(summary(parsePathInfoJson(JSON.stringify(list), 'pi.json')), expected);
  const map = { [A]: { narHash: NIX32, narSize: 120, references: [A, B] }, [B]: { narHash: NIX32, narSize: 64, references: [] } };
  assert.deepEqual(summary(parsePathInfoJson(JSON.stringify(map), 'pi.json')), expected);
  assert.throws(() => parsePathInfoJson('[{"path":1}]', 'pi.json'), /pi.json entry 1: 'path' is not a string/);
  assert.throws(() => parsePathInfoJson(`{"${A}": null}`, 'pi.json'), /not valid/);
  assert.throws(() => parsePathInfoJson('[\n{"path": }]', 'pi.json'), /Cannot parse pi.json line 2: invalid JSON/);
});

test('.attrs.json: exportReferencesGraph under its name, found when unique', () => {
  const graph = [
    { path: A, narHash: NIX32, narSize: 120, references: [A, B], closureSize: 184, valid: true },
    { path: B, narHash: NIX32, narSize: 64, references: [], closureSize: 64, valid: true },
  ];
  const doc = JSON.stringify({ closure: graph, outputs: { out: '/x' }, name: 'y' });
  assert.deepEqual(summary(parseAttrsJson(doc, '.attrs.json')), expected);
  assert.deepEqual(summary(parseAttrsJson(doc, '.attrs.json', 'closure')), expected);
  assert.throws(() => parseAttrsJson(doc, '.attrs.json', 'other'), /'other' is missing/);
  const two = JSON.stringify({ a: graph, b: graph });
  assert.throws(() => parseAttrsJson(two, '.attrs.json'), /several graphs \(a, b\); name one/);
  assert.throws(() => parseAttrsJson(JSON.stringify({ c: [{ path: A, references: [] }] }), 'f'), /f c\[0\]: 'narHash' is missing/);
});

test('several exportReferencesGraph files of one build merge; a conflicting repeat is an error', async () => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { FileSource } = await import('./file-source.js');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nix-seal-eg-'));
  try {
    fs.writeFileSync(path.join(dir, 'g0'), `${A}\n\n1\n${B}\n${B}\n\n0\n`);
    fs.writeFileSync(path.join(dir, 'g1'), `${B}\n\n0\n`);
    fs.writeFileSync(path.join(dir, 'bad'), `${B}\n\n1\n${B}\n`);
    const src = new FileSource('export-graph', `${dir}/g0,${dir}/g1`);
    assert.deepEqual(src.graph.paths, [A, B]);
    assert.throws(() => new FileSource('export-graph', `${dir}/g0,${dir}/bad`), /exportReferencesGraph files .*bad line 1: .*-b is listed again with other references than at .*g0 line 5/);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
