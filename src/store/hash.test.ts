import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { formatHashHex, formatHashNix32, formatHashSri, hashesEqual, parseHash } from './hash.js';

const digest = createHash('sha256').update('hello').digest();
const h = { algo: 'sha256' as const, digest: Uint8Array.from(digest) };

test('every narHash encoding Nix writes parses to the same digest', () => {
  const forms = [
    formatHashNix32(h), // closureInfo, narinfo
    formatHashHex(h), // SQLite hash column
    digest.toString('hex'), // nix-store --dump-db (bare hex)
    formatHashSri(h), // nix path-info --json (2.19+)
    `sha256:${digest.toString('base64')}`,
  ];
  for (const f of forms) assert.ok(hashesEqual(parseHash(f, 'sha256'), h), f);
});

test('malformed hashes are rejected with the text in the message', () => {
  for (const bad of ['sha256:xyz', 'md7:abcd', 'sha256-AAAA', 'sha256:' + 'e'.repeat(52), digest.toString('hex').slice(2)]) {
    assert.throws(() => parseHash(bad, 'sha256'), (e: Error) => e.message.includes(bad));
  }
  assert.throws(() => parseHash(digest.toString('hex')), /Cannot parse hash/); // bare digest needs a default algo
});
