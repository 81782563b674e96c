/** Scratch directories and stream draining shared by the tests and the benchmarks. */
import { chmodSync, lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, type TestContext } from 'node:test';

/**
 * A fresh directory under the system's temp directory, removed after the test, even when a tool
 * left read-only directories in it (xorriso extracts them so).
 */
export function tempDir(t: TestContext, prefix = 'nix-seal-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => removeTree(dir));
  return dir;
}

/** A fresh directory for the whole test file (module scope), removed after its last test. */
export function fileTempDir(prefix = 'nix-seal-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => removeTree(dir));
  return dir;
}

/** rm -rf, making directories writable first when a read-only one stops the removal (not root). */
export function removeTree(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    const open = (d: string): void => {
      chmodSync(d, 0o700);
      for (const e of readdirSync(d)) if (lstatSync(join(d, e)).isDirectory()) open(join(d, e));
    };
    open(dir);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** All the chunks of a byte stream, concatenated. */
export async function collect(chunks: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c);
  return Buffer.concat(parts);
}
