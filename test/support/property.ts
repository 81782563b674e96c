/**
 * Seeds for fast-check: every `fc.assert` in the tests passes its parameters through `seeded`,
 * so each property runs from a known seed and a failure can be replayed. fast-check's failure
 * message starts with `{ seed: S, path: "P", … }`; `FC_SEED=S` reruns every property of the run
 * from S (add `--test-name-pattern` to run only the failing test), and `FC_PATH=P` beside it
 * replays the shrunk counterexample at once. See README.md, "Tests".
 */
import type fc from 'fast-check';

/** The seed of a property that names none: fixed, so a run of the suite is reproducible. */
export const DEFAULT_SEED = 0x5eed;

function envInt(name: string): number | undefined {
  const v = process.env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw new Error(`${name}=${v} is not an integer`);
  return n;
}

/**
 * `params` with a seed: FC_SEED when set, else the property's own `seed`, else DEFAULT_SEED.
 * FC_PATH (with FC_SEED) replays one failure.
 */
export function seeded<T>(params: fc.Parameters<T> = {}): fc.Parameters<T> {
  const seed = envInt('FC_SEED') ?? params.seed ?? DEFAULT_SEED;
  const path = process.env.FC_PATH;
  return { ...params, seed, ...(path !== undefined && path !== '' ? { path } : {}) };
}
