/**
 * `nix-seal sbom` on the seed scenario, built by real Nix: the CycloneDX document passes the
 * official CycloneDX 1.6 JSON schema (strict variant, through @cyclonedx/cyclonedx-library's
 * validator, offline); both formats hold exactly `closure --json`'s kept paths and references,
 * the ISO's erased paths, the database's hashes and sizes (converted by nix-hash); names split as
 * `builtins.parseDrvName` splits them; two runs are byte-identical.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { Spec, Validation } from '@cyclonedx/cyclonedx-library';
import { parseDrvName } from '../src/emit/sbom.js';
import { isOneLineError, runCli } from './support/cli.js';
import { withSeedScenario, type SeedScenario } from './support/seed-scenario.js';

const seed = withSeedScenario('nix-seal-sbom-');
after(() => seed.cleanup());

const scenario = (t: import('node:test').TestContext): SeedScenario | undefined => seed.need(t, 'nix-hash', 'nix-instantiate');

const cli = (s: SeedScenario, ...args: string[]) => runCli(args, s.env.env, s.env.root);
const sorted = (xs: Iterable<string>): string[] => [...xs].sort();
const nameOf = (p: string): string => path.basename(p).slice(33);

/** Writes an SBOM of the launcher with the ISO sealed; returns the file's text. */
function sbom(s: SeedScenario, file: string, ...extra: string[]): string {
  const out = path.join(s.env.root, file);
  const r = cli(s, 'sbom', s.launcher, '--seal', '*.iso', '-o', out, ...extra);
  assert.equal(r.code, 0, r.stderr);
  return fs.readFileSync(out, 'utf8');
}

interface Closure {
  paths: { path: string; narSize: number; references: string[] }[];
  seals: { path: string; erased: string[] }[];
}

const closureJson = (s: SeedScenario): Closure => JSON.parse(cli(s, 'closure', s.launcher, '--seal', '*.iso', '--json').stdout) as Closure;

/** What the database says of `p`: its narHash as hex (nix-hash converts) and its narSize. */
function dbInfo(s: SeedScenario, p: string): { hex: string; size: number } {
  const h = s.env.nixStore(['-q', '--hash', p]).trim(); // sha256:<nix32>
  const hex = s.env.run('nix-hash', ['--type', 'sha256', '--to-base16', h.slice('sha256:'.length)]).trim();
  return { hex, size: Number(s.env.nixStore(['-q', '--size', p]).trim()) };
}

/** `builtins.parseDrvName` of each name, evaluated by nix-instantiate. */
function nixParseDrvNames(s: SeedScenario, names: string[]): { name: string; version: string }[] {
  const list = names.map((n) => JSON.stringify(n)).join(' ');
  return JSON.parse(s.env.run('nix-instantiate', ['--eval', '--strict', '--json', '-E', `map builtins.parseDrvName [ ${list} ]`]));
}

const prop = (c: { properties?: { name: string; value: string }[] }, name: string): string | undefined =>
  c.properties?.find((p) => p.name === name)?.value;

test('CycloneDX: valid against the CycloneDX 1.6 strict schema; components = the kept paths, with the database hashes, sizes and kept references', async (t) => {
  const s = scenario(t);
  if (!s) return;
  const text = sbom(s, 'bom.cdx.json');
  const errors = await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text);
  assert.equal(errors, null, JSON.stringify(errors, null, 2));
  const bom = JSON.parse(text);
  // The validator is live: a hash that is not hex, or a stray field, fails it.
  const broken = structuredClone(bom);
  broken.components[0].hashes[0].content = 'sha256:not-hex';
  assert.notEqual(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(JSON.stringify(broken)), null);
  const stray = structuredClone(bom);
  stray.components[0].narSize = 1;
  assert.notEqual(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(JSON.stringify(stray)), null);
  const closure = closureJson(s);
  assert.deepEqual(bom.components.map((c: { 'bom-ref': string }) => c['bom-ref']), sorted(closure.paths.map((p) => p.path)));
  assert.equal(bom.components.length, 5);
  for (const c of bom.components) {
    const db = dbInfo(s, c['bom-ref']);
    assert.deepEqual(c.hashes, [{ alg: 'SHA-256', content: db.hex }], c['bom-ref']);
    assert.equal(prop(c, 'nix:narSize'), String(db.size), c['bom-ref']);
  }
  // dependencies: closure --json's kept references (without self references), per kept path.
  const deps = new Map(bom.dependencies.map((d: { ref: string; dependsOn: string[] }) => [d.ref, d.dependsOn]));
  for (const p of closure.paths) assert.deepEqual(deps.get(p.path), sorted(p.references.filter((r) => r !== p.path)), p.path);
  assert.deepEqual(bom.metadata.properties, [{ name: 'nix-seal:root', value: s.launcher }]);
  assert.equal(bom.metadata.timestamp, undefined);
});

test("CycloneDX: the ISO's nested components are exactly its erased paths (closure --json), with hashes; --audit adds each one's verdict", async (t) => {
  const s = scenario(t);
  if (!s) return;
  const closure = closureJson(s);
  const erased = closure.seals.find((x) => x.path === s.iso)!.erased;
  assert.deepEqual(sorted(erased), sorted(s.isoOnly));
  for (const audit of [false, true]) {
    const text = sbom(s, `bom-${audit}.json`, ...(audit ? ['--audit'] : []));
    assert.equal(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text), null);
    const bom = JSON.parse(text);
    const iso = bom.components.find((c: { 'bom-ref': string }) => c['bom-ref'] === s.iso);
    assert.equal(prop(iso, 'nix-seal:seal'), 'true');
    assert.deepEqual(iso.components.map((c: object) => prop(c, 'nix:storePath')), sorted(erased));
    for (const c of iso.components) {
      const p = prop(c, 'nix:storePath')!;
      assert.equal(c['bom-ref'], `${s.iso}!${p}`);
      assert.deepEqual(c.hashes, [{ alg: 'SHA-256', content: dbInfo(s, p).hex }]);
      // The seed ISO holds Rock Ridge copies of everything it erases: audit verifies each.
      assert.equal(prop(c, 'nix-seal:verdict'), audit ? 'verified' : undefined, p);
    }
    for (const c of bom.components) if (c !== iso) assert.equal(c.components, undefined);
  }
});

test('names and versions are split as builtins.parseDrvName splits them (nix-instantiate), for the scenario and for generated names', (t) => {
  const s = scenario(t);
  if (!s) return;
  const bom = JSON.parse(sbom(s, 'names.json'));
  const all = [...bom.components, ...bom.components.flatMap((c: { components?: object[] }) => c.components ?? [])];
  const names = all.map((c) => nameOf(prop(c, 'nix:storePath')!));
  const nix = nixParseDrvNames(s, names);
  all.forEach((c, i) => assert.deepEqual({ name: c.name, version: c.version ?? '' }, nix[i], names[i]));
  // Generated store path names (Nix's alphabet, dashes and digits weighted up), one evaluation for all.
  const seedValue = Number(process.env.NIX_SEAL_FC_SEED ?? 20261128);
  const gen = fc.array(fc.stringMatching(/^[A-Za-z0-9+._?=-]{1,24}$/), { minLength: 300, maxLength: 300 });
  const sample = fc.sample(gen, { seed: seedValue, numRuns: 1 })[0]!.map((n, i) => (i % 3 === 0 ? `${n}-${i}` : n));
  const fromNix = nixParseDrvNames(s, sample);
  sample.forEach((n, i) => assert.deepEqual(parseDrvName(n), fromNix[i], `${n} (fast-check seed ${seedValue})`));
});

test('SPDX 2.3: packages = kept ∪ erased paths; DESCRIBES the root, DEPENDS_ON = kept references, ISO CONTAINS its erased paths', (t) => {
  const s = scenario(t);
  if (!s) return;
  const doc = JSON.parse(sbom(s, 'bom.spdx.json', '--format', 'spdx', '--audit'));
  const closure = closureJson(s);
  const erased = closure.seals.find((x) => x.path === s.iso)!.erased;
  // What SPDX 2.3 requires of a document and of each package (spec clauses 6 and 7).
  assert.equal(doc.spdxVersion, 'SPDX-2.3');
  assert.equal(doc.dataLicense, 'CC0-1.0');
  assert.equal(doc.SPDXID, 'SPDXRef-DOCUMENT');
  assert.equal(typeof doc.name, 'string');
  assert.match(doc.documentNamespace, /^https:\/\/nix-seal\.invalid\/spdx\/[^#\s]+$/);
  assert.equal(doc.creationInfo.created, '1970-01-01T00:00:00Z');
  assert.match(doc.creationInfo.creators[0], /^Tool: nix-seal-\d+\.\d+\.\d+$/);
  const byId = new Map<string, { packageFileName: string }>();
  for (const p of doc.packages) {
    assert.match(p.SPDXID, /^SPDXRef-[A-Za-z0-9.-]+$/);
    assert.ok(!byId.has(p.SPDXID), `${p.SPDXID} is unique`);
    byId.set(p.SPDXID, p);
    assert.equal(p.downloadLocation, 'NOASSERTION');
    assert.equal(p.filesAnalyzed, false);
    const db = dbInfo(s, p.packageFileName);
    assert.deepEqual(p.checksums, [{ algorithm: 'SHA256', checksumValue: db.hex }]);
    assert.match(p.comment, new RegExp(`^nix:narSize=${db.size}(\n|$)`));
  }
  assert.deepEqual(doc.packages.map((p: { packageFileName: string }) => p.packageFileName), sorted([...closure.paths.map((p) => p.path), ...erased]));
  const rels = (type: string): string[] =>
    doc.relationships
      .filter((r: { relationshipType: string }) => r.relationshipType === type)
      .map((r: { spdxElementId: string; relatedSpdxElement: string; comment?: string }) => {
        const from = r.spdxElementId === 'SPDXRef-DOCUMENT' ? 'DOCUMENT' : byId.get(r.spdxElementId)!.packageFileName;
        return `${from} ${byId.get(r.relatedSpdxElement)!.packageFileName}${r.comment ? ` ${r.comment}` : ''}`;
      });
  assert.deepEqual(rels('DESCRIBES'), [`DOCUMENT ${s.launcher}`]);
  assert.deepEqual(sorted(rels('DEPENDS_ON')), sorted(closure.paths.flatMap((p) => p.references.filter((r) => r !== p.path).map((r) => `${p.path} ${r}`))));
  assert.deepEqual(rels('CONTAINS'), sorted(erased).map((e) => `${s.iso} ${e} nix-seal:verdict=verified`));
  assert.equal(doc.relationships.length, 1 + rels('DEPENDS_ON').length + erased.length);
});

test("--audit: every erased path's verdict is the one `audit --json` gives (a plain-directory seal: mentioned), in both formats", async (t) => {
  const s = scenario(t);
  if (!s) return;
  for (const [root, seal] of [[s.launcher, '*.iso'], [s.nixosSystem, s.nixosSystem]] as const) {
    const audit = JSON.parse(cli(s, 'audit', root, '--seal', seal, '--json').stdout) as { seals: { path: string; erased: { path: string; verdict: string }[] }[] };
    const expected = sorted(audit.seals.flatMap((x) => x.erased.map((e) => `${x.path} ${e.path} ${e.verdict}`)));
    assert.ok(expected.length > 0);
    const out = path.join(s.env.root, 'audited.json');
    const r = cli(s, 'sbom', root, '--seal', seal, '--audit', '-o', out);
    assert.equal(r.code, 0, r.stderr);
    const text = fs.readFileSync(out, 'utf8');
    assert.equal(await new Validation.JsonStrictValidator(Spec.Version.v1dot6).validate(text), null);
    const bom = JSON.parse(text);
    const got = bom.components.flatMap((c: { 'bom-ref': string; components?: object[] }) =>
      (c.components ?? []).map((e) => `${c['bom-ref']} ${prop(e, 'nix:storePath')} ${prop(e, 'nix-seal:verdict')}`),
    );
    assert.deepEqual(sorted(got), expected);
    const spdxOut = path.join(s.env.root, 'audited.spdx');
    assert.equal(cli(s, 'sbom', root, '--seal', seal, '--audit', '--format', 'spdx', '-o', spdxOut).code, 0);
    const doc = JSON.parse(fs.readFileSync(spdxOut, 'utf8'));
    const file = new Map(doc.packages.map((p: { SPDXID: string; packageFileName: string }) => [p.SPDXID, p.packageFileName]));
    const contains = doc.relationships
      .filter((x: { relationshipType: string }) => x.relationshipType === 'CONTAINS')
      .map((x: { spdxElementId: string; relatedSpdxElement: string; comment: string }) =>
        `${file.get(x.spdxElementId)} ${file.get(x.relatedSpdxElement)} ${x.comment.replace('nix-seal:verdict=', '')}`,
      );
    assert.deepEqual(sorted(contains), expected);
  }
  assert.match(JSON.stringify(JSON.parse(cli(s, 'audit', s.nixosSystem, '--seal', s.nixosSystem, '--json').stdout).summary), /"mentioned":3/);
});

test('deterministic: two runs are byte-identical in both formats; --timestamp records the time', (t) => {
  const s = scenario(t);
  if (!s) return;
  assert.equal(sbom(s, 'a.json'), sbom(s, 'b.json'));
  assert.equal(sbom(s, 'a.spdx', '--format', 'spdx'), sbom(s, 'b.spdx', '--format', 'spdx'));
  // The ISO found by its bytes gives the same document as the ISO declared.
  const out = path.join(s.env.root, 'detected.json');
  const d = cli(s, 'sbom', s.launcher, '--seal-images', '-o', out);
  assert.equal(d.code, 0, d.stderr);
  assert.equal(fs.readFileSync(out, 'utf8'), sbom(s, 'declared.json'));
  const before = Date.now() - 1000;
  const bom = JSON.parse(sbom(s, 'ts.json', '--timestamp'));
  const ts = Date.parse(bom.metadata.timestamp);
  assert.ok(ts >= before && ts <= Date.now(), bom.metadata.timestamp);
  const doc = JSON.parse(sbom(s, 'ts.spdx', '--format', 'spdx', '--timestamp'));
  assert.match(doc.creationInfo.created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.notEqual(doc.creationInfo.created, '1970-01-01T00:00:00Z');
  // -o - writes the document to standard output, nothing else.
  const r = cli(s, 'sbom', s.launcher, '--seal', '*.iso', '-o', '-');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, sbom(s, 'c.json'));
});

test('bad input: an unknown --format or no -o is a one-line usage error (exit 2); an output directory that does not exist is a one-line error; no file is left', (t) => {
  const s = scenario(t);
  if (!s) return;
  const out = path.join(s.env.root, 'bad.json');
  const r = cli(s, 'sbom', s.launcher, '--format', 'xml', '-o', out);
  assert.equal(r.code, 2);
  assert.ok(isOneLineError(r), r.stderr);
  assert.match(r.stderr, /xml/);
  const noOut = cli(s, 'sbom', s.launcher);
  assert.equal(noOut.code, 2);
  assert.ok(isOneLineError(noOut), noOut.stderr);
  const missing = path.join(s.env.root, 'no-such-dir', 'x.json');
  const m = cli(s, 'sbom', s.launcher, '-o', missing);
  assert.notEqual(m.code, 0);
  assert.ok(isOneLineError(m), m.stderr);
  assert.match(m.stderr, /Cannot write .*no-such-dir/);
  assert.ok(!fs.existsSync(out));
  assert.deepEqual(fs.readdirSync(s.env.root).filter((f) => f.startsWith('bad')), []);
});
