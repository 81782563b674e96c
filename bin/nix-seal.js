#!/usr/bin/env node
// The CLI's entry point. In a checkout before `npm ci` there is no dist/ (nothing compiled) and no
// node_modules/: say so in one line instead of a module-not-found trace.
import { existsSync } from 'node:fs';
import module from 'node:module';
import { fileURLToPath } from 'node:url';

// Node ≥ 22.1 keeps compiled code of the modules below in a cache ($TMPDIR/node-compile-cache, or
// NODE_COMPILE_CACHE; off with NODE_DISABLE_COMPILE_CACHE=1): start-up is most of a small
// closure's time. Node 20 has no such cache: nothing to do there.
module.enableCompileCache?.();

let main;
try {
  ({ main } = await import('../dist/src/cli/main.js'));
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  const checkout = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '');
  const built = existsSync(fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url)));
  const what = built ? 'is missing its dependencies (no node_modules)' : 'is not built (no dist/)';
  process.stderr.write(`nix-seal: ${what}: run 'npm ci' in ${checkout} (it installs the dependencies and compiles nix-seal)\n`);
  process.exit(2);
}
process.exitCode = await main(process.argv.slice(2));
