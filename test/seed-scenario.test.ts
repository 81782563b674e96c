/**
 * The seed scenario, checked with real Nix: the references below are what Nix itself recorded by
 * scanning the build outputs, which is what every other nix-seal test built on this scenario
 * relies on.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { requireTools } from './support/tools.js';
import { SEED_NAMES, SEED_TOOLS, withSeedScenario } from './support/seed-scenario.js';

const TOOLS = SEED_TOOLS;

const seed = withSeedScenario();
after(() => seed.cleanup());

/** Output lines of a `nix-store -q…` call, sorted. */
const lines = (out: string): string[] => out.split('\n').filter((l) => l !== '').sort();

test('the launcher closure is exactly the 8 seed paths', (t) => {
  if (!requireTools(t, ...TOOLS)) return;
  const s = seed.get();
  const expected = [s.launcher, s.qemu, s.libfoo, s.glibc, s.iso, s.nixosSystem, s.bash, s.linux].sort();
  assert.equal(new Set(expected).size, 8, 'eight distinct store paths');
  assert.deepEqual(lines(s.env.nixStore(['-qR', s.launcher])), expected);
  for (const p of expected) assert.ok(p.startsWith(s.env.storeDir + '/'), `${p} is in the private store`);
});

test('store paths carry their derivation names', (t) => {
  if (!requireTools(t, ...TOOLS)) return;
  const s = seed.get();
  for (const [key, name] of Object.entries(SEED_NAMES)) {
    const p = s[key as keyof typeof SEED_NAMES];
    assert.match(basename(p), new RegExp(`^[0-9a-z]{32}-${name.replace(/\./g, '\\.')}$`), key);
  }
  assert.deepEqual(s.isoOnly, [s.nixosSystem, s.bash, s.linux]);
});

test('Nix found the ISO-embedded paths as references of the ISO', (t) => {
  if (!requireTools(t, ...TOOLS)) return;
  const s = seed.get();
  const refs = lines(s.env.nixStore(['-q', '--references', s.iso]));
  for (const p of [s.nixosSystem, s.bash, s.linux, s.glibc]) assert.ok(refs.includes(p), `ISO references ${p}`);
  // …and the closure of nixos-system is exactly what the ISO embeds.
  assert.deepEqual(lines(s.env.nixStore(['-qR', s.nixosSystem])), [s.nixosSystem, s.bash, s.linux, s.glibc].sort());
});

test('glibc is shared: referenced by libfoo and qemu, outside the ISO too', (t) => {
  if (!requireTools(t, ...TOOLS)) return;
  const s = seed.get();
  assert.deepEqual(lines(s.env.nixStore(['-q', '--references', s.libfoo])), [s.glibc]);
  assert.deepEqual(lines(s.env.nixStore(['-q', '--references', s.qemu])), [s.glibc, s.libfoo].sort());
  assert.deepEqual(lines(s.env.nixStore(['-q', '--references', s.launcher])), [s.iso, s.qemu].sort());
});

test('ISO-only paths have no referrers outside the ISO closure', (t) => {
  if (!requireTools(t, ...TOOLS)) return;
  const s = seed.get();
  const insideIso = new Set([s.iso, ...s.isoOnly]);
  for (const p of s.isoOnly) {
    for (const r of lines(s.env.nixStore(['-q', '--referrers', p]))) {
      assert.ok(insideIso.has(r), `${p} is referred to by ${r}, outside the ISO`);
    }
  }
  // glibc, in contrast, is also needed by libfoo and qemu.
  const glibcReferrers = lines(s.env.nixStore(['-q', '--referrers', s.glibc]));
  assert.ok(glibcReferrers.includes(s.libfoo) && glibcReferrers.includes(s.qemu));
});

test('the ISO and the launcher are single files; the ISO holds the closure and grub.cfg', (t) => {
  if (!requireTools(t, ...TOOLS)) return;
  const s = seed.get();
  assert.ok(statSync(s.iso).isFile(), 'ISO is a regular file');
  const launcher = statSync(s.launcher);
  assert.ok(launcher.isFile() && (launcher.mode & 0o111) !== 0, 'launcher is an executable file');

  // `-ls` prints one quoted name per line.
  const listing = s.env.run('xorriso', ['-indev', s.iso, '-ls', '/nix/store']);
  const embedded = lines(listing.replace(/'/g, '')).filter((l) => /^[0-9a-z]{32}-/.test(l));
  assert.deepEqual(embedded, [s.nixosSystem, s.bash, s.linux, s.glibc].map((p) => basename(p)).sort());

  const out = join(s.env.root, 'grub.cfg');
  s.env.run('xorriso', ['-osirrox', 'on', '-indev', s.iso, '-extract', '/boot/grub/grub.cfg', out]);
  const grub = s.env.run('cat', [out]);
  assert.ok(grub.includes(`init=${s.nixosSystem}/init`), grub);
});
