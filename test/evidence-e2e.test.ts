/**
 * Evidence on the seed scenario, built by real Nix with a real xorriso ISO: `audit` verdicts,
 * `why --precise` locations (checked against the bytes at the offsets it names), and
 * `--seal-images` / `--no-seal` / `suggest` (the detected ISO must equal sealing it by hand).
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, test } from 'node:test';
import { isOneLineError, nonEmptyLines } from './support/cli.js';
import { seedCli, withSeedScenario } from './support/seed-scenario.js';

const seed = withSeedScenario('nix-seal-evidence-');
after(() => seed.cleanup());

const lines = nonEmptyLines;
const base = (p: string): string => path.basename(p);
const hashOf = (p: string): string => base(p).slice(0, 32);

const scenario = seed.need;

const cli = seedCli;

interface Ev {
  file: string;
  offset: number | null;
  inside: string[];
  what: string;
  context?: string;
}

/** The evidence's offset really holds `hash` (mentions) in the file on disk it names. */
function assertHashAt(ev: Ev, hash: string): void {
  assert.notEqual(ev.offset, null, `${ev.file}: an offset`);
  const file = ev.file.split(' » ')[0]!;
  const fd = fs.openSync(file, 'r');
  try {
    const b = Buffer.alloc(32);
    fs.readSync(fd, b, 0, 32, ev.offset!);
    assert.equal(b.toString('latin1'), hash, `${ev.file} @${ev.offset}`);
  } finally {
    fs.closeSync(fd);
  }
}

test('audit: every path the seed ISO erases is verified by its copy (Rock Ridge nix/store/<basename>), --strict passes', (t) => {
  const s = scenario(t);
  if (!s) return;
  const r = cli(s, 'audit', s.launcher, '--seal', '*.iso', '--json', '--strict');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.seals.length, 1);
  const seal = j.seals[0];
  assert.equal(seal.path, s.iso);
  assert.deepEqual(seal.images.map((i: { nature: string }) => i.nature), ['image']);
  assert.match(seal.images[0].description, /ISO 9660 \(Rock Ridge, Joliet\)/);
  assert.deepEqual(seal.erased.map((e: { path: string }) => e.path), [...s.isoOnly].sort());
  for (const e of seal.erased) {
    assert.equal(e.verdict, 'verified', e.path);
    const [ev] = e.evidence as Ev[];
    assert.equal(ev!.file, `${s.iso} » nix/store/${base(e.path)}`);
    // The offset is the entry's directory record, whose Rock Ridge NM names the basename.
    const fd = fs.openSync(s.iso, 'r');
    const rec = Buffer.alloc(255);
    fs.readSync(fd, rec, 0, 255, ev!.offset!);
    fs.closeSync(fd);
    assert.ok(rec.subarray(0, rec[0]).toString('latin1').includes(base(e.path)), `record at ${ev!.offset} names ${base(e.path)}`);
  }
  assert.deepEqual(j.summary, { verified: 3, contained: 0, differs: 0, mentioned: 0, unverified: 0, missing: 0 });
  const text = cli(s, 'audit', s.launcher, '--seal', '*.iso');
  assert.equal(text.code, 0);
  assert.match(text.stdout, /summary: 3 verified, 0 contained, 0 differs, 0 mentioned, 0 unverified, 0 missing/);
});

test('audit: sealing a plain directory (not an image) calls what it erases "mentioned", with the file and offset; --strict exits 1', (t) => {
  const s = scenario(t);
  if (!s) return;
  const strict = cli(s, 'audit', s.nixosSystem, '--seal', s.nixosSystem, '--strict');
  assert.equal(strict.code, 1, strict.stderr);
  assert.match(strict.stdout, /no image found in it/);
  const alone = JSON.parse(cli(s, 'audit', s.nixosSystem, '--seal', s.nixosSystem, '--json').stdout);
  const seal = alone.seals[0];
  assert.equal(seal.path, s.nixosSystem);
  assert.deepEqual(seal.images, []);
  const byPath = new Map<string, { verdict: string; evidence: Ev[]; hits: number }>(seal.erased.map((e: { path: string }) => [e.path, e]));
  const bash = byPath.get(s.bash)!;
  assert.equal(bash.verdict, 'mentioned');
  assert.ok(bash.evidence.some((e) => e.file === `${s.nixosSystem}/init` && e.what === 'contents'));
  for (const e of bash.evidence) if (e.what === 'contents') assertHashAt(e, hashOf(s.bash));
  const linux = byPath.get(s.linux)!;
  assert.equal(linux.verdict, 'mentioned');
  assert.ok(linux.evidence.some((e) => e.file === `${s.nixosSystem}/kernel` && e.what === 'in the symlink target'));
  // glibc too: etc/nix-path-registration is a plain file here (not inside an image), so a listing there is a mention.
  assert.deepEqual(alone.summary, { verified: 0, contained: 0, differs: 0, mentioned: 3, unverified: 0, missing: 0 });
});

test('why --precise: each edge names the file and offset, inside the ISO down to boot/grub/grub.cfg', (t) => {
  const s = scenario(t);
  if (!s) return;
  const r = cli(s, 'why', s.launcher, s.linux, '--seal', '*.iso', '--precise', '--json', '--evidence', '50');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.status, 'erased');
  assert.deepEqual(j.chain, [s.launcher, s.iso, s.linux]);
  const edge = (from: string, to: string) => j.edges.find((e: { from: string; to: string }) => e.from === from && e.to === to);
  const first = edge(s.launcher, s.iso);
  assert.equal(first.hits, 1);
  assert.equal(first.evidence[0].file, s.launcher);
  assert.match(first.evidence[0].context, /-cdrom .*-nixos-test\.iso -m 512/);
  assertHashAt(first.evidence[0], hashOf(s.iso));
  const second = edge(s.iso, s.linux);
  const grub = second.evidence.find((e: Ev) => e.inside[0] === 'boot/grub/grub.cfg');
  assert.ok(grub, `an occurrence in boot/grub/grub.cfg: ${JSON.stringify(second.evidence)}`);
  assert.equal(grub.file, `${s.iso} » boot/grub/grub.cfg`);
  assert.match(grub.context, /linux .*bzImage/);
  // The directory record of nix/store/<linux> names it too (Rock Ridge NM).
  assert.ok(
    second.evidence.some((e: Ev) => e.inside[0] === `nix/store/${base(s.linux)}` && /^directory record/.test(e.what)),
    JSON.stringify(second.evidence.map((e: Ev) => [e.inside, e.what])),
  );
  for (const e of second.evidence as Ev[]) assertHashAt(e, hashOf(s.linux));
  assert.equal(second.hits, second.evidence.length, '--evidence 50 shows them all');

  const text = cli(s, 'why', s.launcher, s.linux, '--seal', '*.iso', '--precise');
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /nixos-test\.iso » boot\/grub\/grub\.cfg @\d+: ….*bzImage/);
  assert.match(text.stdout, /start-vm @\d+: ….*-cdrom/);
});

test('--seal-images equals sealing the ISO by hand, in every command; --no-seal makes the exception', (t) => {
  const s = scenario(t);
  if (!s) return;
  const byHand = cli(s, 'closure', s.launcher, '--seal', s.iso, '--json');
  const detected = cli(s, 'closure', s.launcher, '--seal-images', '--json');
  assert.equal(detected.code, 0, detected.stderr);
  assert.equal(detected.stderr, '');
  assert.equal(detected.stdout, byHand.stdout);
  for (const cmd of [['info'], ['audit'], ['why', s.linux]]) {
    const a = cli(s, cmd[0]!, s.launcher, ...cmd.slice(1), '--seal', s.iso, '--json');
    const b = cli(s, cmd[0]!, s.launcher, ...cmd.slice(1), '--seal-images', '--json');
    assert.equal(b.code, a.code, `${cmd[0]}: ${b.stderr}`);
    assert.equal(b.stdout, a.stdout, cmd[0]);
  }
  const out = path.join(s.env.root, 'evidence-ci');
  const ci1 = cli(s, 'closure-info', s.launcher, '--seal', s.iso, '-o', out + '-1');
  const ci2 = cli(s, 'closure-info', s.launcher, '--seal-images', '-o', out + '-2');
  assert.equal(ci2.code, 0, ci2.stderr);
  assert.equal(ci1.code, 0, ci1.stderr);
  for (const f of ['registration', 'store-paths', 'seals.json']) {
    assert.equal(fs.readFileSync(path.join(out + '-2', f), 'utf8'), fs.readFileSync(path.join(out + '-1', f), 'utf8'), f);
  }
  const i1 = cli(s, 'initrd', s.launcher, '--seal', s.iso, '--compress', 'none', '-o', out + '-1.cpio');
  assert.equal(i1.code, 0, i1.stderr);
  const i2 = cli(s, 'initrd', s.launcher, '--seal-images', '--compress', 'none', '-o', out + '-2.cpio');
  assert.equal(i2.code, 0, i2.stderr);
  assert.ok(fs.readFileSync(out + '-1.cpio').equals(fs.readFileSync(out + '-2.cpio')), 'identical initrds');

  const excepted = cli(s, 'closure', s.launcher, '--seal-images', '--no-seal', '*.iso');
  assert.deepEqual(lines(excepted.stdout), lines(s.env.nixStore(['-qR', s.launcher])));
  // --no-seal wins over an explicit --seal too, and one that matches nothing is a warning.
  const both = cli(s, 'closure', s.launcher, '--seal', s.iso, '--no-seal', s.iso);
  assert.deepEqual(lines(both.stdout), lines(s.env.nixStore(['-qR', s.launcher])));
  const none = cli(s, 'closure', s.launcher, '--seal-images', '--no-seal', '*.qcow2');
  assert.equal(none.code, 0);
  assert.match(none.stderr, /exception '\*\.qcow2' \(--no-seal\) unseals nothing/);
  assert.equal(none.stdout, cli(s, 'closure', s.launcher, '--seal-images').stdout);
});

test('suggest: the ISO ranked with what it erases and the audit summary, and the flags to use', (t) => {
  const s = scenario(t);
  if (!s) return;
  const r = cli(s, 'suggest', s.launcher, '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  assert.equal(j.images.length, 1);
  const iso = j.images[0];
  assert.equal(iso.path, s.iso);
  assert.deepEqual(iso.files.map((f: { file: string; format: string }) => [f.file, f.format]), [['', 'iso9660']]);
  assert.equal(iso.alone.count, 3);
  assert.equal(iso.exclusive.count, 3);
  assert.deepEqual(iso.inside, { verified: 3, contained: 0, differs: 0, notFound: 0, opaque: [] });
  assert.equal(iso.proven, true);
  assert.deepEqual(j.flags, ['--seal-images']);
  assert.equal(j.sealedAll.count, j.full.count - 3);
  const text = cli(s, 'suggest', s.launcher);
  assert.match(text.stdout, /1\. .*nixos-test\.iso/);
  assert.match(text.stdout, /inside, of 3 erased paths: 3 verified\n/);
  assert.match(text.stdout, /flags \(give this closure, \d+ paths, .*\): --seal-images\n/);
  // A closure without images: said plainly, exit 0.
  const none = cli(s, 'suggest', s.qemu);
  assert.equal(none.code, 0, none.stderr);
  assert.match(none.stdout, /no self-contained image/);
});

test('audit and why --precise: bad input gets one line and the right exit code', (t) => {
  const s = scenario(t);
  if (!s) return;
  const badEvidence = cli(s, 'why', s.launcher, s.linux, '--precise', '--evidence', '0');
  assert.equal(badEvidence.code, 2);
  assert.ok(isOneLineError(badEvidence), badEvidence.stderr);
  const outside = cli(s, 'audit', '/etc/hosts', '--seal', '*.iso');
  assert.equal(outside.code, 2);
  assert.ok(isOneLineError(outside), outside.stderr);
  // No seal reached: nothing to audit, said plainly (and the seal's own warning).
  const nothing = cli(s, 'audit', s.qemu, '--seal', '*.iso');
  assert.equal(nothing.code, 0);
  assert.match(nothing.stdout, /no seal reached/);
  assert.match(nothing.stderr, /seals nothing/);
});
