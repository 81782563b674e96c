/**
 * A private, offline Nix store in a temp dir, for tests, benches and demos that need a real
 * `nix-store` database and real references (as computed by Nix itself, not by us).
 *
 * Everything is steered through environment variables, so any Nix command run with `env.env`
 * talks to the private store and never to /nix, the daemon, the network or the user's config.
 * Works with Debian's nix-bin (Nix 2.8), as root or unprivileged.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface NixEnv {
  /** The temp dir holding everything below. */
  root: string;
  /** root + '/store' (NIX_STORE_DIR). */
  storeDir: string;
  /** root + '/var' (NIX_STATE_DIR); the database is stateDir/db/db.sqlite. */
  stateDir: string;
  /** process.env plus the variables that point Nix at this private store. */
  env: NodeJS.ProcessEnv;
  /** Run a command with `env` (cwd = root); returns stdout. Throws an Error including stderr on failure. */
  run(cmd: string, args: string[], opts?: { input?: string }): string;
  /** `nix-store <args>` against the private store; returns stdout. */
  nixStore(args: string[]): string;
  /** nix-build a Nix expression (text); returns the out paths (one per line of output). */
  build(expr: string): string[];
  /** rm -rf root (making the read-only store files writable first). */
  cleanup(): void;
}

/**
 * Settings every Nix call needs here; written to NIX_CONF_DIR/nix.conf (Nix 2.8 honours it, so no
 * `--option` flags are needed on the command line).
 */
const NIX_CONF = [
  // Otherwise root builds run as `nixbld*` users, which cannot write to our temp store
  // ("cannot create …/store/…: Permission denied"), and non-root would need the group to exist.
  'build-users-group =',
  // The default sandbox hides /bin/sh and /usr/bin from the builder
  // ("executing '/bin/sh': No such file or directory"); our derivations use the host's tools.
  'sandbox = false',
  // Offline: never ask cache.nixos.org (or anything else) for substitutes.
  'substituters =',
  // Nix would otherwise create an 8 MiB var/db/reserved file in every temp store.
  'gc-reserved-space = 0',
  // No flakes, no nix-command surprises from a newer default config.
  'experimental-features =',
  '',
].join('\n');

/** Create a fresh private store in a new temp dir (initialised: stateDir/db/db.sqlite exists). */
export function makeNixEnv(prefix = 'nix-seal-test-'): NixEnv {
  // realpath: Nix refuses store dirs whose path goes through a symlink (e.g. /tmp on macOS).
  const root = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  const storeDir = join(root, 'store');
  const stateDir = join(root, 'var');
  const confDir = join(root, 'etc-nix');
  const home = join(root, 'home');
  const tmp = join(root, 'tmp');
  for (const d of [confDir, home, tmp]) mkdirSync(d, { recursive: true });
  const confFile = join(confDir, 'nix.conf');
  writeFileSync(confFile, NIX_CONF);

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NIX_STORE_DIR: storeDir,
    NIX_STATE_DIR: stateDir,
    NIX_LOG_DIR: join(stateDir, 'log', 'nix'),
    // Empty = local store opened directly, never the daemon.
    NIX_REMOTE: '',
    // Replaces /etc/nix (the system nix.conf, e.g. Debian's `sandbox = false` one).
    NIX_CONF_DIR: confDir,
    // User-level config would otherwise come from $XDG_CONFIG_HOME/nix/nix.conf and
    // $XDG_CONFIG_DIRS; NIX_USER_CONF_FILES takes precedence over both.
    NIX_USER_CONF_FILES: confFile,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    // No <nixpkgs> or other lookup paths: expressions must be self-contained.
    NIX_PATH: '',
    // Build dirs (nix-build-<name>.drv-N) land inside root, so leftovers go with cleanup().
    TMPDIR: tmp,
  };
  // NIX_CONFIG (extra config lines from the environment) would override our nix.conf.
  delete env.NIX_CONFIG;

  const run = (cmd: string, args: string[], opts: { input?: string } = {}): string => {
    try {
      return execFileSync(cmd, args, {
        env,
        cwd: root,
        encoding: 'utf8',
        input: opts.input,
        stdio: ['pipe', 'pipe', 'pipe'],
        maxBuffer: 256 * 1024 * 1024,
      });
    } catch (e) {
      const err = e as { status?: number | null; signal?: string | null; stderr?: string | Buffer; message?: string };
      const stderr = err.stderr === undefined ? '' : String(err.stderr).trim();
      const how = err.status != null ? `exit ${err.status}` : err.signal ? `signal ${err.signal}` : (err.message ?? 'error');
      throw new Error(`${cmd} ${args.join(' ')} failed (${how})${stderr ? `:\n${stderr}` : ''}`, { cause: e });
    }
  };

  const nixStore = (args: string[]): string => run('nix-store', args);

  let exprCount = 0;
  const build = (expr: string): string[] => {
    // Through a file rather than -E: errors then point at expr-N.nix:line:col, and the file
    // stays in root for inspection when a test fails.
    const file = join(root, `expr-${++exprCount}.nix`);
    writeFileSync(file, expr);
    // --no-out-link: no ./result symlinks (and no GC roots; nothing collects garbage here).
    const out = run('nix-build', ['--no-out-link', file]);
    return out.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  };

  const cleanup = (): void => {
    // Nix makes store paths read-only (dirs 0555); an unprivileged rm could not delete their entries.
    try {
      execFileSync('chmod', ['-R', 'u+w', root], { stdio: 'ignore' });
    } catch {
      // Already gone, or partially: rmSync below reports anything that really matters.
    }
    rmSync(root, { recursive: true, force: true });
  };

  // Create the database now, so code that opens db.sqlite directly works before any build.
  run('nix-store', ['--init']);

  return { root, storeDir, stateDir, env, run, nixStore, build, cleanup };
}
