import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FdSource } from '../formats/iso9660.js';
import { requireTools } from '../../test/support/tools.js';
import { MAX_NESTING, embeddedStorePaths, locateDeep, openImageView, readRegistration, resolveInside, type ImageView, type InnerEntry } from './image-view.js';

const dir = mkdtempSync(join(tmpdir(), 'nix-seal-image-view-'));
after(() => rmSync(dir, { recursive: true, force: true }));

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

test('resolveInside: symlinks resolved inside the image; out of it, dangling or looping is undefined', () => {
  const entries: InnerEntry[] = [
    { path: '', type: 'dir', size: 0 },
    { path: 'nix', type: 'dir', size: 0 },
    { path: 'nix/store', type: 'dir', size: 0 },
    { path: `nix/store/${FOO}`, type: 'dir', size: 0 },
    { path: `nix/store/${FOO}/bin`, type: 'dir', size: 0 },
    { path: `nix/store/${BAR}`, type: 'symlink', size: 0, target: FOO },
    { path: `nix/store/${BAZ}`, type: 'symlink', size: 0, target: `/nix/store/${FOO}/bin` },
    { path: 'nix/store/out', type: 'symlink', size: 0, target: `/host/nix/store/${FOO}` },
    { path: 'nix/store/up', type: 'symlink', size: 0, target: '../../../etc' },
    { path: 'nix/store/loop', type: 'symlink', size: 0, target: 'loop' },
  ];
  const index = { byPath: new Map(entries.map((e) => [e.path, e])), children: new Map<string, string[]>() };
  assert.equal(resolveInside(index, `nix/store/${BAR}`, '/nix/store', false)?.path, `nix/store/${FOO}`);
  assert.equal(resolveInside(index, `nix/store/${BAZ}`, '/nix/store', false)?.path, `nix/store/${FOO}/bin`);
  assert.equal(resolveInside(index, 'nix/store/out', '/nix/store', false), undefined);
  assert.equal(resolveInside(index, 'nix/store/up', '/nix/store', false), undefined);
  assert.equal(resolveInside(index, 'nix/store/loop', '/nix/store', false), undefined);
  // A store image (mounted on the store dir): absolute targets under the store dir resolve at its root.
  const store = { byPath: new Map<string, InnerEntry>([[FOO, { path: FOO, type: 'dir', size: 0 }], [BAR, { path: BAR, type: 'symlink', size: 0, target: `/nix/store/${FOO}` }], [BAZ, { path: BAZ, type: 'symlink', size: 0, target: '/etc/x' }]]), children: new Map<string, string[]>() };
  assert.equal(resolveInside(store, BAR, '/nix/store', true)?.path, FOO);
  assert.equal(resolveInside(store, BAZ, '/nix/store', true), undefined);
});

test('readRegistration: records with hashes, without, and bare path lists; other store dirs and garbage ignored', () => {
  const text = [
    `/nix/store/${FOO}`, 'sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s', '1234', '', '1', `/nix/store/${BAR}`,
    `/nix/store/${BAR}`, '', '0',
    'garbage line',
    `/gnu/store/${BAZ}`,
    `/nix/store/${BAZ}`,
    '',
  ].join('\n');
  const r = readRegistration(text, '/nix/store');
  assert.deepEqual([...r.keys()], [`/nix/store/${FOO}`, `/nix/store/${BAR}`, `/nix/store/${BAZ}`]);
  assert.deepEqual(r.get(`/nix/store/${FOO}`), { path: `/nix/store/${FOO}`, narHash: 'sha256:1b8m03r63zqhnjf7l5wnldhh7c134ap5vpj0850ymkq1iyzicy5s', narSize: 1234, line: 1 });
  // BAR's reference line in FOO's record is skipped as part of the record: BAR is listed by its own record (line 7).
  assert.equal(r.get(`/nix/store/${BAR}`)!.line, 7);
  assert.equal(r.get(`/nix/store/${BAZ}`)!.line, 12);
});
