/**
 * The progress bars (initrd, audit), and when not to show one. A bar is escape codes: fine on a person's
 * terminal, noise in a pipe, a CI log or a Nix build log (Nix gives builders a pseudo-terminal, so
 * isTTY alone says yes there).
 */

/** Why no progress bar may be drawn, or undefined when one may. */
export function noProgressReason(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!stream.isTTY) return 'stderr is not a terminal';
  if (env.TERM === undefined || env.TERM === '' || env.TERM === 'dumb') return 'TERM is unset or dumb';
  // https://no-color.org: any non-empty value.
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return 'NO_COLOR is set';
  if (env.CI !== undefined && env.CI !== '' && env.CI !== 'false') return 'CI is set';
  // Nix (2.x) sets these for every builder (derivation-goal's initEnv): NIX_BUILD_TOP and TMPDIR
  // the build directory, NIX_LOG_FD=2, HOME=/homeless-shelter.
  if (env.NIX_BUILD_TOP !== undefined || env.NIX_LOG_FD !== undefined || env.HOME === '/homeless-shelter') return 'inside a Nix build';
  return undefined;
}

export interface Progress {
  update: (done: number, total: number) => void;
  /** Erases the bar and leaves the cursor at the start of its (now empty) line. Idempotent. */
  stop: () => void;
}

/**
 * A progress bar over bytes (archived by `initrd`, hashed by `audit`: `label`), on `stream`.
 * Loaded on demand: start-up stays lean.
 */
export async function progressBar(stream: NodeJS.WriteStream, label = 'initrd'): Promise<Progress> {
  const { SingleBar, Presets } = (await import('cli-progress')).default;
  const bar = new SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total} MiB`, hideCursor: true, clearOnComplete: true, stream },
    Presets.shades_classic,
  );
  let state: 'idle' | 'running' | 'stopped' = 'idle';
  return {
    update: (done, total) => {
      if (state === 'stopped') return;
      const mib = (n: number): number => Math.round(n / 1048576);
      if (state === 'idle') (bar.start(mib(total), 0), (state = 'running'));
      bar.update(mib(done));
    },
    stop: () => {
      if (state === 'running') bar.stop();
      state = 'stopped';
    },
  };
}
