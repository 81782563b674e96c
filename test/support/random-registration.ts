/**
 * A synthetic closure of N paths as a registration file (closureInfo's format, with hashes), for
 * the report's large-closure test and benchmark: `--store registration:FILE` loads it like any
 * store. Deterministic for a seed. Path N-1 is the root and reaches every path; every `sealEvery`th
 * path is named `….iso` so `--seal '*.iso'` erases part of the closure.
 */
import { writeFileSync } from 'node:fs';
import { prng } from './prng.js';

const NIX32 = '0123456789abcdfghijklmnpqrsvwxyz';
/** sha256 of the empty string in nix32, a hash Nix accepts (the report does not check hashes). */
const HASH = 'sha256:0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73';

export interface RandomRegistration {
  file: string;
  root: string;
  paths: string[];
}

export function writeRandomRegistration(file: string, n: number, opts: { seed?: number; sealEvery?: number; storeDir?: string } = {}): RandomRegistration {
  const rand = prng(opts.seed ?? 1);
  const storeDir = opts.storeDir ?? '/nix/store';
  const sealEvery = opts.sealEvery ?? 1000;
  const paths: string[] = [];
  for (let i = 0; i < n; i++) {
    let h = '';
    for (let k = 0; k < 32; k++) h += NIX32[Math.floor(rand() * 32)];
    const name = i === n - 1 ? 'root-env' : i % sealEvery === sealEvery - 1 ? `image-${i}.iso` : `pkg-${i}-${(i * 7) % 13}.${i % 5}`;
    paths.push(`${storeDir}/${h}-${name}`);
  }
  const refs: Set<number>[] = Array.from({ length: n }, () => new Set());
  // The 30 paths before each seal are its own (what its image embeds): only it and they refer to them.
  const owner = new Int32Array(n).fill(-1);
  for (let i = 0; i < n - 1; i++) {
    const seal = i + sealEvery - 1 - (i % sealEvery);
    if (seal < n - 1 && seal - i <= 30 && seal !== i) owner[i] = seal;
  }
  for (let i = 0; i < n - 1; i++) {
    // Someone a little later refers to i, so the root (n-1) reaches everything.
    const by = owner[i]! >= 0 ? owner[i]! : Math.min(n - 1, i + 1 + Math.floor(rand() * 40));
    refs[by]!.add(i);
  }
  for (let i = 1; i < n; i++) {
    const extra = Math.floor(rand() * 4);
    for (let k = 0; k < extra; k++) {
      const j = Math.floor(rand() * i * (rand() < 0.8 ? 1 : 0.05));
      if (owner[j]! < 0 || owner[j] === owner[i] || owner[j] === i) refs[i]!.add(j);
    }
  }
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    const size = Math.floor(200 + rand() ** 3 * 5e6);
    const r = [...refs[i]!].map((j) => paths[j]!);
    lines.push(paths[i]!, HASH, String(size), '', String(r.length), ...r);
  }
  writeFileSync(file, lines.join('\n') + '\n');
  return { file, root: paths[n - 1]!, paths };
}
