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
