/** Image views of NixOS-like ISOs made by the real xorriso and mksquashfs: embedded store paths, locateDeep, nesting. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { FdSource } from '../../src/formats/iso9660.js';
import { MAX_NESTING, embeddedStorePaths, locateDeep, openImageView, type ImageView } from '../../src/seal/image-view.js';
import { requireTools } from '../support/tools.js';
import { fileTempDir } from '../support/temp.js';

const dir = fileTempDir('nix-seal-image-view-');

const H = (c: string): string => c.repeat(32); // a valid nix32 hash part ('e', 'o', 'u', 't' are not nix32)
const FOO = `${H('a')}-foo-1.0`;
const BAR = `${H('b')}-bar-2.0`;
const BAZ = `${H('c')}-baz`;

function sh(cmd: string, args: string[], cwd = dir): void {
  execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C.UTF-8' } });
}

function open(path: string): { view: ImageView; close(): void } {
  const fd = openSync(path, 'r');
  const view = openImageView(new FdSource(fd, path), path);
  assert.ok(view, `${path} opens as an image`);
  return { view, close: () => closeSync(fd) };
}

/** A NixOS-like ISO: /nix-store.squashfs (store basenames at its root + nix-path-registration), a grub.cfg. */
function nixosLikeIso(name: string): string {
  const tree = join(dir, `${name}-sq`);
  for (const b of [FOO, BAR]) mkdirSync(join(tree, b, 'bin'), { recursive: true });
  writeFileSync(join(tree, FOO, 'bin', 'foo'), `#!/nix/store/${BAR}/bin/bar\n`);
  writeFileSync(join(tree, 'nix-path-registration'), `/nix/store/${FOO}\n/nix/store/${BAZ}\n0\n\n`);
  const sq = join(dir, `${name}.squashfs`);
  sh('mksquashfs', [tree, sq, '-comp', 'xz', '-all-root', '-noappend', '-quiet']);
  const iso = join(dir, `${name}-iso`);
  mkdirSync(join(iso, 'boot', 'grub'), { recursive: true });
  writeFileSync(join(iso, 'boot', 'grub', 'grub.cfg'), `linux /boot/bzImage init=/nix/store/${FOO}/init\n`);
  writeFileSync(join(iso, 'nix-store.squashfs'), readFileSync(sq));
  const out = join(dir, `${name}.iso`);
  sh('xorriso', ['-as', 'mkisofs', '-R', '-J', '-V', 'NIXOS', '-o', out, iso]);
  return out;
}

test('a NixOS-like ISO: store paths at the root of the nested squashfs and in its registration count as embedded', (t) => {
  if (!requireTools(t, 'xorriso', 'mksquashfs')) return;
  const iso = nixosLikeIso('nixos');
  const { view, close } = open(iso);
  try {
    assert.equal(view.kind, 'iso9660');
    const { trees, registrations, problems } = embeddedStorePaths(view, '/nix/store', iso);
    assert.deepEqual(problems, []);
    assert.deepEqual([...trees.keys()].sort(), [FOO, BAR]);
    assert.deepEqual(trees.get(FOO)!.inside, ['nix-store.squashfs', FOO]);
    // The offset of a nested entry is where the squashfs starts in the ISO: "hsqs" is there.
    const at = trees.get(FOO)!.offset;
    assert.equal(readFileSync(iso).subarray(at, at + 4).toString('latin1'), 'hsqs');
    // Listed: the registration's path lines (FOO and BAZ), not its other lines.
    assert.equal(registrations.length, 1);
    const reg = registrations[0]!;
    assert.deepEqual([...reg.paths.keys()].sort(), [`/nix/store/${FOO}`, `/nix/store/${BAZ}`]);
    assert.deepEqual(reg.inside, ['nix-store.squashfs', 'nix-path-registration']);
    assert.equal(reg.paths.get(`/nix/store/${BAZ}`)!.line, 2);
    // For another store dir the file is still found, but lists nothing (its lines name /nix/store paths).
    assert.deepEqual(embeddedStorePaths(view, '/gnu/store', iso).registrations.map((r) => r.paths.size), [0]);
  } finally {
    close();
  }
});

test('locateDeep: a byte of grub.cfg, of the nested squashfs, of a directory record', (t) => {
  if (!requireTools(t, 'xorriso', 'mksquashfs')) return;
  const iso = nixosLikeIso('locate');
  const bytes = readFileSync(iso);
  const { view, close } = open(iso);
  try {
    const at = bytes.indexOf(`init=/nix/store/${FOO}`);
    assert.ok(at > 0);
    assert.deepEqual(locateDeep(view, at, iso), [{ path: 'boot/grub/grub.cfg', what: 'data of boot/grub/grub.cfg', offsetInFile: 'linux /boot/bzImage '.length }]);
    const sq = bytes.indexOf('hsqs');
    const steps = locateDeep(view, sq, iso);
    assert.equal(steps.length, 2);
    assert.equal(steps[0]!.path, 'nix-store.squashfs');
    assert.equal(steps[1]!.what, 'squashfs superblock');
    // The Rock Ridge name of grub.cfg sits in a directory record.
    const rr = bytes.indexOf('grub.cfg');
    const rec = locateDeep(view, rr, iso);
    assert.equal(rec.length, 1);
    assert.equal(rec[0]!.path, 'boot/grub/grub.cfg');
    assert.match(rec[0]!.what, /^directory record/);
  } finally {
    close();
  }
});

test('images nested deeper than the budget are not followed, and a corrupt nested image is a problem, not a failure', (t) => {
  if (!requireTools(t, 'xorriso', 'mksquashfs')) return;
  // ISO in ISO in ISO …: MAX_NESTING + 1 levels, the innermost holding nix/store/FOO.
  let inner = join(dir, 'deep-0');
  mkdirSync(join(inner, 'nix', 'store', FOO), { recursive: true });
  writeFileSync(join(inner, 'nix', 'store', FOO, 'x'), 'x\n');
  let iso = '';
  for (let level = 0; level <= MAX_NESTING; level++) {
    iso = join(dir, `deep-${level}.iso`);
    sh('xorriso', ['-as', 'mkisofs', '-R', '-o', iso, inner]);
    inner = join(dir, `deep-${level + 1}`);
    mkdirSync(inner);
    writeFileSync(join(inner, 'inner.iso'), readFileSync(iso));
  }
  const { view, close } = open(iso);
  try {
    const { trees } = embeddedStorePaths(view, '/nix/store', iso);
    assert.equal(trees.size, 0, 'the store path is below the nesting budget');
  } finally {
    close();
  }
  // Two levels: found.
  const shallow = open(join(dir, 'deep-1.iso'));
  try {
    assert.deepEqual(embeddedStorePaths(shallow.view, '/nix/store', 'deep-1.iso').trees.get(FOO)!.inside, ['inner.iso', `nix/store/${FOO}`]);
  } finally {
    shallow.close();
  }
  // A file that starts like a squashfs but is not one.
  const bad = join(dir, 'bad');
  mkdirSync(join(bad, 'nix', 'store', BAR), { recursive: true });
  writeFileSync(join(bad, 'nix', 'store', BAR, 'y'), 'y\n');
  writeFileSync(join(bad, 'broken.squashfs'), Buffer.concat([Buffer.from('hsqs'), Buffer.alloc(200, 0xff)]));
  const badIso = join(dir, 'bad.iso');
  sh('xorriso', ['-as', 'mkisofs', '-R', '-o', badIso, bad]);
  const b = open(badIso);
  try {
    const r = embeddedStorePaths(b.view, '/nix/store', badIso);
    assert.deepEqual([...r.trees.keys()], [BAR]);
    assert.equal(r.problems.length, 1);
    assert.deepEqual(r.problems[0]!.inside, ['broken.squashfs']);
    assert.match(r.problems[0]!.why, /Cannot read .*broken\.squashfs/);
  } finally {
    b.close();
  }
});
