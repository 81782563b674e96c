/**
 * The one seeded PRNG of the tests and benchmarks (mulberry32): generated trees, bytes and
 * fixtures are the same on every machine and every run, so a failure or a figure can be reproduced.
 * Not for anything fast-check generates: properties draw from fast-check's own seeded generator
 * (test/support/property.ts).
 */

/** A generator of numbers in [0, 1) from a 32-bit seed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` deterministic bytes that do not compress. */
export function noiseBytes(n: number, seed: number): Buffer {
  return fillNoise(Buffer.alloc(n), prng(seed));
}

/** Fills `b` from `rand` (one generator can then feed several buffers). Returns `b`. */
export function fillNoise(b: Buffer, rand: () => number): Buffer {
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
  return b;
}
