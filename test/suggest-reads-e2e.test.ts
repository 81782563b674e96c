/**
 * `suggest` does not read an image whole to tell apart what it does not report: a 256 MiB raw
 * MBR disk (sparse, made by sfdisk in a private Nix store) whose second partition holds a store
 * path's name in its bytes, so Nix records the reference. `audit` scans the disk and says which
 * erased path is mentioned and which is missing; `suggest` counts both as not found, reads a few
 * MiB (counted by the kernel: /proc/self/io) instead of the disk's 256, and says the same.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { analyzeStore, auditAnalysis, suggestResult } from '../src/index.js';
import { runCli } from './support/cli.js';
import { makeNixEnv, type NixEnv } from './support/nix-env.js';
import { NIX_MK, nixGlibcBash } from './support/nix-expr.js';
import { requireTools } from './support/tools.js';

const DISK_MIB = 256;

const EXPR = `
let
  ${NIX_MK}
  ${nixGlibcBash(20_000)}
  disk = mk "disk.img" { } ''
    truncate -s ${DISK_MIB}M $out
    printf 'label: dos\\nstart=2048, size=8192, type=83\\nstart=16384, type=83\\n' | sfdisk -q $out
    printf 'boot with %s/bin/bash\\n' \${bash} | dd of=$out bs=1M seek=200 conv=notrunc 2>/dev/null
  '';
  launcher = mk "launcher" { } ''
    mkdir -p $out; printf '%s\\n' \${disk} > $out/disk
  '';
in [ launcher disk bash glibc ]
`;

let env: NixEnv | undefined;
let built: { launcher: string; disk: string; bash: string; glibc: string } | undefined;
after(() => env?.cleanup());

function scenario(t: import('node:test').TestContext): typeof built {
  if (!requireTools(t, 'nix-build', 'sfdisk', 'truncate')) return undefined;
  if (built) return built;
  env = makeNixEnv('nix-seal-suggest-reads-');
  const [launcher, disk, bash, glibc] = env.build(EXPR) as [string, string, string, string];
  built = { launcher, disk, bash, glibc };
  return built;
}

/** Bytes this process has read through read()-like calls so far (the kernel's count). */
function rchar(): number {
  const m = /^rchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
  if (m?.[1] === undefined) throw new Error('no rchar in /proc/self/io');
  return Number(m[1]);
}

test('suggest tells not found from contained without reading a raw disk whole; audit still tells mentioned from missing', async (t) => {
  const s = scenario(t);
  if (!s || !env) return;
  assert.deepEqual(env.nixStore(['-q', '--references', s.disk]).trim().split('\n'), [s.bash], 'Nix found the name in the partition');
  const store = `local?store=${env.storeDir}&state=${env.stateDir}`;

  const audited = await analyzeStore({ store, roots: [s.launcher], seals: [s.disk], env: env.env });
  const beforeAudit = rchar();
  const audit = await auditAnalysis(audited, { quick: true });
  const auditRead = rchar() - beforeAudit;
  audited.source.close?.();
  const verdicts = Object.fromEntries(audit.seals[0]!.erased.map((e) => [e.path, e.verdict]));
  assert.deepEqual(verdicts, { [s.bash]: 'mentioned', [s.glibc]: 'missing' });
  assert.ok(auditRead >= DISK_MIB << 20, `audit scanned the disk: ${auditRead} bytes read`);

  const analysis = await analyzeStore({ store, roots: [s.launcher], sealImages: true, env: env.env });
  const beforeSuggest = rchar();
  const suggested = await suggestResult(analysis, {}, { quick: true });
  const suggestRead = rchar() - beforeSuggest;
  analysis.source.close?.();
  assert.equal(suggested.images.length, 1);
  const disk = suggested.images[0]!;
  assert.equal(disk.path, s.disk);
  assert.deepEqual(disk.files.map((f) => f.format), ['mbr']);
  assert.deepEqual(disk.inside, { verified: 0, contained: 0, differs: 0, notFound: 2, opaque: [] });
  assert.equal(disk.proven, false);
  assert.ok(suggestRead < 16 << 20, `suggest read ${suggestRead} bytes of a ${DISK_MIB} MiB disk`);

  // The CLI says the same.
  const r = runCli(['suggest', '--quick', s.launcher, '--json'], env.env, env.root);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { images: { path: string; inside: unknown; proven: boolean }[] };
  assert.deepEqual(
    j.images.map((i) => [i.path, i.inside, i.proven]),
    [[s.disk, disk.inside, false]],
  );
});
