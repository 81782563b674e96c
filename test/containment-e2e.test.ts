/**
 * `audit` proves containment in NixOS-like ISOs made by the real tools in a private Nix store:
 * the copy inside the image decides, hashed as a NAR and compared with the path's narHash.
 *
 * - For each compressor mksquashfs offers, an ISO (Rock Ridge + Joliet + an El Torito boot image)
 *   holding `nix-store.squashfs` (the closure's paths at its root, as NixOS's iso-image.nix lays
 *   it out), `nix-path-registration` and a grub.cfg naming the system: every erased path
 *   `verified`. So is the legacy layout, `nix/store/<basename>` copies straight in the ISO.
 * - The false proofs of the old ladder: a squashfs that leaves one path out (with its
 *   registration block, and without it), and `nix/store` entries that are symlinks to the host's
 *   store: never verified, `--strict` fails. A copy with one byte changed: `differs`, naming the file.
 * - A Joliet-only ISO (`--norock -J`) records no permissions: its files read as executable, so
 *   its copies differ from the store's. A plain ISO 9660 one (`--norock`: level 1 names such as
 *   NIX/STORE/ZPAK373W.2) holds the bytes but not the paths: `mentioned`.
 */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from './support/cli.js';
import { makeNixEnv, type NixEnv } from './support/nix-env.js';
import { NIX_MK, nixGlibcBash } from './support/nix-expr.js';
import { requireTools } from './support/tools.js';

const COMPRESSORS = ['gzip', 'xz', 'zstd', 'lz4', 'lzo', 'lzma'] as const;

const EXPR = `
let
  ${NIX_MK}
  ${nixGlibcBash(20_000)}
  toplevel = mk "nixos-system-test" { } ''
    mkdir -p $out; printf '#!%s/bin/bash\\n' \${bash} > $out/init; chmod +x $out/init; ln -s \${bash}/bin/bash $out/sh
  '';
  # tree/: nix-store.squashfs (or nix/store copies), nix-path-registration, boot files. $paths:
  # the closure; the registration leaves out the record of the path matching $skip, if set.
  layout = skip: store: ''
    mkdir -p tree/boot/grub store
    paths=""
    while read -r path; do
      read -r deriver; read -r count
      refs=""
      i=0; while [ "$i" -lt "$count" ]; do read -r ref; refs="$refs$ref\n"; i=$((i + 1)); done
      paths="$paths $path"
      case "$path" in *"''\${skip:-no skip}"*) continue;; esac
      printf '%s\n%s\n%s\n%b' "$path" "$deriver" "$count" "$refs" >> tree/nix-path-registration
    done < closure
    printf 'menuentry "NixOS" {\\n  linux /boot/bzImage init=%s/init\\n}\\n' \${toplevel} > tree/boot/grub/grub.cfg
    head -c 2048 /dev/zero > tree/boot/eltorito.img
  '' + store;
  iso = name: skip: store: flags: mk name { exportReferencesGraph = [ "closure" toplevel ]; inherit skip; } (layout skip store + "\\n" + ''
    xorriso -as mkisofs -quiet \${flags} -b boot/eltorito.img -no-emul-boot -boot-load-size 4 -o $out tree
  '');
  squash = comp: only: "mksquashfs $(for p in $paths; do case $p in *${"$"}{only}*) ;; *) echo $p;; esac; done) tree/nix-store.squashfs -keep-as-directory -all-root -no-progress -quiet -comp \${comp}";
  squashfsIso = comp: iso "nixos-\${comp}.iso" "" (squash comp "no-such-path") "-R -J";
  copies = "mkdir -p tree/nix/store; cp -a $paths tree/nix/store/";
  glibcFile = "tree/nix/store/$(basename \${glibc})/lib/libc.so.6";
in [ toplevel bash glibc ] ++ map squashfsIso [ ${COMPRESSORS.map((c) => `"${c}"`).join(' ')} ] ++ [
  (iso "legacy.iso" "" copies "-R -J")
  (iso "joliet-only.iso" "" copies "--norock -J")
  (iso "plain-9660.iso" "" copies "--norock")
  (iso "no-glibc.iso" "" (squash "zstd" "glibc") "-R -J")
  (iso "no-glibc-no-registration.iso" "glibc" (squash "zstd" "glibc") "-R -J")
  (iso "symlinks.iso" "" "mkdir -p tree/nix/store; for p in $paths; do ln -s $p tree/nix/store/$(basename $p); done" "-R -J")
  (iso "one-byte.iso" "" (copies + "; chmod u+w \${glibcFile}; printf X | dd of=\${glibcFile} bs=1 seek=100 conv=notrunc 2>/dev/null; chmod u-w \${glibcFile}") "-R -J")
]
`;

interface Built {
  env: NixEnv;
  closure: string[];
  isos: Map<string, string>;
}

let built: Built | undefined;
let env: NixEnv | undefined;
after(() => env?.cleanup());

function scenario(t: import('node:test').TestContext): Built | undefined {
  if (!requireTools(t, 'nix-build', 'xorriso', 'mksquashfs')) return undefined;
  if (built) return built;
  env = makeNixEnv('nix-seal-containment-');
  const [toplevel, bash, glibc, ...isos] = env.build(EXPR);
  built = { env, closure: [toplevel!, bash!, glibc!], isos: new Map(isos.map((p) => [basename(p).slice(33), p])) };
  return built;
}

interface Evidence {
  file: string;
  offset: number | null;
  inside: string[];
  what: string;
}
interface AuditJson {
  seals: { path: string; images: { nature: string; description: string }[]; erased: { path: string; verdict: string; evidence: Evidence[]; difference?: string }[]; problems: { file: string; why: string }[] }[];
  summary: Record<string, number>;
}

function audit(s: Built, iso: string, code = 0): AuditJson {
  const r = runCli(['audit', iso, '--seal', iso, '--json', '--strict'], s.env.env, s.env.root);
  assert.equal(r.code, code, `${basename(iso)}: ${r.stderr}${r.stdout.slice(0, 3000)}`);
  return JSON.parse(r.stdout) as AuditJson;
}

const counts = (c: Partial<Record<string, number>>): Record<string, number> => ({ verified: 0, contained: 0, differs: 0, mentioned: 0, unverified: 0, missing: 0, ...c });

for (const comp of COMPRESSORS) {
  test(`NixOS-like ISO with a ${comp} nix-store.squashfs: every erased path verified by the NAR hash of its copy inside the squashfs`, (t) => {
    const s = scenario(t);
    if (!s) return;
    const iso = s.isos.get(`nixos-${comp}.iso`)!;
    // Nix saw the closure in the registration's text (and the system in grub.cfg).
    const refs = s.env.nixStore(['-q', '--references', iso]).split('\n').filter(Boolean).sort();
    assert.deepEqual(refs, [...s.closure].sort());
    const j = audit(s, iso);
    assert.deepEqual(j.summary, counts({ verified: 3 }));
    const seal = j.seals[0]!;
    assert.deepEqual(seal.problems, []);
    assert.match(seal.images[0]!.description, /ISO 9660 \(Rock Ridge, Joliet, El Torito\)/);
    for (const e of seal.erased) {
      assert.equal(e.verdict, 'verified', e.path);
      assert.match(e.evidence[0]!.what, /NAR hash sha256:[0-9a-z]{52} matches/);
      // The registration is reported beside the copy, as a claim.
      assert.ok(e.evidence.some((ev) => /listed in nix-path-registration, line \d+ \(a claim, not a copy\)/.test(ev.what)), JSON.stringify(e.evidence));
      const inSquashfs = e.evidence.find((ev) => ev.inside[0] === 'nix-store.squashfs');
      assert.ok(inSquashfs, `${e.path}: evidence inside nix-store.squashfs: ${JSON.stringify(e.evidence)}`);
      assert.deepEqual(inSquashfs.inside, ['nix-store.squashfs', basename(e.path)]);
      assert.equal(inSquashfs.file, `${iso} » nix-store.squashfs » ${basename(e.path)}`);
    }
  });
}

test('the legacy layout (nix/store copies straight in a Rock Ridge ISO): verified', (t) => {
  const s = scenario(t);
  if (!s) return;
  const iso = s.isos.get('legacy.iso')!;
  const j = audit(s, iso);
  assert.deepEqual(j.summary, counts({ verified: 3 }));
  for (const e of j.seals[0]!.erased) assert.deepEqual(e.evidence[0]!.inside, [`nix/store/${basename(e.path)}`]);
});

test('a Joliet-only ISO records no permissions: copies with non-executable files differ (they read as executable), --strict fails', (t) => {
  const s = scenario(t);
  if (!s) return;
  const iso = s.isos.get('joliet-only.iso')!;
  const j = audit(s, iso, 1);
  // bash holds one executable file and nothing else: its copy is right even without permissions.
  assert.deepEqual(j.summary, counts({ verified: 1, differs: 2 }));
  assert.equal(j.seals[0]!.erased.find((e) => e.path.endsWith('-bash-5.2'))!.verdict, 'verified');
  const glibc = j.seals[0]!.erased.find((e) => e.path.endsWith('-glibc-2.37'))!;
  assert.equal(glibc.difference, 'lib/libc.so.6: executable in the image, not executable in the store');
});

test('a squashfs that leaves glibc out, its registration block kept: not verified, the registration flagged, --strict fails', (t) => {
  const s = scenario(t);
  if (!s) return;
  const iso = s.isos.get('no-glibc.iso')!;
  const j = audit(s, iso, 1);
  const seal = j.seals[0]!;
  const glibc = seal.erased.find((e) => e.path.endsWith('-glibc-2.37'))!;
  assert.equal(glibc.verdict, 'mentioned', JSON.stringify(glibc));
  assert.ok(glibc.evidence.some((ev) => /listed in nix-path-registration/.test(ev.what)));
  assert.deepEqual(j.summary, counts({ verified: 2, mentioned: 1 }));
  assert.ok(seal.problems.some((p) => p.why.includes(`lists ${glibc.path}, but the image holds no copy of it`)), JSON.stringify(seal.problems));
  // suggest does not call it proven.
  const r = runCli(['suggest', iso, '--json'], s.env.env, s.env.root);
  assert.equal(r.code, 0, r.stderr);
  const sug = JSON.parse(r.stdout) as { images: { path: string; proven: boolean }[] };
  assert.equal(sug.images.find((i) => i.path === iso)?.proven, false);
});

test('a squashfs that leaves glibc out and a registration without its block: still not verified (a reference line is no copy)', (t) => {
  const s = scenario(t);
  if (!s) return;
  const iso = s.isos.get('no-glibc-no-registration.iso')!;
  const j = audit(s, iso, 1);
  const glibc = j.seals[0]!.erased.find((e) => e.path.endsWith('-glibc-2.37'))!;
  assert.equal(glibc.verdict, 'mentioned', JSON.stringify(glibc));
  assert.deepEqual(j.summary, counts({ verified: 2, mentioned: 1 }));
});

test('nix/store entries that are symlinks to the host store are not copies', (t) => {
  const s = scenario(t);
  if (!s) return;
  const iso = s.isos.get('symlinks.iso')!;
  const j = audit(s, iso, 1);
  assert.equal(j.summary.verified, 0);
  assert.equal(j.summary.contained, 0);
  for (const e of j.seals[0]!.erased) {
    assert.notEqual(e.verdict, 'verified');
    assert.match(e.evidence[0]!.what, /a symlink to .*, which leaves the image: not a copy/);
  }
});

test('a copy with one byte changed (same names and sizes): differs, naming the file and the byte; the rest verified', (t) => {
  const s = scenario(t);
  if (!s) return;
  const iso = s.isos.get('one-byte.iso')!;
  const j = audit(s, iso, 1);
  assert.deepEqual(j.summary, counts({ verified: 2, differs: 1 }));
  const glibc = j.seals[0]!.erased.find((e) => e.path.endsWith('-glibc-2.37'))!;
  assert.equal(glibc.verdict, 'differs');
  assert.equal(glibc.difference, 'lib/libc.so.6: contents differ from byte 100');
  // --quick does not hash: the copy is only contained, and --strict accepts that there.
  const r = runCli(['audit', iso, '--seal', iso, '--json', '--strict', '--quick'], s.env.env, s.env.root);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((JSON.parse(r.stdout) as AuditJson).summary, counts({ contained: 3 }));
});

test('a plain ISO 9660 (level 1: 8.3 names like NIX/STORE/ZPAK373W.2) cannot hold store paths: "mentioned", --strict fails', (t) => {
  const s = scenario(t);
  if (!s) return;
  const iso = s.isos.get('plain-9660.iso')!;
  const r = runCli(['audit', iso, '--seal', iso, '--json', '--strict'], s.env.env, s.env.root);
  assert.equal(r.code, 1, r.stderr);
  const j = JSON.parse(r.stdout) as AuditJson;
  assert.deepEqual(j.summary, counts({ mentioned: 3 }));
  for (const e of j.seals[0]!.erased) {
    // Found in the bytes of the copied files and of the registration, under their 8.3 names.
    assert.ok(e.evidence.length > 0 && e.evidence.every((ev) => /^[A-Z0-9_./]+$/.test(ev.inside[0]!) && ev.offset !== null), JSON.stringify(e.evidence));
  }
});
