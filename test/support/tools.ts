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

/**
 * Tests that need real tools (nix-store, xorriso, qemu, …) must run in CI: there a missing tool
 * fails the test. Elsewhere the test is skipped, visibly, with the tool named.
 * Returns false when the caller should return early (skipped).
 */
export function requireTools(t: TestContext, ...cmds: string[]): boolean {
  const missing = cmds.filter((c) => which(c) === undefined);
  if (missing.length === 0) return true;
  const msg = `needs ${missing.join(', ')} (apt-get install: see .ci/run)`;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${msg}`);
  t.skip(msg);
  return false;
}
