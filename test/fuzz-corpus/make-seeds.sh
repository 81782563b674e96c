#!/bin/bash
# Builds the fuzz seeds: small real images of each format. Run from an empty directory.
set -euo pipefail
export SOURCE_DATE_EPOCH=0
tree() { # $1: directory
  rm -rf "$1"; mkdir -p "$1/sub/deeper" "$1/many"
  printf 'hello\n' > "$1/a.txt"; printf '#!/bin/sh\necho hi\n' > "$1/run.sh"; chmod 755 "$1/run.sh"
  : > "$1/empty"
  head -c 6000 /dev/urandom > "$1/sub/noise.bin"   # several blocks (extents, block maps, clusters)
  for i in $(seq 1 1000); do echo "compressible line $i of text"; done > "$1/sub/text.txt"
  printf 'leaf\n' > "$1/sub/deeper/leaf"
  for i in $(seq 1 40); do printf '%s\n' "$i" > "$1/many/entry-$i"; done
  ln -s a.txt "$1/short-link"
  ln -s "/nix/store/$(printf 'a%.0s' $(seq 32))-some-package-1.0/bin/program-with-a-long-name" "$1/long-link"
  printf 'long\n' > "$1/$(printf 'L%.0s' $(seq 120))-long-name"
}
tree t
# ext4
mkfs.ext4 -q -F -b 1024 -N 128 -O ^has_journal -E root_owner=0:0 -d t ext4-extents.img 600K
mkfs.ext4 -q -F -b 1024 -N 128 -O ^has_journal,^extent,^64bit -E root_owner=0:0 -d t ext4-blockmap.img 600K
mkfs.ext4 -q -F -b 1024 -N 128 -O ^has_journal,inline_data -I 512 -E root_owner=0:0 -d t ext4-inline.img 600K
# erofs
mkfs.erofs --quiet -T0 erofs-plain.img t
mkfs.erofs --quiet -T0 -zlz4hc -C16384 -Eztailpacking erofs-lz4hc-big-tail.img t
mkfs.erofs --quiet -T0 -zlz4 -Elegacy-compress erofs-lz4-full.img t
mkfs.erofs --quiet -T0 -zlz4hc erofs-lz4hc.img t   # re-encoded with lzma for a seed (see erofs/MANIFEST.json)
mkfs.erofs --quiet -T0 --chunksize=4096 erofs-chunks.img t
# fat (no symlinks)
rm -rf f; cp -r t f; rm f/short-link f/long-link
for b in 12 16; do mkfs.vfat -C -F $b -s 1 -n SEED fat$b.img $((b == 12 ? 1024 : 4200)) >/dev/null; MTOOLS_SKIP_CHECK=1 mcopy -s -i fat$b.img f/* ::/; done
mkfs.vfat -C -F 32 -s 1 -S 512 -n SEED fat32.img 34000 >/dev/null; MTOOLS_SKIP_CHECK=1 mcopy -s -i fat32.img f/* ::/
# partitions: MBR with an extended partition and logicals, GPT
truncate -s 2M mbr.img
printf 'label: dos\nstart=64, size=1200, type=83\nstart=1400, size=2000, type=5\nstart=1500, size=200, type=83\nstart=1800, size=300, type=c\n' | sfdisk -q mbr.img
dd if=ext4-extents.img of=mbr.img bs=512 seek=64 conv=notrunc status=none
truncate -s 2M gpt.img
sgdisk -a 8 -n 1:40:+600K -t 1:8300 -n 2:0:+256K -t 2:ef00 gpt.img >/dev/null
dd if=ext4-extents.img of=gpt.img bs=512 seek=40 conv=notrunc status=none
# qcow2 of a small disk: plain and compressed (-c)
truncate -s 2M raw.img; dd if=ext4-extents.img of=raw.img conv=notrunc status=none
qemu-img convert -q -f raw -O qcow2 -o cluster_size=4096 raw.img qcow2-plain.qcow2
qemu-img convert -q -c -f raw -O qcow2 -o cluster_size=4096 raw.img qcow2-compressed.qcow2
# tar and cpio
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=gnu -C t -cf tar-gnu.tar .
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --format=pax -C t -cf tar-pax.tar .
(cd t && find . | LC_ALL=C sort | cpio --quiet -o -H newc > ../cpio-newc.cpio)
(cd t && find . | LC_ALL=C sort | cpio --quiet -o -H crc > ../cpio-crc.cpio)
(cd t && find . | LC_ALL=C sort | cpio --quiet -o -H odc > ../cpio-odc.cpio)
