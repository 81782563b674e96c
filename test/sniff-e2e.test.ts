/**
 * The image sniffer against images made by the real tools, as Nix builds them in a private
 * store: xorriso (plain, Rock Ridge + Joliet, El Torito, hybrid MBR), genisoimage -udf (a UDF
 * bridge: ISO 9660 wins), mkudffs (pure UDF, 2 and 4 KiB blocks), mksquashfs (four
 * compressors), sfdisk, sgdisk, qemu-img (qcow2, vmdk, vhdx, vpc dynamic and fixed), mkfs.ext2/3/4,
 * mkfs.erofs, cpio (newc, crc, odc), tar (GNU, POSIX), gzip, xz, zstd, bzip2, lz4 (frame,
 * legacy), an isoImage-like directory output, and things that are not images: a directory with
 * an ISO and a README, a shell script, an executable, near misses (a magic number in the right
 * place in a file that is not that image).
 *
 * Then `suggest` on a root referring to some of them: exactly the images that refer to other paths
 * are found, with their formats.
 */
import assert from 'node:assert/strict';
import { basename } from 'node:path';
import { after, test } from 'node:test';
import { sniffStorePath, type ImageFormat } from '../src/seal/sniff.js';
import { runCli } from './support/cli.js';
import { makeNixEnv, type NixEnv } from './support/nix-env.js';
import { NIX_MK } from './support/nix-expr.js';
import { requireTools } from './support/tools.js';

const TOOLS = ['nix-build', 'xorriso', 'genisoimage', 'mkudffs', 'mksquashfs', 'sfdisk', 'sgdisk', 'qemu-img', 'mkfs.ext2', 'mkfs.ext3', 'mkfs.ext4', 'mkfs.erofs', 'cpio', 'tar', 'gzip', 'xz', 'zstd', 'bzip2', 'lz4'];

/** Derivation name → what the sniffer must say (a format, or undefined for "not an image"). */
const EXPECTED: Record<string, ImageFormat | undefined> = {
  'plain.iso': 'iso9660',
  'rock-joliet.iso': 'iso9660',
  'eltorito.iso': 'iso9660',
  'hybrid.iso': 'iso9660',
  'udf-bridge.iso': 'iso9660',
  'udf-2k.img': 'udf',
  'udf-4k.img': 'udf',
  'gzip.squashfs': 'squashfs',
  'xz.squashfs': 'squashfs',
  'zstd.squashfs': 'squashfs',
  'lz4.squashfs': 'squashfs',
  'mbr.img': 'mbr',
  'gpt.img': 'gpt',
  'disk.qcow2': 'qcow2',
  'disk.vmdk': 'vmdk',
  'disk.vhdx': 'vhdx',
  'dynamic.vhd': 'vhd',
  'fixed.vhd': 'vhd',
  'fs.ext2': 'ext2',
  'fs.ext3': 'ext3',
  'fs.ext4': 'ext4',
  'fs.erofs': 'erofs',
  'newc.cpio': 'cpio-newc',
  'crc.cpio': 'cpio-crc',
  'odc.cpio': 'cpio-odc',
  'gnu.tar': 'tar',
  'posix.tar': 'tar',
  'tar.gz': 'gzip',
  'tar.xz': 'xz',
  'tar.zst': 'zstd',
  'tar.bz2': 'bzip2',
  'tar.lz4': 'lz4',
  'legacy.lz4': 'lz4',
  'script.sh': undefined,
  'executable': undefined,
  'fake-iso': undefined,
  'fake-squashfs': undefined,
  'fake-gpt': undefined,
  'fake-tar': undefined,
};

const EXPR = `
let
  ${NIX_MK}
  dep = mk "dep-1.0" { } ''
    mkdir -p $out/bin; echo "#!/bin/sh" > $out/bin/dep
  '';
  # A small tree; with a copy of dep at nix/store/<basename> when the image should refer to it.
  tree = withDep: ''
    mkdir -p tree/a; echo hello > tree/a/hello.txt; head -c 70000 /dev/zero | tr '\\0' x > tree/big
  '' + (if withDep then ''
    mkdir -p tree/nix/store; cp -a \${dep} tree/nix/store/
  '' else "");
  img = name: script: mk name { } (tree false + script);
  refImg = name: script: mk name { } (tree true + script);
  images = {
    "plain.iso" = img "plain.iso" "xorriso -as mkisofs -quiet -o $out tree";
    "rock-joliet.iso" = refImg "rock-joliet.iso" "xorriso -as mkisofs -quiet -R -J -o $out tree";
    "eltorito.iso" = img "eltorito.iso" "head -c 2048 /dev/zero > tree/boot.img; xorriso -as mkisofs -quiet -b boot.img -no-emul-boot -boot-load-size 4 -o $out tree";
    "hybrid.iso" = img "hybrid.iso" "head -c 65536 /dev/zero > efi.img; xorriso -as mkisofs -quiet -append_partition 2 0xef efi.img -o $out tree";
    "udf-bridge.iso" = img "udf-bridge.iso" "genisoimage -quiet -udf -o $out tree";
    "udf-2k.img" = img "udf-2k.img" "truncate -s 8M $out; mkudffs --media-type=hd --blocksize=2048 $out >/dev/null";
    "udf-4k.img" = img "udf-4k.img" "truncate -s 8M $out; mkudffs --media-type=hd --blocksize=4096 $out >/dev/null";
    "gzip.squashfs" = img "gzip.squashfs" "mksquashfs tree $out -quiet -no-progress -comp gzip";
    "xz.squashfs" = img "xz.squashfs" "mksquashfs tree $out -quiet -no-progress -comp xz";
    "zstd.squashfs" = img "zstd.squashfs" "mksquashfs tree $out -quiet -no-progress -comp zstd";
    "lz4.squashfs" = img "lz4.squashfs" "mksquashfs tree $out -quiet -no-progress -comp lz4";
    "mbr.img" = img "mbr.img" "truncate -s 8M $out; printf 'label: dos\\\\nstart=2048, size=4096, type=83\\\\n' | sfdisk -q $out";
    "gpt.img" = img "gpt.img" "truncate -s 8M $out; sgdisk -n 1:2048:+1M $out >/dev/null";
    "disk.qcow2" = img "disk.qcow2" "qemu-img create -q -f qcow2 $out 64M";
    "disk.vmdk" = img "disk.vmdk" "qemu-img create -q -f vmdk $out 64M";
    "disk.vhdx" = img "disk.vhdx" "qemu-img create -q -f vhdx $out 64M";
    "dynamic.vhd" = img "dynamic.vhd" "qemu-img create -q -f vpc $out 64M";
    "fixed.vhd" = img "fixed.vhd" "qemu-img create -q -f vpc -o subformat=fixed $out 8M";
    "fs.ext2" = img "fs.ext2" "truncate -s 8M $out; mkfs.ext2 -q -F -d tree $out";
    "fs.ext3" = img "fs.ext3" "truncate -s 8M $out; mkfs.ext3 -q -F -d tree $out";
    "fs.ext4" = refImg "fs.ext4" "truncate -s 8M $out; mkfs.ext4 -q -F -d tree $out";
    "fs.erofs" = img "fs.erofs" "mkfs.erofs $out tree >/dev/null";
    "newc.cpio" = refImg "newc.cpio" "(cd tree && find . | sort | cpio -o -H newc --quiet) > $out";
    "crc.cpio" = img "crc.cpio" "(cd tree && find . | sort | cpio -o -H crc --quiet) > $out";
    "odc.cpio" = img "odc.cpio" "(cd tree && find . | sort | cpio -o -H odc --quiet) > $out";
    "gnu.tar" = refImg "gnu.tar" "tar -cf $out tree";
    "posix.tar" = img "posix.tar" "tar --format=posix -cf $out tree";
    "tar.gz" = img "tar.gz" "tar -cf - tree | gzip -c > $out";
    "tar.xz" = img "tar.xz" "tar -cf - tree | xz -c > $out";
    "tar.zst" = img "tar.zst" "tar -cf - tree | zstd -q -c > $out";
    "tar.bz2" = img "tar.bz2" "tar -cf - tree | bzip2 -c > $out";
    "tar.lz4" = img "tar.lz4" "tar -cf - tree | lz4 -q -c > $out";
    "legacy.lz4" = img "legacy.lz4" "tar -cf - tree | lz4 -l -q -c > $out";
    # Not images.
    "script.sh" = mk "script.sh" { } "printf '#!/bin/sh\\\\nexec %s/bin/dep\\\\n' \${dep} > $out";
    "executable" = mk "executable" { } "cp /bin/sh $out";
    # Near misses: the magic where the format has it, the structure around it wrong.
    "fake-iso" = mk "fake-iso" { } "head -c 32769 /dev/zero > $out; printf 'CD001 is not enough %s' \${dep} >> $out; head -c 4096 /dev/zero >> $out";
    "fake-squashfs" = mk "fake-squashfs" { } "printf 'hsqs and some text about %s' \${dep} > $out; head -c 4096 /dev/zero >> $out";
    "fake-gpt" = mk "fake-gpt" { } "head -c 512 /dev/zero > $out; printf 'EFI PART but no header %s' \${dep} >> $out; head -c 4096 /dev/zero >> $out";
    "fake-tar" = mk "fake-tar" { } "head -c 257 /dev/zero | tr '\\\\0' a > $out; printf 'ustar  ' >> $out; head -c 4096 /dev/zero >> $out";
  };
  isoDir = mk "nixos-iso-dir" { } (tree true + ''
    mkdir -p $out/iso $out/nix-support
    xorriso -as mkisofs -quiet -R -o $out/iso/nixos.iso tree
    ln -s iso/nixos.iso $out/latest.iso
    echo "file iso $out/iso/nixos.iso" > $out/nix-support/hydra-build-products
  '');
  mixedDir = mk "iso-and-readme" { } (tree true + ''
    mkdir -p $out
    xorriso -as mkisofs -quiet -R -o $out/nixos.iso tree
    echo "Boot it. It holds \${dep}." > $out/README
  '');
  refImages = [ images."rock-joliet.iso" images."fs.ext4" images."newc.cpio" images."gnu.tar" isoDir mixedDir images."script.sh" images."fake-iso" images."fake-squashfs" images."fake-gpt" ];
  root = mk "root" { } ''
    mkdir -p $out; echo "\${builtins.concatStringsSep " " (map toString refImages)}" > $out/uses
  '';
in [ root isoDir mixedDir ] ++ builtins.attrValues images
`;

let built: { env: NixEnv; outs: Map<string, string>; root: string } | undefined;
let env: NixEnv | undefined;
after(() => env?.cleanup());

function scenario(t: import('node:test').TestContext): typeof built {
  if (!requireTools(t, ...TOOLS)) return undefined;
  if (built) return built;
  env = makeNixEnv('nix-seal-sniff-');
  const paths = env.build(EXPR);
  const outs = new Map(paths.map((p) => [basename(p).slice(33), p]));
  built = { env, outs, root: outs.get('root')! };
  return built;
}

test('each image the real tools make is recognised, with its format; non-images and near misses are not', (t) => {
  const s = scenario(t);
  if (!s) return;
  const got: Record<string, ImageFormat | undefined> = {};
  for (const name of Object.keys(EXPECTED)) {
    const p = s.outs.get(name);
    assert.ok(p, `nix-build built ${name}`);
    const sniff = sniffStorePath(p);
    assert.equal(sniff.kind, 'file', name);
    got[name] = sniff.image ? sniff.files[0]!.detection.format : undefined;
  }
  assert.deepEqual(got, EXPECTED);
});

test('directory outputs: an isoImage-like output is an image, an ISO beside a README is not', (t) => {
  const s = scenario(t);
  if (!s) return;
  const isoDir = sniffStorePath(s.outs.get('nixos-iso-dir')!);
  assert.deepEqual(
    { image: isoDir.image, kind: isoDir.kind, files: isoDir.files.map((f) => [f.file, f.detection.format]) },
    { image: true, kind: 'directory', files: [['iso/nixos.iso', 'iso9660']] },
  );
  const mixed = sniffStorePath(s.outs.get('iso-and-readme')!);
  assert.deepEqual(mixed, { image: false, kind: 'directory', files: [], reason: 'README is not an image' });
});

test('suggest finds exactly the images that refer to other paths, with their formats', (t) => {
  const s = scenario(t);
  if (!s) return;
  // Nix recorded dep as a reference of the images with a copy inside (and of the text files).
  const refs = (name: string): string[] => s.env.nixStore(['-q', '--references', s.outs.get(name)!]).split('\n').filter(Boolean);
  for (const name of ['rock-joliet.iso', 'fs.ext4', 'newc.cpio', 'gnu.tar', 'nixos-iso-dir', 'iso-and-readme', 'script.sh', 'fake-iso', 'fake-squashfs', 'fake-gpt']) {
    assert.ok(refs(name).some((r) => r.endsWith('-dep-1.0')), `${name} refers to dep`);
  }
  const r = runCli(['suggest', s.root, '--json'], s.env.env, s.env.root);
  assert.equal(r.code, 0, r.stderr);
  const json = JSON.parse(r.stdout) as { images: { path: string; files: { file: string; format: string }[] }[] };
  const found = Object.fromEntries(json.images.map((i) => [basename(i.path).slice(33), i.files.map((f) => `${f.file || '.'}:${f.format}`).join(' ')]));
  assert.deepEqual(found, {
    'rock-joliet.iso': '.:iso9660',
    'fs.ext4': '.:ext4',
    'newc.cpio': '.:cpio-newc',
    'gnu.tar': '.:tar',
    'nixos-iso-dir': 'iso/nixos.iso:iso9660',
  });
});
