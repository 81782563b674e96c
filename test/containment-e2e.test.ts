/**
 * `audit` proves containment in NixOS-like ISOs made by the real tools in a private Nix store,
 * for each compressor mksquashfs offers: the ISO (Rock Ridge + Joliet + an El Torito boot image)
 * holds `nix-store.squashfs` (the closure's paths at its root, as NixOS's iso-image.nix lays it
 * out), `nix-path-registration` and a grub.cfg naming the system. Nix records the references
 * from the registration's text (the squashfs is compressed); nix-seal must find every erased path
 * inside the squashfs, through its decompressor, and call it `contained`.
 *
 * Two more layouts: a Joliet-only ISO (`--norock -J`: UCS-2 names, which Nix cannot see) is
 * `contained`; a plain ISO 9660 one (`--norock`: level 1 names such as NIX/STORE/ZPAK373W.2) holds
 * the bytes but not the paths, so what it erases is only `mentioned`.
 */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from './support/cli.js';
import { makeNixEnv, type NixEnv } from './support/nix-env.js';
import { NIX_MK } from './support/nix-expr.js';
import { requireTools } from './support/tools.js';

const COMPRESSORS = ['gzip', 'xz', 'zstd', 'lz4', 'lzo', 'lzma'] as const;

const EXPR = `
let
  ${NIX_MK}
  glibc = mk "glibc-2.37" { } ''
    mkdir -p $out/lib; head -c 20000 /dev/urandom > $out/lib/libc.so.6
  '';
  bash = mk "bash-5.2" { } ''
    mkdir -p $out/bin; printf '#!/bin/sh\\n# linked against %s/lib/libc.so.6\\n' \${glibc} > $out/bin/bash
  '';
  toplevel = mk "nixos-system-test" { } ''
    mkdir -p $out; printf '#!%s/bin/bash\\n' \${bash} > $out/init
  '';
  # tree/: nix-store.squashfs (or nix/store copies), nix-path-registration, boot files.
  layout = store: ''
    mkdir -p tree/boot/grub store
    paths=""
    while read -r path; do
      read -r deriver; read -r count
      i=0; while [ "$i" -lt "$count" ]; do read -r ref; i=$((i + 1)); done
      paths="$paths $path"
    done < closure
    cp closure tree/nix-path-registration
    printf 'menuentry "NixOS" {\\n  linux /boot/bzImage init=%s/init\\n}\\n' \${toplevel} > tree/boot/grub/grub.cfg
    head -c 2048 /dev/zero > tree/boot/eltorito.img
  '' + store;
  iso = name: store: flags: mk name { exportReferencesGraph = [ "closure" toplevel ]; } (layout store + "\\n" + ''
    xorriso -as mkisofs -quiet \${flags} -b boot/eltorito.img -no-emul-boot -boot-load-size 4 -o $out tree
  '');
  squashfsIso = comp: iso "nixos-\${comp}.iso" "mksquashfs $paths tree/nix-store.squashfs -keep-as-directory -all-root -no-progress -quiet -comp \${comp}" "-R -J";
  copies = "mkdir -p tree/nix/store; cp -a $paths tree/nix/store/";
in [ toplevel bash glibc ] ++ map squashfsIso [ ${COMPRESSORS.map((c) => `"${c}"`).join(' ')} ] ++ [
  (iso "joliet-only.iso" copies "--norock -J")
  (iso "plain-9660.iso" copies "--norock")
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
  seals: { path: string; images: { nature: string; description: string }[]; erased: { path: string; verdict: string; evidence: Evidence[] }[] }[];
  summary: Record<string, number>;
}

function audit(s: Built, iso: string): AuditJson {
  const r = runCli(['audit', iso, '--seal', iso, '--json', '--strict'], s.env.env, s.env.root);
  assert.equal(r.code, 0, `${basename(iso)}: ${r.stderr}${r.stdout.slice(0, 3000)}`);
  return JSON.parse(r.stdout) as AuditJson;
}

for (const comp of COMPRESSORS) {
  test(`NixOS-like ISO with a ${comp} nix-store.squashfs: every erased path contained, inside the squashfs`, (t) => {
    const s = scenario(t);
    if (!s) return;
    const iso = s.isos.get(`nixos-${comp}.iso`)!;
    // Nix saw the closure in the registration's text (and the system in grub.cfg).
    const refs = s.env.nixStore(['-q', '--references', iso]).split('\n').filter(Boolean).sort();
    assert.deepEqual(refs, [...s.closure].sort());
    const j = audit(s, iso);
    assert.deepEqual(j.summary, { contained: 3, mentioned: 0, unverified: 0, missing: 0 });
    const seal = j.seals[0]!;
    assert.match(seal.images[0]!.description, /ISO 9660 \(Rock Ridge, Joliet, El Torito\)/);
    for (const e of seal.erased) {
      assert.equal(e.verdict, 'contained', e.path);
      const inSquashfs = e.evidence.find((ev) => ev.inside[0] === 'nix-store.squashfs');
      assert.ok(inSquashfs, `${e.path}: evidence inside nix-store.squashfs: ${JSON.stringify(e.evidence)}`);
      assert.deepEqual(inSquashfs.inside, ['nix-store.squashfs', basename(e.path)]);
      assert.equal(inSquashfs.file, `${iso} » nix-store.squashfs » ${basename(e.path)}`);
    }
  });
}

test('a Joliet-only ISO: contained, by its Joliet names or its registration', (t) => {
  const s = scenario(t);
  if (!s) return;
  const iso = s.isos.get('joliet-only.iso')!;
  const j = audit(s, iso);
  assert.deepEqual(j.summary, { contained: 3, mentioned: 0, unverified: 0, missing: 0 });
  for (const e of j.seals[0]!.erased) {
    assert.ok(
      e.evidence.some((ev) => ev.inside[0] === 'nix-path-registration' || ev.inside[0] === `nix/store/${basename(e.path)}`),
      `${e.path}: ${JSON.stringify(e.evidence)}`,
    );
  }
});

test('a plain ISO 9660 (level 1: 8.3 names like NIX/STORE/ZPAK373W.2) cannot hold store paths: "mentioned", --strict fails', (t) => {
  const s = scenario(t);
  if (!s) return;
  const iso = s.isos.get('plain-9660.iso')!;
  const r = runCli(['audit', iso, '--seal', iso, '--json', '--strict'], s.env.env, s.env.root);
  assert.equal(r.code, 1, r.stderr);
  const j = JSON.parse(r.stdout) as AuditJson;
  assert.deepEqual(j.summary, { contained: 0, mentioned: 3, unverified: 0, missing: 0 });
  for (const e of j.seals[0]!.erased) {
    // Found in the bytes of the copied files and of the registration, under their 8.3 names.
    assert.ok(e.evidence.length > 0 && e.evidence.every((ev) => /^[A-Z0-9_./]+$/.test(ev.inside[0]!) && ev.offset !== null), JSON.stringify(e.evidence));
  }
});
