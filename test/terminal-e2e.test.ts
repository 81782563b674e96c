/**
 * `initrd`'s progress bar on real terminals and in real build logs: in tmux (a real terminal
 * emulator) the final "wrote …" line stands intact on its own line, wherever the cursor was; with
 * no terminal, TERM=dumb, NO_COLOR, CI or inside a Nix build not one escape byte is written; and
 * makeSealedInitrd's stored build log (Nix gives builders a pseudo-terminal) has none either.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CLI } from './support/cli.js';
import { buildNixSealDrv } from './support/nix-seal-drv.js';
import { withSeedScenario, type SeedScenario } from './support/seed-scenario.js';

const NIX_FUNCTIONS = fileURLToPath(new URL('../../nix/default.nix', import.meta.url));
const seed = withSeedScenario('nix-seal-terminal-');
after(() => seed.cleanup());

const scenario = (t: TestContext, ...tools: string[]): SeedScenario | undefined => seed.need(t, 'zstd', ...tools);

const ESC = '\x1b';
/** Variables that turn the bar off; the "terminal" runs below start from an environment without them. */
const QUIET_VARS = ['CI', 'NO_COLOR', 'NIX_BUILD_TOP', 'NIX_LOG_FD'];
const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** `env -u …  VAR=… node bin/nix-seal.js ARGS` as one shell command. */
function cliCommand(s: SeedScenario, args: string[], extra: Record<string, string> = {}): string {
  const vars = { ...s.env.env, TERM: 'xterm-256color', HOME: '/root', ...extra };
  const set = Object.entries(vars)
    .filter(([k, v]) => v !== undefined && !QUIET_VARS.includes(k) || k in extra)
    .map(([k, v]) => `${k}=${shq(String(v))}`);
  return `env ${QUIET_VARS.map((v) => `-u ${v}`).join(' ')} ${set.join(' ')} ${shq(process.execPath)} ${shq(CLI)} ${args.map(shq).join(' ')}`;
}

/**
 * Runs `script` in a fresh tmux server (its own socket) on a W×H terminal and returns the screen
 * and its scroll-back as tmux renders them, once the script printed __END__.
 */
async function inTmux(dir: string, script: string, width = 100, height = 30): Promise<string[]> {
  const sock = path.join(dir, `tmux-${process.pid}-${Math.random().toString(36).slice(2)}.sock`);
  const file = `${sock}.sh`;
  fs.writeFileSync(file, `${script}\necho __END__\nsleep 60\n`);
  const tmux = (...a: string[]) => spawnSync('tmux', ['-S', sock, ...a], { encoding: 'utf8' });
  const started = tmux('new-session', '-d', '-x', String(width), '-y', String(height), 'sh', file);
  assert.equal(started.status, 0, started.stderr);
  try {
    for (let i = 0; i < 600; i++) {
      const shot = tmux('capture-pane', '-p', '-J', '-S', '-200').stdout;
      if (shot.includes('__END__')) return shot.split('\n');
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`tmux: no __END__ after 60 s:\n${tmux('capture-pane', '-p', '-S', '-200').stdout}`);
  } finally {
    tmux('kill-server');
    fs.rmSync(file, { force: true });
  }
}

/** The raw bytes a command writes to a pseudo-terminal (util-linux `script`), stdout and stderr together. */
function rawPty(command: string): string {
  const r = spawnSync('script', ['-q', '-e', '-c', command, '/dev/null'], { encoding: 'latin1', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  return r.stdout;
}

const SUMMARY = /^wrote \S+: \d+ store paths, \d+ entries, .* cpio → .* zstd$/;

test('tmux: the summary line stands intact after the progress bar, mid-screen and at the bottom', async (t) => {
  const s = scenario(t, 'tmux', 'script');
  if (!s) return;
  // The unsealed closure: the ISO's 4 MiB kernel twice, so the bar has something to count.
  const out = path.join(s.env.root, 'tty.zst');
  const run = cliCommand(s, ['initrd', '--init', s.launcher, '-o', out]);
  // The bar is really drawn on such a terminal (so the checks below look at a run that had one).
  assert.ok(rawPty(run).includes('initrd ['), 'a progress bar on a terminal');
  for (const [where, before] of [
    ['mid-screen', 'clear; echo first line'],
    ['at the bottom', 'clear; seq 1 80'],
  ] as const) {
    const screen = await inTmux(s.env.root, `${before}\n${run}\necho after`);
    const i = screen.findIndex((l) => l.startsWith('wrote '));
    assert.ok(i >= 0, `${where}: no summary line:\n${screen.join('\n')}`);
    assert.match(screen[i]!.trimEnd(), SUMMARY, `${where}: the summary is cut or glued:\n${screen.join('\n')}`);
    assert.equal(screen[i + 1], 'after', `${where}: the next output follows the summary:\n${screen.join('\n')}`);
    assert.ok(!screen.some((l) => l.includes('initrd [')), `${where}: the bar is left on screen:\n${screen.join('\n')}`);
  }
});

test('no bar and no escape byte when TERM=dumb, NO_COLOR, CI, inside a Nix build, or stderr is not a terminal', (t) => {
  const s = scenario(t, 'script');
  if (!s) return;
  const out = path.join(s.env.root, 'quiet.zst');
  const args = ['initrd', '--init', s.launcher, '-o', out];
  const quiet: Record<string, string>[] = [{ TERM: 'dumb' }, { NO_COLOR: '1' }, { CI: 'true' }, { NIX_BUILD_TOP: '/build' }, { NIX_LOG_FD: '2' }, { HOME: '/homeless-shelter' }];
  for (const extra of quiet) {
    const raw = rawPty(cliCommand(s, args, extra));
    assert.ok(!raw.includes(ESC), `${JSON.stringify(extra)}: escape bytes in ${JSON.stringify(raw)}`);
    assert.match(raw, /wrote /, JSON.stringify(extra));
  }
  // stderr into a pipe, stdout on the terminal.
  const piped = rawPty(`${cliCommand(s, args)} 2>&1 | cat`);
  assert.ok(!piped.includes(ESC), JSON.stringify(piped));
});

test("makeSealedInitrd's build log (a pseudo-terminal) has no escape bytes, and the summary", (t) => {
  const s = scenario(t, 'nix-instantiate');
  if (!s) return;
  const cli = buildNixSealDrv(s.env);
  const file = path.join(s.env.root, 'log-initrd.nix');
  fs.writeFileSync(
    file,
    `(import ${NIX_FUNCTIONS} { nix-seal = ${cli.expr}; }).makeSealedInitrd { name = "initrd-log"; contents = [ { object = builtins.storePath "${s.launcher}"; symlink = "/init"; } ]; }\n`,
  );
  const [out] = s.env.build(fs.readFileSync(file, 'utf8'));
  assert.ok(out && fs.statSync(path.join(out, 'initrd')).size > 4_000_000, 'built the unsealed initrd');
  const drv = spawnSync('nix-instantiate', [file], { env: s.env.env, encoding: 'utf8' }).stdout.trim();
  const log = spawnSync('nix-store', ['-l', drv], { env: s.env.env, encoding: 'latin1' });
  assert.equal(log.status, 0, log.stderr);
  assert.match(log.stdout, /^wrote \S+\/initrd: /m, `the builder's output is in the log: ${JSON.stringify(log.stdout)}`);
  assert.ok(!log.stdout.includes(ESC), `escape bytes in the build log: ${JSON.stringify(log.stdout)}`);
});
