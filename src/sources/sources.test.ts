import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { asPathId, idOf, referencesOf, type RefGraph } from '../graph/ref-graph.js';
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
    g.paths.map((p, i) => [p, { size: g.narSize[i]!, refs: [...referencesOf(g, asPathId(i))].map((r) => g.paths[r]!) }]),
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

/*
 * `nix path-info --json-format 1|2|3` (Nix 2.33+). The entries are Nix's own test fixtures,
 * NixOS/nix src/libstore-tests/data/path-info/json-{1,2,3}/{impure,empty_impure}.json (commit
 * 88b09c64fb), wrapped as src/nix/path-info.cc `pathInfoToJSON` wraps them: format 1 keyed by
 * absolute path, formats 2 and 3 as {version, storeDir, info} keyed by base name.
 */
const BAR = 'g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar';
const FOO = 'n5wkd9frr45pa74if5gpz9j7mifg27fh-foo';
const BAZ = '0a1s2d3f4g5h6j7k8l9z0x1c2v3b4n5m-baz';
const SIG1 = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==';
const NIX_FIXTURES = {
  1: {
    impure: {
      ca: 'fixed:r:sha256:1lr187v6dck1rjh2j6svpikcfz53wyl3qrlcbb405zlh13x0khhh',
      deriver: '/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv',
      narHash: 'sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=',
      narSize: 34878,
      references: ['/nix/store/g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar', '/nix/store/n5wkd9frr45pa74if5gpz9j7mifg27fh-foo'],
      registrationTime: 23423,
      signatures: [`asdf:${SIG1}`, `qwer:${SIG1}`],
      storeDir: '/nix/store',
      ultimate: true,
      version: 1,
    },
    empty: { ca: null, deriver: null, narHash: 'sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=', narSize: 0, references: [], registrationTime: null, signatures: [], storeDir: '/nix/store', ultimate: false, version: 1 },
  },
  2: {
    impure: {
      ca: { hash: 'sha256-EMIJ+giQ/gLIWoxmPKjno3zHZrxbGymgzGGyZvZBIdM=', method: 'nar' },
      deriver: 'g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv',
      narHash: 'sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=',
      narSize: 34878,
      references: [BAR, FOO],
      registrationTime: 23423,
      signatures: [`asdf:${SIG1}`, `qwer:${SIG1}`],
      storeDir: '/nix/store',
      ultimate: true,
      version: 2,
    },
    empty: { ca: null, deriver: null, narHash: 'sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=', narSize: 0, references: [], registrationTime: null, signatures: [], storeDir: '/nix/store', ultimate: false, version: 2 },
  },
  3: {
    impure: {
      ca: { hash: 'sha256-EMIJ+giQ/gLIWoxmPKjno3zHZrxbGymgzGGyZvZBIdM=', method: 'nar' },
      deriver: 'g1w7hy3qg1w7hy3qg1w7hy3qg1w7hy3q-bar.drv',
      narHash: 'sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=',
      narSize: 34878,
      references: [BAR, FOO],
      registrationTime: 23423,
      signatures: [
        { keyName: 'asdf', sig: SIG1 },
        { keyName: 'qwer', sig: SIG1 },
      ],
      storeDir: '/nix/store',
      ultimate: true,
      version: 3,
    },
    empty: { ca: null, deriver: null, narHash: 'sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=', narSize: 0, references: [], registrationTime: null, signatures: [], storeDir: '/nix/store', ultimate: false, version: 3 },
  },
} as const;

/** What `nix path-info --json --json-format N -r baz` prints for baz → bar, foo. */
function pathInfoDoc(format: 1 | 2 | 3): unknown {
  const f = NIX_FIXTURES[format];
  const info = { [BAZ]: f.impure, [BAR]: f.empty, [FOO]: f.empty };
  if (format === 1) return Object.fromEntries(Object.entries(info).map(([k, v]) => [`${S}/${k}`, v]));
  return { version: format, storeDir: S, info };
}

test('path-info JSON: --json-format 1, 2 and 3 of Nix 2.33+ (Nix’s own fixtures) give the same graph', () => {
  const want = { [`${S}/${BAZ}`]: { size: 34878, refs: [`${S}/${BAR}`, `${S}/${FOO}`] }, [`${S}/${BAR}`]: { size: 0, refs: [] }, [`${S}/${FOO}`]: { size: 0, refs: [] } };
  for (const format of [1, 2, 3] as const) {
    const g = parsePathInfoJson(JSON.stringify(pathInfoDoc(format), null, 2), 'pi.json');
    assert.deepEqual(summary(g), want, `format ${format}`);
    const baz = idOf(g, `${S}/${BAZ}`)!;
    assert.equal(g.deriver[baz], `${S}/${BAR}.drv`, `format ${format}: the deriver is made absolute`);
    assert.equal(g.narHash[baz], 'sha256-FePFYIlMuycIXPZbWi7LGEiMmZSX9FMbaQenWBzm1Sc=');
    assert.equal(g.storeDir, S);
  }
  // Another store dir, as format 2 states it once for all base names.
  const other = JSON.parse(JSON.stringify(pathInfoDoc(2)).replaceAll('/nix/store', '/gnu/store')) as unknown;
  assert.deepEqual(parsePathInfoJson(JSON.stringify(other), 'pi.json').paths, [`/gnu/store/${BAZ}`, `/gnu/store/${BAR}`, `/gnu/store/${FOO}`]);
  // The pre-2.33 development form of narHash ({algorithm, format, hash}) is read too.
  const dev = pathInfoDoc(2) as { info: Record<string, { narHash: unknown }> };
  dev.info[BAR] = { ...NIX_FIXTURES[2].empty, narHash: { algorithm: 'sha256', format: 'base16', hash: '15e3c560894cbb27085cf65b5a2ecb18488c999497f4531b6907a7581ce6d527' } };
  assert.equal(parsePathInfoJson(JSON.stringify(dev), 'pi.json').narHash[1], 'sha256:15e3c560894cbb27085cf65b5a2ecb18488c999497f4531b6907a7581ce6d527');
});

test('path-info JSON: a malformed format 1, 2 or 3 document is a one-line error naming the file and the problem', () => {
  const doc = (f: 1 | 2 | 3, edit: (d: any) => void): string => {
    const d = JSON.parse(JSON.stringify(pathInfoDoc(f))) as unknown;
    edit(d);
    return JSON.stringify(d);
  };
  const cases: [string, RegExp][] = [
    [doc(2, (d) => (d.version = 4)), /^Cannot parse pi\.json: 'version' is 4: expected 2 or 3/],
    [doc(3, (d) => delete d.info), /^Cannot parse pi\.json: 'info' is missing/],
    [doc(3, (d) => (d.info = [])), /^Cannot parse pi\.json: 'info' is not an object of path infos/],
    [doc(2, (d) => delete d.storeDir), /^Cannot parse pi\.json: 'storeDir' is missing/],
    [doc(2, (d) => (d.info[BAR] = null)), new RegExp(`^Cannot parse pi\\.json info '${BAR}': the path is not valid`)],
    [doc(2, (d) => (d.info[BAZ].references = [`${S}/${BAR}`])), new RegExp(`info '${BAZ}': reference '/nix/store/${BAR}' is not a store path's base name`)],
    [doc(2, (d) => (d.info[`${S}/${FOO}`] = d.info[FOO])), /key '\/nix\/store\/n5wk.*-foo' is not a store path's base name/],
    [doc(3, (d) => (d.info[BAZ].version = 2)), new RegExp(`info '${BAZ}': 'version' is 2, expected 3`)],
    [doc(2, (d) => (d.info[BAZ].storeDir = '/gnu/store')), /'storeDir' is "\/gnu\/store", but the document's is '\/nix\/store'/],
    [doc(1, (d) => (d[`${S}/${BAZ}`].version = 2)), /entry '\/nix\/store\/0a1s.*-baz': 'version' is 2, expected 1/],
    [doc(3, (d) => (d.info[BAZ].narHash = 42)), /'narHash' is not a hash/],
    [doc(3, (d) => (d.info[BAZ].narHash = { algorithm: 'sha256', format: 'base99', hash: 'x' })), /'narHash' has the unknown format "base99"/],
    [doc(3, (d) => (d.info[BAZ].narHash = 'sha256-nope')), /'sha256-nope' is not a hash Nix accepts/],
    [doc(3, (d) => delete d.info[FOO]), /reference \/nix\/store\/n5wk.*-foo of .*-baz is not listed/],
  ];
  for (const [text, re] of cases) {
    assert.throws(
      () => parsePathInfoJson(text, 'pi.json'),
      (err: Error) => {
        assert.match(err.message, re);
        assert.doesNotMatch(err.message, /\n/);
        return true;
      },
    );
  }
});
