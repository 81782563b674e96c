/**
 * `audit` verdicts other than `contained`, on images made by the real tools in a private Nix store
 * (Nix records their references by scanning their bytes, as for real images):
 *
 * - an ISO whose boot config mentions the system and its kernel without containing them:
 *   those two are `mentioned`, what they need (bash, glibc) is `missing`, via them;
 * - a VMDK (qemu-img) of an ext4 holding nix/store/<basename> copies: nix-seal cannot look
 *   inside VMDK, so every erased path is `unverified`, with the occurrences in the raw bytes;
 * - the same VMDK as a directory output (`disk/nixos.vmdk` + nix-support/): the same;
 * - an ISO holding that VMDK: the hashes sit in a nested image nix-seal cannot read: `unverified`.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { runCli } from './support/cli.js';
import { makeNixEnv, type NixEnv } from './support/nix-env.js';
import { NIX_MK } from './support/nix-expr.js';
import { requireTools } from './support/tools.js';

interface Scenario {
  env: NixEnv;
  glibc: string;
  bash: string;
  kernel: string;
  toplevel: string;
  mentionIso: string;
  vmdk: string;
  diskDir: string;
  isoWithVmdk: string;
}

const EXPR = `
let
  ${NIX_MK}
  glibc = mk "glibc-2.37" { } ''
    mkdir -p $out/lib; echo "libc stand-in" > $out/lib/libc.so.6
  '';
  bash = mk "bash-5.2" { } ''
    mkdir -p $out/bin; echo "#!/bin/sh linked against \${glibc}/lib/libc.so.6" > $out/bin/bash
  '';
  kernel = mk "linux-6.1" { } ''
    mkdir -p $out; echo "bzImage stand-in" > $out/bzImage
  '';
  toplevel = mk "nixos-system-test" { } ''
    mkdir -p $out; printf '#!%s/bin/bash\\n# kernel %s/bzImage\\n' \${bash} \${kernel} > $out/init
  '';
  # The closure of toplevel, copied to tree/nix/store (exportReferencesGraph lists it).
  copyClosure = ''
    mkdir -p tree/nix/store
    while read -r path; do
      read -r deriver; read -r count
      i=0; while [ "$i" -lt "$count" ]; do read -r ref; i=$((i + 1)); done
      cp -a "$path" tree/nix/store/
    done < closure
  '';
  mentionIso = mk "mention-only.iso" { } ''
    mkdir -p tree/boot/grub
    printf 'menuentry "NixOS" {\\n  linux %s/bzImage init=%s/init\\n}\\n' \${kernel} \${toplevel} > tree/boot/grub/grub.cfg
    xorriso -as mkisofs -R -J -o $out tree
  '';
  # VMDK (qemu-img's monolithic sparse) of an ext4 holding the closure: a format nix-seal does
  # not read, whose grains keep the bytes (and so the hashes) as they are.
  vmdk = mk "nixos-test.vmdk" { exportReferencesGraph = [ "closure" toplevel ]; } (copyClosure + ''
    truncate -s 8M disk.raw
    mkfs.ext4 -q -F -d tree disk.raw
    qemu-img convert -q -f raw -O vmdk disk.raw $out
  '');
  diskDir = mk "nixos-disk-image" { exportReferencesGraph = [ "closure" toplevel ]; } (copyClosure + ''
    mkdir -p $out/disk $out/nix-support
    truncate -s 8M disk.raw
    mkfs.ext4 -q -F -d tree disk.raw
    qemu-img convert -q -f raw -O vmdk disk.raw $out/disk/nixos.vmdk
    echo "file disk-image $out/disk/nixos.vmdk" > $out/nix-support/hydra-build-products
  '');
  # An ISO holding a VMDK disk image that holds the closure: the hashes are in the ISO's bytes
  # (inside disk.vmdk), and only reading the VMDK could prove the paths are in there.
  isoWithVmdk = mk "iso-with-vmdk.iso" { exportReferencesGraph = [ "closure" toplevel ]; } (copyClosure + ''
    mkdir -p iso
    truncate -s 8M disk.raw
    mkfs.ext4 -q -F -d tree disk.raw
    qemu-img convert -q -f raw -O vmdk disk.raw iso/disk.vmdk
    xorriso -as mkisofs -quiet -R -o $out iso
  '');
in { inherit glibc bash kernel toplevel mentionIso vmdk diskDir isoWithVmdk; }
`;

let built: Scenario | undefined;
let env: NixEnv | undefined;
after(() => env?.cleanup());

function scenario(t: import('node:test').TestContext): Scenario | undefined {
  if (!requireTools(t, 'nix-build', 'nix-store', 'xorriso', 'mkfs.ext4', 'qemu-img')) return undefined;
  if (built) return built;
  env = makeNixEnv('nix-seal-audit-');
  const outs = env.build(EXPR);
  const by = (suffix: string): string => {
    const p = outs.find((o) => o.endsWith('-' + suffix));
    assert.ok(p, `nix-build printed no ${suffix}: ${outs.join(' ')}`);
    return p;
  };
  built = {
    env,
    glibc: by('glibc-2.37'),
    bash: by('bash-5.2'),
    kernel: by('linux-6.1'),
    toplevel: by('nixos-system-test'),
    mentionIso: by('mention-only.iso'),
    vmdk: by('nixos-test.vmdk'),
    diskDir: by('nixos-disk-image'),
    isoWithVmdk: by('iso-with-vmdk.iso'),
  };
  return built;
}

interface Erased {
  path: string;
  verdict: string;
  hits: number;
  via?: string[];
  evidence: { file: string; offset: number | null; inside: string[]; what: string; context?: string }[];
}

function audit(s: Scenario, seal: string, ...extra: string[]): { code: number; json: { seals: { erased: Erased[]; images: { nature: string; description: string }[] }[]; summary: Record<string, number> } } {
  const r = runCli(['audit', seal, '--seal', seal, '--json', ...extra], s.env.env, s.env.root);
  assert.ok(r.code === 0 || r.code === 1, r.stderr);
  return { code: r.code, json: JSON.parse(r.stdout) };
}

test('the references Nix recorded are what the tests rely on', (t) => {
  const s = scenario(t);
  if (!s) return;
  const refs = (p: string): string[] => s.env.nixStore(['-q', '--references', p]).split('\n').filter(Boolean).sort();
  assert.deepEqual(refs(s.mentionIso), [s.kernel, s.toplevel].sort());
  const closure = [s.glibc, s.bash, s.kernel, s.toplevel];
  // qemu-img's VMDK descriptor names the file it was written to: a self reference.
  assert.deepEqual(refs(s.vmdk), [...closure, s.vmdk].sort());
  // nix-support/hydra-build-products names the output itself: a self reference, as in nixpkgs.
  assert.deepEqual(refs(s.diskDir), [...closure, s.diskDir].sort());
});

test('a mention-only ISO: the system and kernel are "mentioned" (in boot/grub/grub.cfg), bash and glibc "missing" via them', (t) => {
  const s = scenario(t);
  if (!s) return;
  const { code, json } = audit(s, s.mentionIso, '--strict');
  assert.equal(code, 1, '--strict fails');
  const byPath = new Map(json.seals[0]!.erased.map((e) => [e.path, e]));
  for (const p of [s.toplevel, s.kernel]) {
    const e = byPath.get(p)!;
    assert.equal(e.verdict, 'mentioned', p);
    assert.equal(e.hits, 1);
    assert.equal(e.evidence[0]!.file, `${s.mentionIso} » boot/grub/grub.cfg`);
    assert.deepEqual(e.evidence[0]!.inside, ['boot/grub/grub.cfg']);
  }
  assert.equal(byPath.get(s.bash)!.verdict, 'missing');
  assert.deepEqual(byPath.get(s.bash)!.via, [s.toplevel]);
  assert.equal(byPath.get(s.glibc)!.verdict, 'missing');
  assert.deepEqual(byPath.get(s.glibc)!.via, [s.bash]);
  assert.deepEqual(json.summary, { verified: 0, contained: 0, differs: 0, mentioned: 2, unverified: 0, missing: 2 });
  const text = runCli(['audit', s.mentionIso, '--seal', s.mentionIso], s.env.env, s.env.root);
  assert.equal(text.code, 0, 'without --strict the audit itself succeeds');
  assert.match(text.stdout, /mentioned +\S+-linux-6\.1/);
  assert.match(text.stdout, /mention-only\.iso » boot\/grub\/grub\.cfg @\d+: …/);
  assert.match(text.stdout, /not in the image and not mentioned by it; erased because \S+-bash-5\.2 refers to it/);
});

test('a VMDK image (single file, and as a directory output): every erased path "unverified", with the raw occurrences', (t) => {
  const s = scenario(t);
  if (!s) return;
  for (const [seal, file] of [
    [s.vmdk, s.vmdk],
    [s.diskDir, `${s.diskDir}/disk/nixos.vmdk`],
  ] as const) {
    const { code, json } = audit(s, seal, '--strict');
    assert.equal(code, 1);
    const seal0 = json.seals[0]!;
    assert.equal(seal0.images.length, 1, JSON.stringify(seal0.images));
    assert.equal(seal0.images[0]!.nature, 'opaque');
    assert.match(seal0.images[0]!.description, /vmdk/);
    assert.deepEqual(json.summary, { verified: 0, contained: 0, differs: 0, mentioned: 0, unverified: 4, missing: 0 });
    // mkfs.ext4 -d stores the directory names in plain bytes, kept in the VMDK's grains.
    for (const e of seal0.erased) {
      assert.ok(e.hits > 0, e.path);
      assert.equal(e.evidence[0]!.file, file);
      assert.match(e.evidence[0]!.what, /vmdk image .*cannot look inside/);
    }
  }
});

test('an ISO holding a VMDK image: the hashes sit inside the VMDK, so every erased path is "unverified", not "mentioned"', (t) => {
  const s = scenario(t);
  if (!s) return;
  const { code, json } = audit(s, s.isoWithVmdk, '--strict');
  assert.equal(code, 1);
  const seal0 = json.seals[0]!;
  assert.deepEqual(seal0.images.map((i) => i.nature), ['image']);
  assert.deepEqual(json.summary, { verified: 0, contained: 0, differs: 0, mentioned: 0, unverified: 4, missing: 0 });
  for (const e of seal0.erased) {
    assert.ok(e.hits > 0, e.path);
    const ev = e.evidence[0]!;
    assert.equal(ev.file, `${s.isoWithVmdk} » disk.vmdk`);
    assert.deepEqual(ev.inside, ['disk.vmdk']);
    assert.match(ev.what, /^data of disk\.vmdk, vmdk image nix-seal cannot look inside \(/);
  }
});
