/**
 * The npm package as a user gets it: `npm pack`, installed into an empty directory from the
 * tarball (dependencies from the npm cache, else the registry), then `npx nix-seal closure` on a small
 * private Nix store, compared with `nix-store -qR`; and the library imported by its name.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sqliteDriverName } from '../src/sources/sqlite-driver.js';
import { makeNixEnv, type NixEnv } from './support/nix-env.js';
import { NIX_MK } from './support/nix-expr.js';
import { requireTools } from './support/tools.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
let env: NixEnv | undefined;
const dirs: string[] = [];
after(() => {
  env?.cleanup();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const EXPR = `
let
  ${NIX_MK}
  lib = mk "libfoo-1.0" { } ''mkdir -p $out/lib; echo libfoo > $out/lib/libfoo.so'';
  app = mk "app-1.0" { } ''mkdir -p $out/bin; echo "uses \${lib}/lib/libfoo.so" > $out/bin/app'';
in [ app ]
`;

test('npm pack holds only the library, the CLI, nix/, README and LICENSE; installed from the tarball, npx nix-seal closure is nix-store -qR', (t) => {
  if (!requireTools(t, 'npm', 'npx', 'nix-build', 'nix-store', 'tar')) return;
  // This Node first on PATH: npm, npx and the CLI run on the Node under test (20 or 24).
  const path = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;
  const run = (cmd: string, args: string[], cwd: string, extraEnv: NodeJS.ProcessEnv = {}): string =>
    execFileSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ...extraEnv, PATH: path }, stdio: ['ignore', 'pipe', 'pipe'] });

  const tmp = mkdtempSync(join(tmpdir(), 'nix-seal-pack-'));
  dirs.push(tmp);
  // dist/src is fresh: `npm test` compiled it. --ignore-scripts: no second build by `prepare`.
  const tgzName = run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', tmp], REPO).trim().split('\n').pop()!;
  const tgz = join(tmp, tgzName);
  const files = run('tar', ['-tzf', tgz], tmp).split('\n').filter((l) => l !== '');
  for (const f of ['package/package.json', 'package/LICENSE', 'package/README.md', 'package/bin/nix-seal.js', 'package/nix/default.nix', 'package/dist/src/index.js', 'package/dist/src/index.d.ts', 'package/dist/src/cli/main.js']) {
    assert.ok(files.includes(f), `${f} is in the package`);
  }
  const stray = files.filter((f) => !/^package\/(package\.json|LICENSE|README\.md|bin\/|nix\/|dist\/src\/)/.test(f) || /\.test\.|\.map$/.test(f));
  assert.deepEqual(stray, [], 'nothing else: no tests, benchmarks, demo, source maps');

  // An empty directory, the tarball installed into it: dependencies from the npm cache (package
  // metadata, which `npm ci` does not cache, from the registry).
  // --ignore-scripts: nix-seal needs no install script; the only one is better-sqlite3's (the
  // optional Node 20 driver), which compiles its addon. On Node ≥ 22.13 nothing is compiled.
  const app = join(tmp, 'app');
  mkdirSync(app);
  const t0 = Date.now();
  run('npm', ['install', '--prefer-offline', '--ignore-scripts', '--no-audit', '--no-fund', tgz], app);
  t.diagnostic(`npm install of the tarball: ${((Date.now() - t0) / 1000).toFixed(1)} s on Node ${process.versions.node}`);
  const installed = join(app, 'node_modules', 'nix-seal');
  assert.ok(existsSync(join(installed, 'dist', 'src', 'index.js')));
  if (sqliteDriverName() === 'better-sqlite3') {
    // Node 20: the addon `npm ci` compiled for this checkout, rather than a second compile here.
    const version = (dir: string): string => (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    const ours = join(REPO, 'node_modules', 'better-sqlite3');
    const theirs = join(app, 'node_modules', 'better-sqlite3');
    assert.equal(version(theirs), version(ours), 'the same better-sqlite3 as the lock file');
    cpSync(join(ours, 'build'), join(theirs, 'build'), { recursive: true });
  }

  env = makeNixEnv('nix-seal-pack-store-');
  const [root] = env.build(EXPR);
  assert.ok(root);
  const want = env.nixStore(['-qR', root]);
  const storeUrl = `local?store=${env.storeDir}&state=${env.stateDir}`;
  const out = run('npx', ['--offline', '--no-install', 'nix-seal', 'closure', root, '--store', storeUrl], app);
  assert.equal(out, want);
  assert.equal(want.split('\n').filter((l) => l).length, 2);

  // The library by its package name, from the installed package's exports.
  const lib = run(process.execPath, ['--input-type=module', '-e', `import { analyze, topoOrder } from 'nix-seal'; const a = analyze({ store: ${JSON.stringify(storeUrl)}, roots: [${JSON.stringify(root)}] }); console.log(topoOrder(a.graph, a.closure.kept).map((i) => a.graph.paths[i]).join('\\n'));`], app);
  assert.equal(lib, want);
});
