/**
 * Checked element reads. Under `noUncheckedIndexedAccess` `a[i]` is `number | undefined`; a `!`
 * silences that and, when the index is wrong, lets undefined flow on (into NaN, into a wrong
 * answer). These stop there instead, with a RangeError naming the index: a bug, never a verdict
 * about the input (a reader must check untrusted offsets itself and throw its own EFORMAT).
 *
 * One function per element type on purpose: V8 drops the undefined check of an in-bounds typed
 * array load, so a monomorphic accessor is free where it is inlined, while one generic accessor
 * fed several array types makes its load polymorphic, about twice as slow in a graph walk
 * (BENCHMARKS.md, "Figures behind code choices"). The innermost per-edge and per-byte loops keep
 * `!` where even this measures (they say so).
 */

function outside(i: number, length: number): RangeError {
  return new RangeError(`index ${i} is outside an array of ${length}`);
}

export function u8At(a: Uint8Array, i: number): number {
  const v = a[i];
  if (v === undefined) throw outside(i, a.length);
  return v;
}

export function u16At(a: Uint16Array, i: number): number {
  const v = a[i];
  if (v === undefined) throw outside(i, a.length);
  return v;
}

export function u32At(a: Uint32Array, i: number): number {
  const v = a[i];
  if (v === undefined) throw outside(i, a.length);
  return v;
}

export function i32At(a: Int32Array, i: number): number {
  const v = a[i];
  if (v === undefined) throw outside(i, a.length);
  return v;
}

export function u64At(a: BigUint64Array, i: number): bigint {
  const v = a[i];
  if (v === undefined) throw outside(i, a.length);
  return v;
}

export function f64At(a: Float64Array, i: number): number {
  const v = a[i];
  if (v === undefined) throw outside(i, a.length);
  return v;
}

/** An element of an ordinary array (or a string's code unit array) that must be there. */
export function itemAt<T>(a: readonly T[], i: number): T {
  const v = a[i];
  if (v === undefined && (i < 0 || i >= a.length || !Number.isInteger(i))) throw outside(i, a.length);
  return v as T;
}
