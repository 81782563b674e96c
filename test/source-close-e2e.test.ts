/**
 * Every source a command opens is closed when the command returns, also when it fails: the
 * database's descriptor is gone, an image source's temporary store dir is removed. The CLI runs
 * in this process (main()), so its descriptors (/proc/self/fd) and temp dirs can be looked at.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { main, type Output } from '../src/cli/main.js';
import { makeNixEnv, type NixEnv } from './support/nix-env.js';
import { NIX_MK } from './support/nix-expr.js';
import { requireTools } from './support/tools.js';

const EXPR = `
let
  ${NIX_MK}
  lib = mk "lib-1.0" { } "mkdir -p $out/lib; echo lib > $out/lib/lib.so";
  app = mk "app-1.0" { } "mkdir -p $out/bin; echo \\"uses \${lib}/lib/lib.so\\" > $out/bin/app";
in [ app lib ]
`;

let env: NixEnv | undefined;
let built: { app: string; lib: string; store: string; tar: string } | undefined;
after(() => env?.cleanup());

function scenario(t: TestContext): typeof built {
  if (!requireTools(t, 'nix-build', 'tar')) return undefined;
  if (built) return built;
  env = makeNixEnv('nix-seal-close-');
  const [app, lib] = env.build(EXPR) as [string, string];
  // A store image: the closure under nix/store/ and its registration, as a plain tar.
  const tree = path.join(env.root, 'image');
  const storeIn = path.join(tree, 'nix', 'store');
  fs.mkdirSync(storeIn, { recursive: true });
  for (const p of [app, lib]) fs.cpSync(p, path.join(storeIn, path.basename(p)), { recursive: true });
  fs.writeFileSync(path.join(tree, 'nix-path-registration'), env.nixStore(['--dump-db', app, lib]));
  const tar = path.join(env.root, 'image.tar');
  execFileSync('tar', ['-cf', tar, '-C', tree, '.']);
  built = { app, lib, store: `local?store=${env.storeDir}&state=${env.stateDir}`, tar };
  return built;
}

/** Descriptors of this process open on `file`. */
function fdsOn(file: string): number {
  const real = fs.realpathSync(file);
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return fs.readlinkSync(`/proc/self/fd/${fd}`) === real;
    } catch {
      return false;
    }
  }).length;
}

/** Runs the CLI in-process; `during` runs when the command writes its output (the source still open). */
async function run(args: string[], during?: () => void): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const out: Output = {
    out: (s) => {
      during?.();
      stdout += s;
    },
    err: (s) => (stderr += s),
  };
  const code = await main(args, out);
  return { code, stdout, stderr };
}

test('the database a command opens is closed when it returns: on success, on a failed command, on a failed analysis', async (t) => {
  const s = scenario(t);
  if (!s || !env) return;
  const db = path.join(env.stateDir, 'db', 'db.sqlite');
  assert.equal(fdsOn(db), 0);
  let open = -1;
  const ok = await run(['closure', s.app, '--store', s.store], () => (open = fdsOn(db)));
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(ok.stdout.trim().split('\n'), [s.lib, s.app]);
  assert.ok(open > 0, 'the database is open while the command runs');
  assert.equal(fdsOn(db), 0, 'closed after closure');
  // why fails after the analysis (no such name), analyze fails after opening (no such path).
  const why = await run(['why', s.app, 'nothing-1.0', '--store', s.store]);
  assert.equal(why.code, 2);
  assert.match(why.stderr, /Cannot find 'nothing-1.0'/);
  assert.equal(fdsOn(db), 0, 'closed after a failed why');
  const invalid = `${env.storeDir}/${'0'.repeat(32)}-nothing`;
  const bad = await run(['closure', invalid, '--store', s.store]);
  assert.equal(bad.code, 2);
  assert.equal(fdsOn(db), 0, 'closed after a failed analysis');
  // sbom opens its own source.
  const sbom = await run(['sbom', s.app, '--store', s.store, '-o', path.join(env.root, 'sbom.json')]);
  assert.equal(sbom.code, 0, sbom.stderr);
  assert.equal(fdsOn(db), 0, 'closed after sbom');
});

test("an image source's temporary store dir is gone when the command returns", async (t) => {
  const s = scenario(t);
  if (!s || !env) return;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nix-seal-close-tmp-'));
  const saved = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  t.after(() => {
    if (saved === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = saved;
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const temps = (): string[] => fs.readdirSync(tmp).filter((n) => n.startsWith('nix-seal-image-store-'));
  let during: string[] = [];
  // --precise reads the referrer's bytes: the image source writes its copy into its temp store dir.
  const r = await run(['why', s.app, s.lib, '--precise', '--store', `image:${s.tar}`], () => (during = temps()));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /bin\/app @\d+: …uses /);
  assert.equal(during.length, 1, 'the copies were written to a temporary store dir');
  assert.deepEqual(temps(), [], 'removed when the command returned');
  // initrd opens its source itself.
  const initrd = await run(['initrd', s.app, '--compress', 'none', '-o', path.join(env.root, 'initrd'), '--store', `image:${s.tar}`]);
  assert.equal(initrd.code, 0, initrd.stderr);
  assert.deepEqual(temps(), [], 'removed after initrd');
});
