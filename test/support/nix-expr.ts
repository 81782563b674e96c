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
 * `let` bindings of two stand-in packages most image tests start from: `glibc` (a libc.so.6 of
 * `libcBytes` random bytes, so it holds no store hash) and `bash`, whose script names glibc's path
 * (Nix records the reference). `shLink` adds bin/sh -> bash.
 */
export function nixGlibcBash(libcBytes: number, opts: { shLink?: boolean } = {}): string {
  // `\${…}` is Nix antiquotation, escaped for this template literal.
  return `glibc = mk "glibc-2.37" { } ''
    mkdir -p $out/lib; head -c ${libcBytes} /dev/urandom > $out/lib/libc.so.6
  '';
  bash = mk "bash-5.2" { } ''
    mkdir -p $out/bin; printf '#!/bin/sh\\n# linked against %s/lib/libc.so.6\\n' \${glibc} > $out/bin/bash; chmod +x $out/bin/bash${opts.shLink === true ? '; ln -s bash $out/bin/sh' : ''}
  '';`;
}

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
