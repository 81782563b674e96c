import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import { NixSealError } from '../errors.js';
import { formatHashHex, formatHashNix32, formatHashSri } from './hash.js';
import { NIX32_ALPHABET } from './nix32.js';
import { parseCacheInfo, parseNarInfo } from './narinfo.js';
import type { StorePath } from './store-path.js';
import { seeded } from '../../test/support/property.js';
import { prng } from '../../test/support/prng.js';

const SD = '/nix/store';
const h = { algo: 'sha256' as const, digest: Uint8Array.from(createHash('sha256').update('nar').digest()) };
const A = 'a'.repeat(32) + '-hello-2.12';
const B = 'b'.repeat(32) + '-glibc-2.37';
const C = 'c'.repeat(32) + '-hello-2.12.drv';
const URL_ = 'http://cache/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.narinfo';

/** What `nix copy --to file://` (Nix 2.8) writes. */
const real = `StorePath: ${SD}/${A}
URL: nar/1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar.xz
Compression: xz
FileHash: sha256:1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3
FileSize: 50088
NarHash: ${formatHashNix32(h)}
NarSize: 226488
References: ${B} ${A}
Deriver: ${C}
Sig: cache.nixos.org-1:abc==
`;

const err = (re: RegExp) => (e: unknown) => e instanceof NixSealError && re.test(e.message) && !e.message.includes('\n');

test('a real narinfo parses: references sorted and absolute, deriver absolute', () => {
  const n = parseNarInfo(real, URL_, SD, `${SD}/${A}` as StorePath);
  assert.equal(n.storePath, `${SD}/${A}`);
  assert.equal(n.url, 'nar/1w1fff338fvdw53sqgamddn1b2xgds473pv6y13gizdbqjv4i5p3.nar.xz');
  assert.equal(n.compression, 'xz');
  assert.equal(n.fileSize, 50088);
  assert.equal(n.narSize, 226488);
  assert.deepEqual(n.references, [`${SD}/${A}`, `${SD}/${B}`]);
  assert.equal(n.deriver, `${SD}/${C}`);
  assert.deepEqual(n.sigs, ['cache.nixos.org-1:abc==']);
});

test('tolerant: unknown fields, no References, unknown-deriver, repeated Sig, CRLF, Compression defaults to bzip2', () => {
  const text = [
    `StorePath: ${SD}/${A}`,
    'URL: nar/x.nar.bz2',
    `NarHash: ${formatHashSri(h)}`,
    'NarSize: 12',
    'Deriver: unknown-deriver',
    'Sig: k1:aa',
    'Sig: k2:bb',
    'X-Harmonia-Thing: whatever: really',
    '',
  ].join('\r\n');
  const n = parseNarInfo(text, URL_, SD);
  assert.equal(n.compression, 'bzip2');
  assert.deepEqual(n.references, []);
  assert.equal(n.deriver, undefined);
  assert.deepEqual(n.sigs, ['k1:aa', 'k2:bb']);
  for (const form of [formatHashHex(h), formatHashNix32(h), formatHashSri(h)]) {
    assert.equal(parseNarInfo(real.replace(formatHashNix32(h), form), URL_, SD).narHash, form);
  }
  // An empty References line (what some servers write) is no references.
  assert.deepEqual(parseNarInfo(real.replace(/^References:.*$/m, 'References: '), URL_, SD).references, []);
});

test('strict: wrong StorePath, bad hash, bad size, bad reference name, missing fields — URL and line named', () => {
  const line = (n: number) => new RegExp(`^Cannot parse ${URL_.replace(/[.]/g, '\\.')} line ${n}: `);
  assert.throws(() => parseNarInfo(real, URL_, SD, `${SD}/${B}` as StorePath), err(/line 1: StorePath is .*hello-2\.12, but the cache was asked for .*glibc/));
  assert.throws(() => parseNarInfo(real.replace(`${SD}/${A}`, `/other/${A}`), URL_, SD), err(/line 1: StorePath '\/other\/.*' is not in the store \/nix\/store/));
  assert.throws(() => parseNarInfo(real.replace(formatHashNix32(h), 'sha256:zzzz'), URL_, SD), err(line(6)));
  assert.throws(() => parseNarInfo(real.replace(/^FileHash:.*$/m, 'FileHash: md5:00'), URL_, SD), err(/line 4: FileHash 'md5:00' is not a hash/));
  assert.throws(() => parseNarInfo(real.replace('NarSize: 226488', 'NarSize: 12x'), URL_, SD), err(/line 7: NarSize '12x' is not a number/));
  assert.throws(() => parseNarInfo(real.replace('FileSize: 50088', 'FileSize: -1'), URL_, SD), err(/line 5: FileSize '-1' is not a number/));
  assert.throws(() => parseNarInfo(real.replace(`References: ${B}`, 'References: ../etc'), URL_, SD), err(/line 8: reference '\.\.\/etc' is not a store path name/));
  assert.throws(() => parseNarInfo(real.replace(/^NarHash:.*\n/m, ''), URL_, SD), err(/: it has no NarHash line$/));
  assert.throws(() => parseNarInfo(real.replace(/^URL:.*\n/m, ''), URL_, SD), err(/: it has no URL line$/));
  assert.throws(() => parseNarInfo('<html>Not Found</html>\n', URL_, SD), err(/line 1: expected 'Name: value'/));
});

test('nix-cache-info', () => {
  assert.deepEqual(parseCacheInfo('StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 40\n', 'file:///c/nix-cache-info'), {
    storeDir: '/nix/store',
    wantMassQuery: true,
    priority: 40,
  });
  assert.deepEqual(parseCacheInfo('StoreDir: /tmp/x/store/\nFoo: bar\n', 'u'), { storeDir: '/tmp/x/store' });
  assert.throws(() => parseCacheInfo('StoreDir: nix/store\n', 'u'), err(/^Cannot parse u line 1: StoreDir 'nix\/store' is not an absolute path$/));
  assert.throws(() => parseCacheInfo('\nPriority: high\n', 'u'), err(/^Cannot parse u line 2: Priority 'high' is not a number$/));
});

const nix32 = (n: number) => fc.string({ unit: fc.constantFrom(...NIX32_ALPHABET), minLength: n, maxLength: n });
const baseNameArb = fc.tuple(nix32(32), fc.stringMatching(/^[a-z0-9][a-z0-9+._-]{0,20}$/)).map(([hp, name]) => `${hp}-${name}`);

test('property: any field order, extra fields and reference order give the same record', () => {
  fc.assert(
    fc.property(
      baseNameArb,
      fc.uniqueArray(baseNameArb, { maxLength: 6 }),
      fc.nat({ max: 2 ** 40 }),
      fc.array(fc.tuple(fc.stringMatching(/^X-[A-Za-z]{1,8}$/), fc.stringMatching(/^[ -~]{0,20}$/)), { maxLength: 3 }),
      fc.integer(),
      (self, refs, narSize, extra, shuffleSeed) => {
        const lines = [
          `StorePath: ${SD}/${self}`,
          'URL: nar/x.nar',
          'Compression: none',
          `NarHash: ${formatHashNix32(h)}`,
          `NarSize: ${narSize}`,
          `References: ${refs.join(' ')}`,
          ...extra.map(([k, v]) => `${k}: ${v}`),
        ];
        // A deterministic shuffle from the generated seed (fast-check replays it on failure).
        const rand = prng(shuffleSeed);
        for (let i = lines.length - 1; i > 0; i--) {
          const j = Math.floor(rand() * (i + 1));
          [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        }
        const n = parseNarInfo(lines.join('\n') + '\n', URL_, SD, `${SD}/${self}` as StorePath);
        assert.equal(n.narSize, narSize);
        assert.deepEqual(n.references, refs.map((r) => `${SD}/${r}`).sort());
      },
    ),
    seeded(),
  );
});

test('property: arbitrary text either parses or fails with one EPARSE line naming the URL', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.string(), fc.constantFrom(...real.split('\n'))), { maxLength: 12 }), (ls) => {
      try {
        parseNarInfo(ls.join('\n'), URL_, SD);
      } catch (e) {
        assert.ok(e instanceof NixSealError && e.code === 'EPARSE', String(e));
        assert.ok(e.message.startsWith(`Cannot parse ${URL_}`) && !e.message.includes('\n'), e.message);
      }
    }),
    seeded(),
  );
});
