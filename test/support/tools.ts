import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** Where a command is on PATH, or undefined. */
export function which(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v "$1"`, 'sh', cmd], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The tier running, from NIX_SEAL_TEST_TIER (set by `npm run test:unit`): 'unit', 'e2e' or undefined (a file run by hand). */
export const testTier = (): string | undefined => process.env.NIX_SEAL_TEST_TIER;

/**
 * The one way a test may skip: visibly, with the reason, when run by hand; under CI=true a test
 * that cannot run is a failure, so CI never passes by skipping. Always returns false, for
 * `return skipOrFail(t, why)` style early returns.
 */
export function skipOrFail(t: TestContext, why: string): false {
  if (process.env.CI === 'true') throw new Error(`CI=true but this test cannot run: ${why}`);
  t.skip(why);
  return false;
}

/**
 * Skips (or fails under CI) unless `ok`: for conditions that are not a command on PATH, such as a
 * native addon that did not load or a kernel feature. Returns `ok`.
 */
export function requireThat(t: TestContext, ok: boolean, why: string): boolean {
  return ok || skipOrFail(t, why);
}

/**
 * Tests that need real tools (nix-store, xorriso, qemu, …) must run in CI: there a missing tool
 * fails the test. Elsewhere the test is skipped, visibly, with the tool named.
 * Such tests are end-to-end: they live in test/, and the unit tier (src/**\/*.test.ts, run with
 * NIX_SEAL_TEST_TIER=unit) refuses them, so a misfiled test shows up at once.
 * Returns false when the caller should return early (skipped).
 */
export function requireTools(t: TestContext, ...cmds: string[]): boolean {
  if (testTier() === 'unit') {
    throw new Error(`a unit test may not need external tools (${cmds.join(', ')}): move it to an end-to-end file under test/`);
  }
  const missing = cmds.filter((c) => which(c) === undefined);
  if (missing.length === 0) return true;
  return skipOrFail(t, `needs ${missing.join(', ')} (apt-get install: see .ci/setup)`);
}
