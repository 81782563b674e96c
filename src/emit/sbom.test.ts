import assert from 'node:assert/strict';
import { test } from 'node:test';
import { asPathId, buildRefGraph } from '../graph/ref-graph.js';
import { sealedClosure } from '../graph/closure.js';
import type { Analysis } from '../analysis.js';
import type { StorePath } from '../store/store-path.js';
import { cycloneDx, erasedBomRef, parseDrvName, renderSbom, sbomInput, sha256Hex, spdx, spdxId, SPDX_FIXED_CREATED } from './sbom.js';

// Real nixpkgs store path names, split as `builtins.parseDrvName` splits them (checked against
// nix-instantiate in test/sbom-e2e.test.ts).
const NAMES: [string, string, string][] = [
  ['hello-2.12.1', 'hello', '2.12.1'],
  ['glibc-2.38-44', 'glibc', '2.38-44'],
  ['glibc-2.38-44-bin', 'glibc', '2.38-44-bin'],
  ['python3.11-requests-2.31.0', 'python3.11-requests', '2.31.0'],
  ['perl5.38.0-URI-5.21', 'perl5.38.0-URI', '5.21'],
  ['gtk+3-3.24.38', 'gtk+3', '3.24.38'],
  ['util-linux-2.39.2-lib', 'util-linux', '2.39.2-lib'],
  ['bash-interactive-5.2p15', 'bash-interactive', '5.2p15'],
  ['linux-6.1.55-modules-shrunk', 'linux', '6.1.55-modules-shrunk'],
  ['nixos-system-nixos-24.05.20240101.abcdef0', 'nixos-system-nixos', '24.05.20240101.abcdef0'],
  ['nix-2.18.1-man', 'nix', '2.18.1-man'],
  ['xorg-server-21.1.8', 'xorg-server', '21.1.8'],
  ['initrd-linux-6.1.55', 'initrd-linux', '6.1.55'],
  ['nixos-23.11.iso', 'nixos', '23.11.iso'],
  ['nixos-test.iso', 'nixos-test.iso', ''],
  ['etc-os-release', 'etc-os-release', ''],
  ['unit-script-nix-daemon-start', 'unit-script-nix-daemon-start', ''],
  ['source', 'source', ''],
  ['stdenv-linux', 'stdenv-linux', ''],
  ['hook-_patch', 'hook', '_patch'],
  ['x--1', 'x', '-1'],
  ['a-', 'a-', ''],
];

test('parseDrvName splits real nixpkgs names like Nix: the version starts after the first - not followed by a letter', () => {
  for (const [full, name, version] of NAMES) assert.deepEqual(parseDrvName(full), { name, version }, full);
});

test('sha256Hex turns every narHash encoding into hex (values from nix-hash --to-base32)', () => {
  const hex = '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
  assert.equal(sha256Hex('sha256:094qif9n4cq4fdg459qzbhg1c6wywawwaaivx0k0x8xhbyx4vwic'), hex);
  assert.equal(sha256Hex(`sha256:${hex}`), hex);
  assert.equal(sha256Hex(hex), hex); // bare hex, as nix-store --dump-db writes it
  assert.equal(sha256Hex(`sha256-${Buffer.from(hex, 'hex').toString('base64')}`), hex);
  assert.equal(sha256Hex('sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.equal(sha256Hex(undefined), undefined);
  assert.equal(sha256Hex(`sha1:${'a'.repeat(40)}`), undefined);
});

// R → A, R → S (seal), S → B, S → C, A → C: README's example; B erased, C kept.
const D = '/nix/store';
const P = (h: string, n: string): StorePath => `${D}/${h.repeat(32)}-${n}` as StorePath;
const R = P('r', 'start-vm');
const A = P('a', 'qemu-8.0');
const S = P('s', 'nixos-test.iso');
const B = P('b', 'bash-5.2');
const C = P('c', 'glibc-2.37');

function analysis(): Analysis {
  const paths = [R, A, S, B, C];
  const edges: [number, number][] = [[0, 1], [0, 2], [2, 3], [2, 4], [1, 4], [4, 4]];
  const graph = buildRefGraph({
    storeDir: D,
    paths,
    narSize: [10, 20, 30, 40, 50],
    narHash: paths.map((_, i) => `sha256:${String(i).repeat(64)}`),
    edgeFrom: edges.map((e) => e[0]),
    edgeTo: edges.map((e) => e[1]),
    edgeCount: edges.length,
  });
  const id = (p: string) => asPathId(graph.paths.indexOf(p as StorePath));
  const seals = new Uint8Array(5);
  seals[id(S)] = 1;
  const roots = [id(R)];
  return { graph, roots, seals, closure: sealedClosure(graph, roots, seals), warnings: [], detected: [] } as unknown as Analysis;
}

const tool = { name: 'nix-seal', version: '0.1.0' };

test('sbomInput: kept paths sorted with kept references (no self reference), seals with their erased paths and verdicts', () => {
  const a = analysis();
  const i = sbomInput(a, { tool, verdicts: new Map([[S, new Map([[B, 'verified']])]]) });
  assert.deepEqual(i.roots, [R]);
  assert.deepEqual(i.kept.map((k) => k.path), [A, C, R, S]);
  assert.deepEqual(i.kept.find((k) => k.path === C)!.references, []);
  assert.deepEqual(i.kept.find((k) => k.path === R)!.references, [A, S]);
  assert.deepEqual(i.kept.find((k) => k.path === S)!.references, [C]);
  assert.deepEqual(i.seals, [{ path: S, erased: [{ path: B, sha256: '3'.repeat(64), narSize: 40, verdict: 'verified' }] }]);
  assert.equal(i.timestamp, undefined);
});

test('CycloneDX: components, nested erased components, dependencies; deterministic serial number', () => {
  const input = sbomInput(analysis(), { tool });
  const bom = cycloneDx(input) as any;
  assert.equal(bom.specVersion, '1.6');
  assert.match(bom.serialNumber, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(bom.metadata.timestamp, undefined);
  assert.deepEqual(bom.components.map((c: any) => c['bom-ref']), [A, C, R, S]);
  const qemu = bom.components[0];
  assert.deepEqual([qemu.name, qemu.version], ['qemu', '8.0']);
  assert.deepEqual(qemu.hashes, [{ alg: 'SHA-256', content: '1'.repeat(64) }]);
  assert.deepEqual(qemu.properties[0], { name: 'nix:narSize', value: '20' });
  const iso = bom.components[3];
  assert.equal(iso.version, undefined);
  assert.deepEqual(iso.components.map((c: any) => c['bom-ref']), [erasedBomRef(S, B)]);
  assert.deepEqual(bom.dependencies.find((d: any) => d.ref === R).dependsOn, [A, S]);
  assert.equal(renderSbom('cyclonedx', input), renderSbom('cyclonedx', sbomInput(analysis(), { tool })));
  const stamped = cycloneDx({ ...input, timestamp: '2026-01-02T03:04:05Z' }) as any;
  assert.equal(stamped.metadata.timestamp, '2026-01-02T03:04:05Z');
  assert.notEqual(stamped.serialNumber, bom.serialNumber);
});

test('SPDX: one package per path, DESCRIBES / DEPENDS_ON / CONTAINS, fixed created unless a timestamp', () => {
  const input = sbomInput(analysis(), { tool, verdicts: new Map([[S, new Map([[B, 'mentioned']])]]) });
  const doc = spdx(input) as any;
  assert.equal(doc.creationInfo.created, SPDX_FIXED_CREATED);
  assert.deepEqual(doc.packages.map((p: any) => p.packageFileName), [A, B, C, R, S]);
  for (const p of doc.packages) assert.match(p.SPDXID, /^SPDXRef-[a-zA-Z0-9.-]+$/);
  assert.equal(spdxId(P('x', 'gtk+3-3.24_a')), `SPDXRef-${'x'.repeat(32)}-gtk-3-3.24-a`);
  const rel = doc.relationships.map((r: any) => `${r.spdxElementId} ${r.relationshipType} ${r.relatedSpdxElement}${r.comment ? ' ' + r.comment : ''}`);
  assert.deepEqual(rel, [
    `SPDXRef-DOCUMENT DESCRIBES ${spdxId(R)}`,
    `${spdxId(A)} DEPENDS_ON ${spdxId(C)}`,
    `${spdxId(R)} DEPENDS_ON ${spdxId(A)}`,
    `${spdxId(R)} DEPENDS_ON ${spdxId(S)}`,
    `${spdxId(S)} DEPENDS_ON ${spdxId(C)}`,
    `${spdxId(S)} CONTAINS ${spdxId(B)} nix-seal:verdict=mentioned`,
  ]);
  assert.equal(doc.documentNamespace, (spdx(input) as any).documentNamespace);
  assert.match(doc.documentNamespace, new RegExp(`^https://nix-seal.invalid/spdx/${'r'.repeat(32)}-start-vm-`));
  assert.equal((spdx({ ...input, timestamp: '2026-01-02T03:04:05Z' }) as any).creationInfo.created, '2026-01-02T03:04:05Z');
});

test('two seals erasing one path: unique CycloneDX bom-refs, one SPDX package with a CONTAINS (and verdict) per seal', () => {
  // R → S1 → B, R → S2 → B
  const paths = [R, S, P('t', 'disk.img'), B];
  const edges: [number, number][] = [[0, 1], [0, 2], [1, 3], [2, 3]];
  const graph = buildRefGraph({ storeDir: D, paths, narSize: [1, 2, 3, 4], edgeFrom: edges.map((e) => e[0]), edgeTo: edges.map((e) => e[1]), edgeCount: edges.length });
  const id = (p: string) => asPathId(graph.paths.indexOf(p as StorePath));
  const seals = new Uint8Array(4);
  seals[id(S)] = 1;
  seals[id(P('t', 'disk.img'))] = 1;
  const roots = [id(R)];
  const a = { graph, roots, seals, closure: sealedClosure(graph, roots, seals), warnings: [], detected: [] } as unknown as Analysis;
  const T = P('t', 'disk.img');
  const input = sbomInput(a, { tool, verdicts: new Map([[S, new Map([[B, 'verified']])], [T, new Map([[B, 'unverified']])]]) });
  assert.deepEqual(input.seals.map((x) => x.path), [S, T]);
  assert.equal(input.kept[0]!.sha256, undefined); // no narHash known: no hash
  const bom = cycloneDx(input) as any;
  const refs: string[] = [];
  const walk = (cs: any[]): void => cs.forEach((c) => (refs.push(c['bom-ref']), walk(c.components ?? [])));
  walk(bom.components);
  assert.equal(new Set(refs).size, refs.length);
  assert.deepEqual(refs.filter((r) => r.endsWith(B)), [erasedBomRef(S, B), erasedBomRef(T, B)]);
  assert.equal(bom.components[0].hashes, undefined);
  const doc = spdx(input) as any;
  assert.equal(doc.packages.filter((p: any) => p.packageFileName === B).length, 1);
  assert.deepEqual(
    doc.relationships.filter((r: any) => r.relationshipType === 'CONTAINS').map((r: any) => [r.spdxElementId, r.relatedSpdxElement, r.comment]),
    [[spdxId(S), spdxId(B), 'nix-seal:verdict=verified'], [spdxId(T), spdxId(B), 'nix-seal:verdict=unverified']],
  );
});
