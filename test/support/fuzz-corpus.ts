/**
 * Seeded mutation fuzzing of an image reader over kept corpora (test/fuzz-corpus/<format>/), and
 * the replay of those corpora. A corpus is a MANIFEST.json and gzipped images: seeds (small images
 * made by the real tools, the command in `why`) and mutants kept because they end in a distinct
 * error. Every input must end in entries and contents or a NixSealError within a work budget
 * (reads and bytes counted, not time); anything else
 * fails with the fast-check seed to replay it (FC_SEED=N, more runs FUZZ_RUNS=N).
 *
 * A mutant's recorded outcome and offset are regression pins (what this reader said when it was
 * kept), not an oracle: a deliberate change of where a reader blames a corruption updates them.
 * FUZZ_SAVE=1 adds the first mutant of each new error kind to the corpus.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { NixSealError } from '../../src/errors.js';
import type { ImageReader } from '../../src/formats/image.js';
import { BufferSource } from '../../src/formats/byte-source.js';
import { seeded } from './property.js';

export const CORPUS_ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../../test/fuzz-corpus');

export interface CorpusEntry {
  /** 'ok', or the NixSealError code. */
  outcome: string;
  /** The error's offset when it has one (a regression pin). */
  offset?: number;
  /** Seeds: the command that made the image. Mutants: the error message when kept. */
  why: string;
  seed?: true;
}

export type Outcome = { outcome: string; offset?: number; message?: string };

/**
 * The work one input may cost, counted as it happens (not timed, so the bound holds on a loaded
 * machine): bytes read from the image, file bytes produced, and 512 units per read call and per
 * entry (so a loop of empty reads or of entries is not free). A reader that goes over has lost a
 * budget of its own (a cycle, an amplification) and the input fails at once, even when it would
 * never have ended. Per byte of input with a floor for tiny ones; FUZZ_WORK=1 prints the largest
 * share of its budget each format's inputs used (qcow2 the most: a mutated disk size read up to
 * READ_CAP as zeros; the default runs of every format stay under a third).
 */
const WORK_PER_INPUT_BYTE = 256;
const WORK_FLOOR = 4 << 20;
const UNITS_PER_CALL = 512;
/** How much of each file a fuzz run reads. */
const READ_CAP = 8 << 20;

/** Not a NixSealError: a reader over its budget fails the test instead of counting as a refusal. */
export class WorkBudgetExceeded extends Error {}

export class WorkMeter {
  used = 0;
  constructor(readonly limit: number) {}
  charge(units: number, what: string): void {
    this.used += units;
    if (this.used > this.limit) throw new WorkBudgetExceeded(`over the work budget of ${this.limit} units at ${what}: a missing budget in the reader?`);
  }
}

export const workBudgetFor = (inputLength: number): number => Math.max(WORK_FLOOR, WORK_PER_INPUT_BYTE * inputLength);

/** A BufferSource that charges its reads to a meter. */
class MeteredSource extends BufferSource {
  constructor(
    bytes: Uint8Array,
    private readonly meter: WorkMeter,
  ) {
    super(bytes);
  }
  override read(offset: number, length: number): Uint8Array {
    this.meter.charge(UNITS_PER_CALL + Math.max(0, length), `a read of ${length} bytes at ${offset}`);
    return super.read(offset, length);
  }
}

/**
 * Opens `bytes` (without asking `detect`: open must refuse what it cannot read), lists, reads every
 * file, locates a few offsets, within `meter`'s budget (the input's, by default).
 */
export function exerciseImage(reader: ImageReader, bytes: Uint8Array, probes: readonly number[] = [], meter = new WorkMeter(workBudgetFor(bytes.length))): Outcome {
  try {
    const view = reader.open(new MeteredSource(bytes, meter), 'fuzz');
    for (const e of view.entries()) {
      meter.charge(UNITS_PER_CALL, `entry ${e.path}`);
      if (e.type !== 'file') continue;
      // A mutated size can claim gigabytes (of holes, read as zeros): honest work, but not this
      // test's; the first READ_CAP bytes are read, the whole file when it is smaller.
      let n = 0;
      for (const c of view.read(e)) {
        meter.charge(UNITS_PER_CALL + c.length, `${e.path}'s contents`);
        n += c.length;
        if (n >= READ_CAP) break;
      }
      if (n !== e.size && n < READ_CAP) throw new Error(`${e.path}: read ${n} of ${e.size} bytes`);
      const fsrc = view.fileSource(e);
      if (fsrc !== undefined && fsrc.size > 0) fsrc.read(fsrc.size - 1, 1);
    }
    for (const o of [0, bytes.length >> 1, bytes.length - 1, ...probes]) if (o >= 0 && o < bytes.length) view.locate(o);
    return { outcome: 'ok' };
  } catch (err) {
    if (err instanceof NixSealError) {
      const offset = (err.details as { offset?: unknown }).offset;
      return typeof offset === 'number' ? { outcome: err.code, offset, message: err.message } : { outcome: err.code, message: err.message };
    }
    throw err;
  }
}

/** The largest share of its budget an input used, per format (printed with FUZZ_WORK=1). */
const mostWork = new Map<string, number>();
process.on('exit', () => {
  if (process.env.FUZZ_WORK !== '1') return;
  for (const [format, share] of mostWork) process.stderr.write(`fuzz work: ${format}'s inputs used at most ${(100 * share).toFixed(1)} % of their budget\n`);
});

/** exerciseImage, naming the input when it goes over its budget. */
function budgeted(reader: ImageReader, bytes: Uint8Array, probes: readonly number[], label: string, format: string): Outcome {
  const meter = new WorkMeter(workBudgetFor(bytes.length));
  try {
    return exerciseImage(reader, bytes, probes, meter);
  } catch (err) {
    if (err instanceof WorkBudgetExceeded) err.message = `${label} (${bytes.length} bytes): ${err.message}`;
    throw err;
  } finally {
    mostWork.set(format, Math.max(mostWork.get(format) ?? 0, meter.used / meter.limit));
  }
}

export function readManifest(format: string): Record<string, CorpusEntry> {
  return JSON.parse(readFileSync(join(CORPUS_ROOT, format, 'MANIFEST.json'), 'utf8')) as Record<string, CorpusEntry>;
}

export const loadCorpusFile = (format: string, name: string): Buffer => gunzipSync(readFileSync(join(CORPUS_ROOT, format, name)));

/** Every corpus file ends as recorded (outcome, and offset as a regression pin); all files are in the manifest. */
export function replayCorpus(reader: ImageReader, format: string): void {
  const manifest = readManifest(format);
  const files = readdirSync(join(CORPUS_ROOT, format)).filter((f) => f.endsWith('.gz'));
  assert.deepEqual(files.sort(), Object.keys(manifest).sort(), 'MANIFEST.json lists exactly the corpus files');
  assert.ok(Object.values(manifest).some((e) => e.seed === true), 'a seed');
  assert.ok(Object.values(manifest).some((e) => e.seed !== true), 'a mutant');
  for (const [name, want] of Object.entries(manifest)) {
    const got = budgeted(reader, loadCorpusFile(format, name), [], name, format);
    assert.equal(got.outcome, want.outcome, `${name}: ${got.message ?? 'ok'}`);
    // A regression pin: where the reader blamed this corruption when the mutant was kept.
    assert.equal(got.offset, want.offset, `${name}: offset (${got.message})`);
  }
}

/** One edit of a mutation. */
type Edit = { at: number; kind: 'byte' | 'u32' | 'u16' | 'xor' | 'digit'; value: number; length: number };

const INTERESTING_32 = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x1000, 0x7fff, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

/** Applies `edits` to `b` in place and returns an undo. */
function apply(b: Uint8Array, edits: readonly Edit[]): () => void {
  const saved: [number, Uint8Array][] = [];
  for (const e of edits) {
    const n = e.kind === 'u32' ? 4 : e.kind === 'u16' ? 2 : e.kind === 'xor' ? e.length : 1;
    const at = Math.min(e.at, b.length - n);
    if (at < 0) continue;
    saved.push([at, b.slice(at, at + n)]);
    if (e.kind === 'byte') b[at] = e.value & 0xff;
    else if (e.kind === 'digit') b[at] = 0x30 + (e.value % 10);
    else if (e.kind === 'xor') for (let i = 0; i < n; i++) b[at + i] = b[at + i]! ^ (e.value & 0xff || 0x5a);
    else for (let i = 0; i < n; i++) b[at + i] = (e.value >>> (8 * i)) & 0xff;
  }
  return () => {
    for (let i = saved.length - 1; i >= 0; i--) b.set(saved[i]![1], saved[i]![0]);
  };
}

/** 512-byte blocks that are not all zeros: where the structure is (most of a small image is zeros). */
function hotBlocks(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i * 512 < b.length; i++) if (b.subarray(i * 512, i * 512 + 512).some((x) => x !== 0)) out.push(i);
  return out;
}

/** A message with its numbers and quoted names generalised: one kept mutant per kind of error. */
const kindOf = (r: Outcome): string => `${r.outcome}: ${(r.message ?? '').replace(/^Cannot read [^:]*: /, '').replace(/"[^"]*"/g, 'S').replace(/0x[0-9a-f]+|\d+/gi, 'N')}`;

const slug = (s: string): string => s.replace(/^[A-Z]+: /, '').replace(/[^a-zA-Z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 70).toLowerCase();

/**
 * Mutates each seed of the corpus `runs` times (fast-check, seeded): bytes, 16- and 32-bit fields
 * set to edge values, runs XORed, ASCII digits changed (tar, cpio), truncation; each must end in
 * entries or a NixSealError within the work budget. Returns the kinds of error seen, per seed.
 */
export function fuzzCorpus(reader: ImageReader, format: string, runs = 300): Map<string, number> {
  const manifest = readManifest(format);
  const kinds = new Map<string, number>();
  const numRuns = Number(process.env.FUZZ_RUNS ?? runs);
  const save = process.env.FUZZ_SAVE === '1';
  for (const [name, entry] of Object.entries(manifest)) {
    if (entry.seed !== true) continue;
    const bytes = new Uint8Array(loadCorpusFile(format, name));
    assert.equal(exerciseImage(reader, bytes).outcome, 'ok', `the seed ${name} reads`);
    const hot = hotBlocks(bytes);
    const pos = fc.oneof(
      { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...hot), fc.nat(511)).map(([blk, o]) => Math.min(bytes.length - 1, blk * 512 + o)) },
      { weight: 1, arbitrary: fc.nat(bytes.length - 1) },
    );
    const edit: fc.Arbitrary<Edit> = fc.record({
      at: pos,
      kind: fc.constantFrom('byte', 'u32', 'u16', 'xor', 'digit'),
      value: fc.oneof(fc.constantFrom(...INTERESTING_32), fc.nat(0xffffffff), fc.constant(bytes.length)),
      length: fc.integer({ min: 1, max: 16 }),
    });
    const mutation = fc.record({ edits: fc.array(edit, { minLength: 1, maxLength: 6 }), cut: fc.option(fc.nat(bytes.length), { freq: 8 }) });
    fc.assert(
      fc.property(mutation, ({ edits, cut }) => {
        // FUZZ_TRACE=FILE: the mutation about to run, to find one that hangs.
        if (process.env.FUZZ_TRACE !== undefined) writeFileSync(process.env.FUZZ_TRACE, JSON.stringify({ seed: name, edits, cut }));
        const undo = apply(bytes, edits);
        try {
          const input = cut === null ? bytes : bytes.subarray(0, cut);
          const r = budgeted(reader, input, edits.map((e) => e.at), `${format}/${name} mutant`, format);
          if (r.outcome === 'ok') return;
          const k = kindOf(r);
          kinds.set(k, (kinds.get(k) ?? 0) + 1);
          if (save && kinds.get(k) === 1) keep(format, name, input, r, k);
        } finally {
          undo();
        }
      }),
      seeded({ numRuns, seed: 0x5eed, verbose: 1, endOnFailure: true }),
    );
  }
  return kinds;
}

function keep(format: string, seedName: string, bytes: Uint8Array, r: Outcome, kind: string): void {
  const dir = join(CORPUS_ROOT, format);
  const manifest = readManifest(format);
  const file = `${seedName.replace(/\.gz$/, '').replace(/\.[^.]+$/, '')}--${slug(kind)}.gz`;
  if (manifest[file] !== undefined || !existsSync(dir)) return;
  writeFileSync(join(dir, file), gzipSync(bytes, { level: 9 }));
  manifest[file] = { outcome: r.outcome, ...(r.offset === undefined ? {} : { offset: r.offset }), why: r.message ?? '' };
  writeFileSync(join(dir, 'MANIFEST.json'), `${JSON.stringify(manifest, null, 2)}\n`);
}
