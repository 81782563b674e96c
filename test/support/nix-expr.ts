/**
 * The `mk` helper of the tests' Nix expressions, as a `let` binding: `mk name extraAttrs script`
 * is a derivation built by /bin/sh with the host's tools on PATH (sandbox off, see nix-env.ts),
 * so tests can drive xorriso, mksquashfs, mkfs.* and the like inside a real Nix build.
 */
export const NIX_MK = `mk = name: extra: script: derivation ({
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    args = [ "-e" "-c" script ];
    PATH = "/usr/bin:/bin:/usr/sbin:/sbin";
  } // extra);`;

/**
 * The builder script of a NixOS-like ISO (one file), for a `mk` derivation with
 * `exportReferencesGraph = [ "closure" nixosSystem ]` and `linux`, `nixosSystem` in scope: its
 * Rock Ridge + Joliet tree holds nix/store/<basename> copies of the whole closure (so Nix finds the
 * references in the image's bytes), the closure as nix-path-registration, a grub.cfg naming the
 * kernel and init, and optionally `payloadBytes` of random bytes standing for the compressed
 * nix-store.squashfs. exportReferencesGraph writes ./closure as repeated records: path line,
 * deriver line (empty here), reference count N, N reference lines.
 * Shared by the seed scenario (test/support/seed-scenario.ts) and the initrd benchmark. Lines are
 * indented for a `''` string whose lines start with 4 spaces (the heredoc's EOF ends up at column 0).
 */
export function nixosLikeIsoScript(o: { volume: string; menuEntry: string; payloadBytes?: number }): string {
  // `\${…}` is Nix antiquotation, escaped for this template literal.
  return [
    'mkdir -p tree/nix/store tree/boot/grub',
    'while read -r path; do',
    '  read -r deriver',
    '  read -r count',
    '  i=0',
    '  while [ "$i" -lt "$count" ]; do read -r ref; i=$((i + 1)); done',
    '  cp -a "$path" tree/nix/store/',
    'done < closure',
    'cp closure tree/nix-path-registration',
    "cat > tree/boot/grub/grub.cfg <<'EOF'",
    `menuentry "${o.menuEntry}" {`,
    '  linux \${linux}/bzImage init=\${nixosSystem}/init',
    '}',
    'EOF',
    ...(o.payloadBytes === undefined ? [] : [`head -c ${o.payloadBytes} /dev/urandom > tree/nix-store.squashfs`]),
    `xorriso -as mkisofs -R -J -V ${o.volume} -o $out tree`,
    'rm -rf tree',
  ].join('\n    ');
}
