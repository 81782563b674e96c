import assert from 'node:assert/strict';
import { test } from 'node:test';
import { noProgressReason } from './progress.js';

test('a progress bar only on an interactive terminal outside CI and Nix builds', () => {
  const tty = { isTTY: true };
  const term = { TERM: 'xterm-256color' };
  assert.equal(noProgressReason(tty, term), undefined);
  assert.equal(noProgressReason({ isTTY: false }, term), 'stderr is not a terminal');
  assert.equal(noProgressReason({}, term), 'stderr is not a terminal');
  assert.equal(noProgressReason(tty, {}), 'TERM is unset or dumb');
  assert.equal(noProgressReason(tty, { TERM: 'dumb' }), 'TERM is unset or dumb');
  assert.equal(noProgressReason(tty, { ...term, NO_COLOR: '1' }), 'NO_COLOR is set');
  assert.equal(noProgressReason(tty, { ...term, NO_COLOR: '' }), undefined, 'NO_COLOR counts only when non-empty');
  assert.equal(noProgressReason(tty, { ...term, CI: 'true' }), 'CI is set');
  assert.equal(noProgressReason(tty, { ...term, CI: 'false' }), undefined);
  // What Nix 2.8 gives a builder (checked in test/terminal-e2e.test.ts with a real build's log).
  for (const v of [{ NIX_BUILD_TOP: '/build' }, { NIX_LOG_FD: '2' }, { HOME: '/homeless-shelter' }]) {
    assert.equal(noProgressReason(tty, { ...term, ...v }), 'inside a Nix build', JSON.stringify(v));
  }
});
