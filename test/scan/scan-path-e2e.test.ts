/** scanPath against the references real Nix registers for a build output. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { scanPath, scanPathReferences } from '../../src/scan/scan-path.js';
import { makeNixEnv } from '../support/nix-env.js';
import { requireTools } from '../support/tools.js';

test('agrees with the references real Nix registers for a build output', async (t) => {
  if (!requireTools(t, 'nix-store', 'nix-build')) return;
  const env = makeNixEnv('nix-seal-scan-');
  t.after(() => env.cleanup());
  const mk = (name: string, script: string, extra = ''): string =>
    `derivation { name = "${name}"; system = builtins.currentSystem; builder = "/bin/sh"; PATH = "/usr/bin:/bin"; args = [ "-c" ${JSON.stringify(script)} ]; ${extra} }`;
  const expr = `
    let
      inContents = ${mk('in-contents', 'mkdir -p $out/bin; echo hi > $out/bin/tool')};
      inLink = ${mk('in-link', 'mkdir -p $out/lib; echo lib > $out/lib/libx.so')};
      unused = ${mk('unused', 'echo unused > $out')};
      top = ${mk(
        'top',
        // One input only in a file's contents, one only in a symlink target, one not at all (but in
        // the build's environment), and the output itself in a file name.
        'mkdir -p $out/etc $out/self $out/share; printf "exec %s/bin/tool\\n" "$a" > $out/etc/run; ln -s "$b/lib/libx.so" $out/share/libx.so; echo $c > /dev/null; touch "$out/self/$(basename $out)"',
        'a = inContents; b = inLink; c = unused;',
      )};
    in [ top inContents inLink unused ]`;
  const [top, inContents, inLink, unused] = env.build(expr) as [string, string, string, string];
  assert.ok(top && inContents && inLink && unused);
  const hashOf = (p: string): string => p.slice(env.storeDir.length + 1, env.storeDir.length + 33);
  // The candidates Nix used: the build's input closure and its own output.
  const cands = [top, inContents, inLink, unused].map(hashOf);
  const nixRefs = env
    .nixStore(['-q', '--references', top])
    .split('\n')
    .filter((l) => l !== '')
    .map(hashOf);
  const found = await scanPathReferences(top, cands);
  assert.deepEqual([...found].sort(), [...nixRefs].sort());
  assert.deepEqual(
    [...found].filter((h) => h !== hashOf(top)).sort(),
    [hashOf(inContents), hashOf(inLink)].sort(),
  );
  const hits = await scanPath(top, cands);
  assert.deepEqual(
    hits.map((h) => [h.file, h.where, h.hash]),
    [
      ['etc/run', 'contents', hashOf(inContents)],
      [`self/${top.slice(env.storeDir.length + 1)}`, 'name', hashOf(top)],
      ['share/libx.so', 'symlink target', hashOf(inLink)],
    ],
  );
  assert.equal(readFileSync(join(top, 'etc/run'), 'utf8'), `exec ${inContents}/bin/tool\n`);
});
