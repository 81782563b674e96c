/** nix32 against the real `nix-hash --to-base32`. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { encodeNix32 } from '../../src/store/nix32.js';
import { requireTools } from '../support/tools.js';

test('nix32 matches nix-hash --to-base32', (t) => {
  if (!requireTools(t, 'nix-hash')) return;
  for (const input of ['', 'a', 'nix-seal', 'x'.repeat(1000)]) {
    const hex = createHash('sha256').update(input).digest('hex');
    const nix = execFileSync('nix-hash', ['--type', 'sha256', '--to-base32', hex], { encoding: 'utf8' }).trim();
    assert.equal(encodeNix32(Buffer.from(hex, 'hex')), nix);
  }
});
