/**
 * The checkout's CLI as a Nix package, for tests of nix/default.nix: a derivation whose
 * `$out/bin/nix-seal` is a script with the host's node as its interpreter
 * (`#!<process.execPath>`) that imports bin/nix-seal.js from the checkout. Nix can exec it as a
 * builder directly, with no PATH and no shell. Needs a store without the sandbox (nix-env.ts):
 * node and the checkout live outside the store.
 */
import { pathToFileURL } from 'node:url';
import { CLI } from './cli.js';
import type { NixEnv } from './nix-env.js';

export interface NixSealDrv {
  /** The store path holding bin/nix-seal. */
  path: string;
  /** A Nix expression for it (a string in the store, with context): `builtins.storePath "…"`. */
  expr: string;
}

/** Builds the wrapper in `env`'s store. */
export function buildNixSealDrv(env: NixEnv): NixSealDrv {
  // A CommonJS script (no .js extension, no package.json with "type": "module" near it), which may
  // import() the ESM entry point. bin/nix-seal.js reads process.argv when it is imported.
  const script = [
    `#!${process.execPath}`,
    `// nix-seal from the checkout ${CLI}, run by the host's node (test wrapper)`,
    `import(${JSON.stringify(pathToFileURL(CLI).href)}).catch((e) => { console.error(e); process.exit(70); });`,
    '',
  ].join('\n');
  const [out] = env.build(`
    derivation {
      name = "nix-seal-checkout";
      system = builtins.currentSystem;
      builder = "/bin/sh";
      script = builtins.toFile "nix-seal-script" ${JSON.stringify(script).replace(/\$\{/g, '\\${')};
      args = [ "-c" "/bin/mkdir -p $out/bin && /bin/cp $script $out/bin/nix-seal && /bin/chmod 555 $out/bin/nix-seal" ];
    }`);
  if (!out) throw new Error('nix-seal wrapper: nix-build printed no path');
  return { path: out, expr: `(builtins.storePath "${out}")` };
}
