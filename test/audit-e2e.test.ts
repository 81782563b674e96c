/**
 * `audit` verdicts other than `contained`, on images made by the real tools in a private Nix store
 * (Nix records their references by scanning their bytes, as for real images):
 *
 * - an ISO whose boot config mentions the system and its kernel without containing them:
 *   those two are `mentioned`, what they need (bash, glibc) is `missing`, via them;
 * - an ext4 image (mkfs.ext4 -d) holding nix/store/<basename> copies: nix-seal cannot look
 *   inside ext4, so every erased path is `unverified`, with the occurrences in the raw bytes;
 * - the same ext4 image as a directory output (`disk/nixos.img` + nix-support/): the same.
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
  ext4: string;
  diskDir: string;
  isoWithExt4: string;
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
  ext4 = mk "nixos-test.ext4" { exportReferencesGraph = [ "closure" toplevel ]; } (copyClosure + ''
    truncate -s 8M $out
    mkfs.ext4 -q -F -d tree $out
  '');
  diskDir = mk "nixos-disk-image" { exportReferencesGraph = [ "closure" toplevel ]; } (copyClosure + ''
    mkdir -p $out/disk $out/nix-support
    truncate -s 8M $out/disk/nixos.img
    mkfs.ext4 -q -F -d tree $out/disk/nixos.img
    echo "file disk-image $out/disk/nixos.img" > $out/nix-support/hydra-build-products
  '');
  # An ISO holding an ext4 disk image that holds the closure: the hashes are in the ISO's bytes
  # (inside disk.img), and only the ext4 could prove the paths are in there.
  isoWithExt4 = mk "iso-with-ext4.iso" { exportReferencesGraph = [ "closure" toplevel ]; } (copyClosure + ''
    mkdir -p iso
    truncate -s 8M iso/disk.img
    mkfs.ext4 -q -F -d tree iso/disk.img
    xorriso -as mkisofs -quiet -R -o $out iso
  '');
in { inherit glibc bash kernel toplevel mentionIso ext4 diskDir isoWithExt4; }
`;

let built: Scenario | undefined;
let env: NixEnv | undefined;
after(() => env?.cleanup());

function scenario(t: import('node:test').TestContext): Scenario | undefined {
  if (!requireTools(t, 'nix-build', 'nix-store', 'xorriso', 'mkfs.ext4')) return undefined;
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
    ext4: by('nixos-test.ext4'),
    diskDir: by('nixos-disk-image'),
    isoWithExt4: by('iso-with-ext4.iso'),
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
  assert.deepEqual(refs(s.ext4), closure.sort());
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

test('an ext4 image (single file, and as a directory output): every erased path "unverified", with the raw occurrences', (t) => {
  const s = scenario(t);
  if (!s) return;
  for (const [seal, file] of [
    [s.ext4, s.ext4],
    [s.diskDir, `${s.diskDir}/disk/nixos.img`],
  ] as const) {
    const { code, json } = audit(s, seal, '--strict');
    assert.equal(code, 1);
    const seal0 = json.seals[0]!;
    assert.equal(seal0.images.length, 1, JSON.stringify(seal0.images));
    assert.equal(seal0.images[0]!.nature, 'opaque');
    assert.match(seal0.images[0]!.description, /ext4/);
    assert.deepEqual(json.summary, { verified: 0, contained: 0, differs: 0, mentioned: 0, unverified: 4, missing: 0 });
    // mkfs.ext4 -d stores the directory names in plain bytes: each path's hash is found there.
    for (const e of seal0.erased) {
      assert.ok(e.hits > 0, e.path);
      assert.equal(e.evidence[0]!.file, file);
      assert.match(e.evidence[0]!.what, /ext4 image .*cannot look inside/);
    }
  }
});

test('an ISO holding an ext4 image: the hashes sit inside the ext4, so every erased path is "unverified", not "mentioned"', (t) => {
  const s = scenario(t);
  if (!s) return;
  const { code, json } = audit(s, s.isoWithExt4, '--strict');
  assert.equal(code, 1);
  const seal0 = json.seals[0]!;
  assert.deepEqual(seal0.images.map((i) => i.nature), ['image']);
  assert.deepEqual(json.summary, { verified: 0, contained: 0, differs: 0, mentioned: 0, unverified: 4, missing: 0 });
  for (const e of seal0.erased) {
    assert.ok(e.hits > 0, e.path);
    const ev = e.evidence[0]!;
    assert.equal(ev.file, `${s.isoWithExt4} » disk.img`);
    assert.deepEqual(ev.inside, ['disk.img']);
    assert.match(ev.what, /^data of disk\.img, ext4 image nix-seal cannot look inside \(ext4 superblock at 1024/);
  }
});
