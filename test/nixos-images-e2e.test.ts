/**
 * Every kind of image NixOS builds, made by the real tools in a private Nix store, each holding a
 * small system closure (glibc, bash, a kernel, the system): `--seal-images` detects it, `audit
 * --strict` verifies every erased path by the NAR hash of its copy, found through every level
 * (compressed stream » partition table » file system » nix/store/<basename>), and `why --precise`
 * names the file inside where the bytes are readable. Each image sits in a directory output
 * beside `nix-support/closure` (a plain listing of the closure): that is what gives a compressed
 * image its references, as Nix cannot see through compression.
 *
 * - sd-image: MBR, a FAT firmware partition (config.txt naming the system) and an ext4 root
 *   holding /nix/store (mkfs.ext4 -d), raw and .img.zst;
 * - make-disk-image: GPT (sgdisk) with an ESP and an ext4 root, raw, qcow2 and compressed qcow2;
 * - microvm store disks: erofs with the store paths at its root, plain and lz4;
 * - systemd-repart: GPT with a squashfs store partition;
 * - system tarball: tar.xz of nix/store and nix-path-registration;
 * - netboot initrd: zstd cpio holding nix-store.squashfs.
 *
 * Negative: an ext4 root whose copy of bash lacks its bin/ directory (not verified); a FAT-only
 * disk whose boot config names the system (`mentioned`).
 */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { runCli } from './support/cli.js';
import { makeNixEnv, type NixEnv } from './support/nix-env.js';
import { NIX_MK, nixGlibcBash } from './support/nix-expr.js';
import { requireTools } from './support/tools.js';

const TOOLS = ['nix-build', 'mkfs.ext4', 'mkfs.vfat', 'mcopy', 'sfdisk', 'sgdisk', 'qemu-img', 'mkfs.erofs', 'mksquashfs', 'zstd', 'xz', 'cpio'];

const EXPR = `
let
  ${NIX_MK}
  ${nixGlibcBash(70_000, { shLink: true })}
  kernel = mk "linux-6.1" { } ''
    mkdir -p $out; head -c 300000 /dev/urandom > $out/bzImage
  '';
  toplevel = mk "nixos-system-test" { } ''
    mkdir -p $out; printf '#!%s/bin/bash\\n# kernel %s/bzImage\\n' \${bash} \${kernel} > $out/init; chmod +x $out/init
  '';
  # root/: the closure under nix/store, its registration; store/: the closure's basenames at the root.
  prepare = ''
    mkdir -p root/nix/store store $out/nix-support
    paths=""
    while read -r path; do
      read -r deriver; read -r count
      i=0; while [ "$i" -lt "$count" ]; do read -r ref; i=$((i + 1)); done
      paths="$paths $path"
    done < closure
    for p in $paths; do cp -a $p root/nix/store/; cp -a $p store/; echo $p >> $out/nix-support/closure; done
    cp closure root/nix-path-registration
    printf 'kernel=%s/bzImage\\ninit=%s/init\\n' \${kernel} \${toplevel} > config.txt
  '';
  image = name: script: mk name { exportReferencesGraph = [ "closure" toplevel ]; } (prepare + script);
  ext4 = "mkfs.ext4 -q -L NIXOS_SD -d root ext4.img 24M";
  fat = "mkfs.vfat -C fat.img 8192 >/dev/null; mcopy -i fat.img config.txt ::config.txt";
  sdImage = ''
    \${fat}; \${ext4}
    truncate -s 40M disk.img
    printf 'label: dos\\nstart=2048, size=16384, type=b\\nstart=18432, type=83\\n' | sfdisk -q disk.img
    dd if=fat.img of=disk.img bs=512 seek=2048 conv=notrunc status=none
    dd if=ext4.img of=disk.img bs=512 seek=18432 conv=notrunc status=none
  '';
  gptDisk = ''
    \${fat}; \${ext4}
    truncate -s 40M disk.img
    sgdisk -o -n 1:2048:+8M -t 1:ef00 -n 2:18432:0 -t 2:8300 disk.img >/dev/null
    dd if=fat.img of=disk.img bs=512 seek=2048 conv=notrunc status=none
    dd if=ext4.img of=disk.img bs=512 seek=18432 conv=notrunc status=none
  '';
in [ toplevel bash glibc kernel
  (image "sd-image" (sdImage + "mv disk.img $out/nixos-sd-image.img"))
  (image "sd-image-zst" (sdImage + "zstd -q disk.img -o $out/nixos-sd-image.img.zst"))
  (image "disk-image" (gptDisk + "mv disk.img $out/nixos.img"))
  (image "disk-image-qcow2" (gptDisk + "qemu-img convert -q -f raw -O qcow2 disk.img $out/nixos.qcow2"))
  (image "disk-image-qcow2c" (gptDisk + "qemu-img convert -q -c -f raw -O qcow2 disk.img $out/nixos.qcow2"))
  (image "erofs-store" "mkfs.erofs --quiet $out/store.erofs store")
  (image "erofs-store-lz4" "mkfs.erofs --quiet -zlz4 $out/store.erofs store")
  (image "repart" ''
    mksquashfs store store.squashfs -all-root -noappend -quiet -no-progress -comp zstd
    size=$(( ($(stat -c %s store.squashfs) / 512) + 1 ))
    truncate -s $(( (2048 + size + 2048) * 512 )) disk.img
    sgdisk -o -n 1:2048:+$size -t 1:8300 disk.img >/dev/null
    dd if=store.squashfs of=disk.img bs=512 seek=2048 conv=notrunc status=none
    mv disk.img $out/repart.raw
  '')
  (image "tarball" "tar -C root -cJf $out/nixos-system.tar.xz nix nix-path-registration")
  (image "netboot" ''
    mkdir initrd; mksquashfs store initrd/nix-store.squashfs -all-root -noappend -quiet -no-progress -comp zstd
    (cd initrd && find . | cpio -o -H newc --quiet) | zstd -q -o $out/initrd
  '')
  (image "sd-image-broken" ''
    chmod -R u+w root/nix/store; rm -r root/nix/store/*-bash-5.2/bin
    \${sdImage}
    mv disk.img $out/nixos-sd-image.img
  '')
  (image "fat-only" ''
    \${fat}
    truncate -s 10M disk.img
    printf 'label: dos\\nstart=2048, size=16384, type=b\\n' | sfdisk -q disk.img
    dd if=fat.img of=disk.img bs=512 seek=2048 conv=notrunc status=none
    mv disk.img $out/firmware.img
  '')
]
`;

interface Scenario {
  env: NixEnv;
  toplevel: string;
  bash: string;
  glibc: string;
  kernel: string;
  images: Map<string, string>;
}

let scenario: Scenario | undefined;
let env: NixEnv | undefined;
after(() => env?.cleanup());

function build(t: TestContext): Scenario | undefined {
  if (!requireTools(t, ...TOOLS)) return undefined;
  if (scenario) return scenario;
  env = makeNixEnv('nix-seal-nixos-images-');
  const [toplevel, bash, glibc, kernel, ...images] = env.build(EXPR);
  scenario = { env, toplevel: toplevel!, bash: bash!, glibc: glibc!, kernel: kernel!, images: new Map(images.map((p) => [basename(p).slice(33), p])) };
  return scenario;
}

interface Erased {
  path: string;
  verdict: string;
  evidence: { file: string; inside: string[]; what: string }[];
}
interface AuditJson {
  seals: { path: string; erased: Erased[]; images: { nature: string; description: string }[]; problems: { file: string; why: string }[] }[];
  summary: Record<string, number>;
}

function audit(s: Scenario, image: string, code: number): AuditJson {
  const r = runCli(['audit', image, '--seal-images', '--json', '--strict'], s.env.env, s.env.root);
  assert.equal(r.code, code, `${basename(image)}: exit ${r.code}\n${r.stderr}${r.stdout.slice(0, 4000)}`);
  return JSON.parse(r.stdout) as AuditJson;
}

/** Each image: the chain of levels the copies are found through (after the file's own name). */
const GOOD: [string, RegExp][] = [
  ['sd-image', /^nixos-sd-image\.img » partition 2[^»]* » nix\/store\/[^/]+$/],
  ['sd-image-zst', /^nixos-sd-image\.img\.zst » [^»]+ » partition 2[^»]* » nix\/store\/[^/]+$/],
  ['disk-image', /^nixos\.img » partition 2[^»]* » nix\/store\/[^/]+$/],
  ['disk-image-qcow2', /^nixos\.qcow2 » [^»]+ » partition 2[^»]* » nix\/store\/[^/]+$/],
  ['disk-image-qcow2c', /^nixos\.qcow2 » [^»]+ » partition 2[^»]* » nix\/store\/[^/]+$/],
  ['erofs-store', /^store\.erofs » [^/»]+$/],
  ['erofs-store-lz4', /^store\.erofs » [^/»]+$/],
  ['repart', /^repart\.raw » partition 1[^»]* » [^/»]+$/],
  ['tarball', /^nixos-system\.tar\.xz » [^»]+ » nix\/store\/[^/]+$/],
  ['netboot', /^initrd » [^»]+ » nix-store\.squashfs » [^/»]+$/],
];

for (const [name, chain] of GOOD) {
  test(`${name}: --seal-images seals it and audit --strict verifies every erased path through each level`, (t) => {
    const s = build(t);
    if (!s) return;
    const image = s.images.get(name)!;
    const closure = runCli(['closure', s.toplevel, image, '--seal-images'], s.env.env, s.env.root);
    assert.equal(closure.code, 0, closure.stderr);
    const j = audit(s, image, 0);
    assert.equal(j.seals.length, 1);
    const seal = j.seals[0]!;
    assert.equal(seal.path, image);
    assert.deepEqual(
      seal.erased.map((e) => e.path).sort(),
      [s.toplevel, s.bash, s.glibc, s.kernel].sort(),
    );
    for (const e of seal.erased) {
      assert.equal(e.verdict, 'verified', `${e.path}: ${JSON.stringify(e.evidence)}`);
      const rel = e.evidence[0]!.file.slice(image.length + 1);
      assert.match(rel, chain, rel);
      assert.ok(rel.endsWith(basename(e.path)), rel);
    }
  });
}

test('why --precise names the file inside a partition inside the disk image', (t) => {
  const s = build(t);
  if (!s) return;
  const image = s.images.get('disk-image')!;
  const r = runCli(['why', image, s.glibc, '--precise', '--json', '--evidence', '50'], s.env.env, s.env.root);
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { edges: { from: string; to: string; evidence: { file: string; what: string; offsetInFile?: number }[] }[] };
  const edge = j.edges.find((e) => e.from === image && e.to === s.glibc)!;
  // The hash of glibc sits in bash's script inside the ext4 partition (and in names, registration…).
  const inBash = edge.evidence.find((ev) => /partition 2[^»]* » nix\/store\/[^/]+-bash-5\.2\/bin\/bash$/.test(ev.file));
  assert.ok(inBash, JSON.stringify(edge.evidence, null, 1));
  assert.equal(inBash.offsetInFile, '#!/bin/sh\n# linked against '.length + s.env.storeDir.length + 1);
});

test('an ext4 root whose copy of bash lacks bin/: bash is not verified, --strict fails', (t) => {
  const s = build(t);
  if (!s) return;
  const j = audit(s, s.images.get('sd-image-broken')!, 1);
  const bash = j.seals[0]!.erased.find((e) => e.path === s.bash)!;
  assert.notEqual(bash.verdict, 'verified');
  assert.equal(bash.verdict, 'differs');
  for (const e of j.seals[0]!.erased) if (e.path !== s.bash) assert.equal(e.verdict, 'verified', e.path);
});

test('a FAT-only disk whose boot config names the system: mentioned, not verified', (t) => {
  const s = build(t);
  if (!s) return;
  const j = audit(s, s.images.get('fat-only')!, 1);
  const seal = j.seals[0]!;
  const top = seal.erased.find((e) => e.path === s.toplevel)!;
  assert.equal(top.verdict, 'mentioned', JSON.stringify(top));
  assert.ok(top.evidence.some((ev) => /partition 1[^»]* » config\.txt$/i.test(ev.file)), JSON.stringify(top.evidence));
});
