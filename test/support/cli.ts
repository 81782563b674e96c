import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The checkout's CLI entry point (dist/test/support → repo root). */
export const CLI = fileURLToPath(new URL('../../../bin/nix-seal.js', import.meta.url));

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `node bin/nix-seal.js ARGS` as a user would, in `env`. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string): CliRun {
  const r = spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', cwd, maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The non-empty lines of a command's output (one store path a line, and the like). */
export const nonEmptyLines = (s: string): string[] => s.split('\n').filter((l) => l !== '');

/**
 * Asserts the shape every user-facing failure must have: exit 2, one line `nix-seal: message`,
 * optionally followed by one `nix-seal: hint: …` line, no stack trace.
 */
export function isOneLineError(r: CliRun): boolean {
  const lines = r.stderr.trimEnd().split('\n');
  return (
    r.code === 2 &&
    (lines.length === 1 || (lines.length === 2 && lines[1]!.startsWith('nix-seal: hint: '))) &&
    lines[0]!.startsWith('nix-seal: ') &&
    !lines[0]!.startsWith('nix-seal: hint: ') &&
    !/\n\s+at /.test(r.stderr)
  );
}
