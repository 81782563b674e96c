/**
 * A streaming reference scanner with Nix's semantics (libstore/references.cc) that reports every
 * occurrence, where Nix stops at the first: the evidence behind `why --precise` and the audit.
 */
import { i32At, itemAt, u8At } from '../checked-index.js';
import { NixSealError } from '../errors.js';
import { NIX32_ALPHABET } from '../store/nix32.js';
import { HASH_PART_LENGTH } from '../store/store-path.js';

/** Default number of context bytes reported on each side of a hit. */
export const DEFAULT_CONTEXT = 16;
/** Upper bound for the `context` option (the scanner keeps ~31 + context bytes of history). */
export const MAX_CONTEXT = 4096;

/** Digit value of each byte in the nix32 alphabet, NOT for every other byte. */
const NOT = 255;
const DIGIT = new Uint8Array(256).fill(NOT);
for (let i = 0; i < NIX32_ALPHABET.length; i++) DIGIT[NIX32_ALPHABET.charCodeAt(i)] = i;

/** Characters per block of the shift table: 4 × 5 bits = a 20-bit block key. */
const BLOCK = 4;
/** How far the window may move when its last block ends no candidate anywhere: 32 - 4 + 1. */
const MAX_SHIFT = HASH_PART_LENGTH - BLOCK + 1;
/**
 * The shift for a window whose last character is in the alphabet but one of the 3 before it is not,
 * indexed by a mask with bit 1/2/3 set for a bad character at window offset 30/29/28 (the rightmost
 * bad one decides: Nix's jump of j+1).
 */
const BAD_SHIFT = new Uint8Array(16);
for (let m = 2; m < 16; m += 2) BAD_SHIFT[m] = m & 2 ? 31 : m & 4 ? 30 : 29;

/**
 * Bits of the shift table's index. The 20-bit block key is folded into fewer bits when there are
 * few candidates: a table that fits the CPU caches is faster (BENCHMARKS.md, "Figures behind code
 * choices"), and a quarter full at most it still lets the window move ~26 of 29 bytes on average.
 */
function tableBits(candidates: number): number {
  return Math.min(20, Math.max(12, Math.ceil(Math.log2(Math.max(1, candidates * (HASH_PART_LENGTH - BLOCK + 1)))) + 2));
}

/** True when `s` is 32 characters of the nix32 alphabet (the only strings Nix's search can find). */
export function isHashPart(s: string): boolean {
  if (s.length !== HASH_PART_LENGTH) return false;
  for (let i = 0; i < HASH_PART_LENGTH; i++) {
    const c = s.charCodeAt(i);
    if (c > 255 || DIGIT[c] === NOT) return false;
  }
  return true;
}

/**
 * A compiled candidate set: the hash parts to look for and the tables of the search. Build it once
 * and share it between scanners (e.g. one per file of a store path); it is never modified.
 */
export class HashPartSet {
  /** The distinct hash parts, in first-seen order; matches are reported by index into this list. */
  readonly hashes: readonly string[];
  /** The hash parts' bytes, 32 per candidate, in `hashes` order. */
  private readonly bytes: Uint8Array;
  /** log2 of the table size; a block key k goes to slot (k & mask) ^ (k >>> bits). */
  private readonly bits: number;
  private readonly mask: number;
  /**
   * Wu-Manber shift per slot: how far the window may move when its last 4 characters fall in the
   * slot (the least, over candidates and positions, of the distance from a block in that slot to
   * the candidate's end). 0: the window may end like some candidates; they are compared.
   */
  private readonly shift: Uint8Array;
  /** Candidates by the slot of their last 4 characters: first index per slot (-1: none), then chained. */
  private readonly head: Int32Array;
  private readonly next: Int32Array;

  /** Throws NixSealError 'EBADHASH' for a string that is not 32 nix32 characters. */
  constructor(hashParts: Iterable<string>) {
    const list: string[] = [];
    const seen = new Set<string>();
    for (const h of hashParts) {
      if (!isHashPart(h)) {
        throw new NixSealError('EBADHASH', `Not a store path hash part (32 nix32 characters): ${JSON.stringify(h)}`);
      }
      if (seen.has(h)) continue;
      seen.add(h);
      list.push(h);
    }
    this.hashes = list;
    const k = list.length;
    this.bits = tableBits(k);
    this.mask = (1 << this.bits) - 1;
    const size = k === 0 ? 0 : 1 << this.bits;
    this.bytes = new Uint8Array(k * HASH_PART_LENGTH);
    this.shift = new Uint8Array(size).fill(MAX_SHIFT);
    this.head = new Int32Array(size).fill(-1);
    this.next = new Int32Array(k).fill(-1);
    const d = new Uint8Array(HASH_PART_LENGTH);
    for (let n = 0; n < k; n++) {
      const h = itemAt(list, n);
      for (let i = 0; i < HASH_PART_LENGTH; i++) {
        this.bytes[n * HASH_PART_LENGTH + i] = h.charCodeAt(i);
        d[i] = u8At(DIGIT, h.charCodeAt(i));
      }
      for (let q = BLOCK - 1; q < HASH_PART_LENGTH; q++) {
        const slot = this.slot((u8At(d, q - 3) << 15) | (u8At(d, q - 2) << 10) | (u8At(d, q - 1) << 5) | u8At(d, q));
        const s = HASH_PART_LENGTH - 1 - q;
        if (s < u8At(this.shift, slot)) this.shift[slot] = s;
        if (s === 0) {
          this.next[n] = i32At(this.head, slot);
          this.head[slot] = n;
        }
      }
    }
  }

  private slot(key: number): number {
    return (key & this.mask) ^ (key >>> this.bits);
  }

  get size(): number {
    return this.hashes.length;
  }

  /**
   * Searches the windows of `b` starting at `from` … `lastStart` (inclusive; lastStart ≤ b.length - 32)
   * and appends each match to `out` as two numbers: the candidate's index, the window's start.
   * Matches come in increasing order of start. Runs per byte scanned (GB/s), so its reads and
   * verify's are unchecked (`!`): every index is a byte value into a 256-entry table, a slot
   * masked to the table, or a window the loop bounds keep inside `b`.
   */
  search(b: Uint8Array, from: number, lastStart: number, out: number[]): void {
    if (this.hashes.length === 0) return;
    const D = DIGIT;
    const S = this.shift;
    const mask = this.mask;
    const bits = this.bits;
    let i = from;
    while (i <= lastStart) {
      // Nix's check, right to left, as far as the shift table needs: a byte outside the alphabet at
      // window offset j means no window starting at i … i+j can match. The last byte alone first
      // (in binary data it is usually outside the alphabet), then the 3 before it together: one
      // branch instead of three, which text (short runs of nix32 letters) mispredicts a lot.
      const e = i + 31;
      const d0 = D[b[e]!]!;
      if (d0 === NOT) {
        i = e + 1;
        continue;
      }
      const d1 = D[b[e - 1]!]!;
      const d2 = D[b[e - 2]!]!;
      const d3 = D[b[e - 3]!]!;
      // NOT is 255: these pick bit 1, 2, 3 for a bad d1, d2, d3 and nothing from a digit (< 32).
      const bad = ((d1 >> 6) & 2) | ((d2 >> 5) & 4) | ((d3 >> 4) & 8);
      if (bad !== 0) {
        i += BAD_SHIFT[bad]!;
        continue;
      }
      const key = (d3 << 15) | (d2 << 10) | (d1 << 5) | d0;
      const slot = (key & mask) ^ (key >>> bits);
      const s = S[slot]!;
      if (s !== 0) {
        i += s;
        continue;
      }
      this.verify(b, i, slot, out);
      i++;
    }
  }

  /** The window at `i` may end like the candidates chained at `slot`: compare it with each. */
  private verify(b: Uint8Array, i: number, slot: number, out: number[]): void {
    const bytes = this.bytes;
    const next = this.next;
    for (let n = this.head[slot]!; n >= 0; n = next[n]!) {
      const base = n * HASH_PART_LENGTH;
      let j = HASH_PART_LENGTH - 1;
      while (j >= 0 && bytes[base + j] === b[i + j]) j--;
      if (j < 0) {
        out.push(n, i);
        return; // candidates are distinct: at most one can match
      }
    }
  }
}

/** One occurrence of a candidate hash part in the stream. */
export interface ScanHit {
  /** The hash part found (32 nix32 characters). */
  hash: string;
  /** Absolute byte offset of the hash's first character in the stream. */
  offset: number;
  /** Up to `context` bytes before the hash (fewer at the start of the stream); non-printables as '.'. */
  before: string;
  /** Up to `context` bytes after the hash (fewer at the end of the stream); non-printables as '.'. */
  after: string;
}

export interface ScannerOptions {
  /** Bytes of context on each side of a hit (default 16, at most 4096). */
  context?: number;
}

/** A hit whose after-context is still being collected. */
interface PendingHit {
  hit: ScanHit;
  /** How many more context bytes it wants. */
  need: number;
}

/** Each byte as shown in context: itself when printable ASCII, else '.'. */
const SHOWN = new Uint8Array(256).fill(0x2e);
for (let c = 0x20; c < 0x7f; c++) SHOWN[c] = c;

/*
 * How the search works. Nix (`search` and `RefScanSink`) finds the references of a build output by
 * searching its NAR for the hash parts (32 nix32 characters) of a candidate set of store paths: it
 * slides a 32-byte window, checks it right to left, and on a byte outside the nix32 alphabet at
 * offset j jumps j+1 forward; a window made only of nix32 characters is looked up in the candidate
 * set. Chunks are joined by searching the previous chunk's tail together with the new chunk's head.
 * The jumps only skip windows that hold a non-nix32 byte, so the result is exactly "every candidate
 * that occurs as 32 consecutive bytes of the stream": compressed, UTF-16, upper-case or split hashes
 * are not found, overlapping occurrences all are. This scanner finds exactly those occurrences, and
 * reports each one: the hash, the absolute byte offset of its first character in the stream, and a
 * few bytes of printable context on either side.
 *
 * Nix's right-to-left check is kept for the bytes it reads (random binary data costs about one table
 * lookup per 32 bytes). Text made of nix32 characters is the worst case for Nix's loop (32 lookups
 * per byte position); here the last 4 characters of the window also index a Wu-Manber shift table
 * built from the candidates (how far the window may move before those 4 characters could line up
 * with the same 4 characters of some candidate; the 20-bit key is folded into a table small enough
 * for the CPU caches), so such text moves most of a window per step too. Only when the window's last
 * 4 characters fall in a slot where some candidate ends are its 32 bytes compared with the
 * candidates chained there. The results are Nix's, whatever the shifts: the tests compare with a
 * port of Nix's loop and with a naive scan of every window.
 */

/**
 * Feed it a stream's chunks in order; each `feed` returns the hits that are complete (their
 * after-context is known), `end` the rest. Hits come in increasing order of offset, each exactly
 * once, whatever the chunking. Memory stays bounded: the scanner keeps the last 31 + context bytes
 * and the few hits that end within the last `context` bytes, never the stream; chunks are not kept,
 * so a caller may reuse its buffer once `feed` returns.
 */
export class ReferenceScanner {
  readonly candidates: HashPartSet;
  readonly context: number;
  /** The hash parts found so far: what Nix would register as references (among the candidates). */
  readonly found = new Set<string>();
  /** Number of occurrences found so far (including those not yet returned). */
  hitCount = 0;

  /** Bytes fed so far. */
  private pos = 0;
  /** The last `tailLen` bytes of the stream (kept: 31 for windows spanning chunks, plus context). */
  private readonly tail: Uint8Array;
  private tailLen = 0;
  /** Joins the tail's last 31 bytes with the next chunk's first 31. */
  private readonly join = new Uint8Array(2 * (HASH_PART_LENGTH - 1));
  private readonly matches: number[] = [];
  /** Context bytes being turned into a string. */
  private readonly scratch: Buffer;
  private pending: PendingHit[] = [];
  private ended = false;

  constructor(hashParts: Iterable<string> | HashPartSet, options: ScannerOptions = {}) {
    this.candidates = hashParts instanceof HashPartSet ? hashParts : new HashPartSet(hashParts);
    const context = options.context ?? DEFAULT_CONTEXT;
    if (!Number.isInteger(context) || context < 0 || context > MAX_CONTEXT) {
      throw new RangeError(`context must be an integer from 0 to ${MAX_CONTEXT}, not ${context}`);
    }
    this.context = context;
    this.tail = new Uint8Array(HASH_PART_LENGTH - 1 + context);
    this.scratch = Buffer.alloc(Math.max(1, context));
  }

  /** Bytes fed so far (the offset the next chunk starts at). */
  get bytesScanned(): number {
    return this.pos;
  }

  /** Starts a new stream at offset 0 with the same candidates (hits not yet returned are dropped). */
  reset(): void {
    this.pos = 0;
    this.tailLen = 0;
    this.pending = [];
    this.found.clear();
    this.hitCount = 0;
    this.ended = false;
  }

  /** Scans the next chunk of the stream; returns the hits completed by it, in offset order. */
  feed(data: Uint8Array): ScanHit[] {
    if (this.ended) throw new Error('ReferenceScanner: feed() after end(); call reset() first');
    // A plain Uint8Array view of a Buffer (a subclass): the search loop then only ever sees one
    // kind of array, which keeps its element accesses monomorphic.
    const chunk = data.constructor === Uint8Array ? data : new Uint8Array(data.buffer, data.byteOffset, data.length);
    const out: ScanHit[] = [];
    const len = chunk.length;
    if (len === 0) return out;
    const start = this.pos;

    // Hits from earlier chunks waiting for their after-context (all older than any new hit).
    if (this.pending.length > 0) this.fillPending(chunk, out);

    // Windows starting in the last 31 bytes before this chunk and ending in it.
    const carry = Math.min(this.tailLen, HASH_PART_LENGTH - 1);
    if (carry > 0) {
      const head = Math.min(len, HASH_PART_LENGTH - 1);
      const j = this.join;
      j.set(this.tail.subarray(this.tailLen - carry, this.tailLen), 0);
      j.set(chunk.subarray(0, head), carry);
      const lastStart = Math.min(carry - 1, carry + head - HASH_PART_LENGTH);
      if (lastStart >= 0) {
        this.candidates.search(j, 0, lastStart, this.matches);
        this.report(start - carry, chunk, start, out);
      }
    }

    // Windows inside the chunk.
    if (len >= HASH_PART_LENGTH) {
      this.candidates.search(chunk, 0, len - HASH_PART_LENGTH, this.matches);
      this.report(start, chunk, start, out);
    }

    // Keep the stream's last bytes.
    const keep = this.tail.length;
    if (len >= keep) {
      this.tail.set(chunk.subarray(len - keep), 0);
      this.tailLen = keep;
    } else {
      const old = Math.min(this.tailLen, keep - len);
      this.tail.copyWithin(0, this.tailLen - old, this.tailLen);
      this.tail.set(chunk, old);
      this.tailLen = old + len;
    }
    this.pos = start + len;
    return out;
  }

  /** Ends the stream: returns the hits still waiting for after-context (which the end cuts short). */
  end(): ScanHit[] {
    this.ended = true;
    const out = this.pending.map((p) => p.hit);
    this.pending = [];
    return out;
  }

  /** Scans a whole buffer as one stream (a fresh scanner state): all hits. */
  scan(bytes: Uint8Array): ScanHit[] {
    this.reset();
    const hits = this.feed(bytes);
    for (const h of this.end()) hits.push(h);
    return hits;
  }

  /** Turns `this.matches` (window starts relative to `base`) into hits. */
  private report(base: number, chunk: Uint8Array, chunkStart: number, out: ScanHit[]): void {
    const m = this.matches;
    if (m.length === 0) return;
    const hashes = this.candidates.hashes;
    const ctx = this.context;
    const chunkEnd = chunkStart + chunk.length;
    for (let k = 0; k < m.length; k += 2) {
      const hash = itemAt(hashes, itemAt(m, k));
      const offset = base + itemAt(m, k + 1);
      this.found.add(hash);
      this.hitCount++;
      const before = this.shown(Math.max(0, offset - ctx), offset, chunk, chunkStart);
      const afterStart = offset + HASH_PART_LENGTH;
      const afterEnd = Math.min(afterStart + ctx, chunkEnd);
      const after = this.shown(afterStart, afterEnd, chunk, chunkStart);
      const hit: ScanHit = { hash, offset, before, after };
      const need = ctx - (afterEnd - afterStart);
      // Offsets increase, and so do the ends of the contexts: once one hit waits, all later ones do.
      if (need > 0 || this.pending.length > 0) this.pending.push({ hit, need });
      else out.push(hit);
    }
    m.length = 0;
  }

  /**
   * Stream bytes [from, to) as shown in context, from the current chunk (starting at stream offset
   * `chunkStart`) or the kept tail before it (callers stay within its 31 + context bytes).
   */
  private shown(from: number, to: number, chunk: Uint8Array, chunkStart: number): string {
    const n = to - from;
    if (n <= 0) return '';
    const buf = this.scratch;
    for (let k = 0; k < n; k++) {
      const a = from + k;
      buf[k] = u8At(SHOWN, a >= chunkStart ? u8At(chunk, a - chunkStart) : u8At(this.tail, this.tailLen - (chunkStart - a)));
    }
    return buf.toString('latin1', 0, n);
  }

  /** Gives waiting hits their after-context from the start of `chunk`; completed ones go to `out`. */
  private fillPending(chunk: Uint8Array, out: ScanHit[]): void {
    let done = 0;
    for (const p of this.pending) {
      // Every waiting hit's context continues exactly at the start of this chunk.
      const take = Math.min(p.need, chunk.length);
      p.hit.after += this.shown(this.pos, this.pos + take, chunk, this.pos);
      p.need -= take;
    }
    while (done < this.pending.length && itemAt(this.pending, done).need === 0) out.push(itemAt(this.pending, done++).hit);
    if (done > 0) this.pending = this.pending.slice(done);
  }
}

/** All occurrences of the candidates in `bytes`, as one stream. */
export function scanBytes(hashParts: Iterable<string> | HashPartSet, bytes: Uint8Array, options?: ScannerOptions): ScanHit[] {
  return new ReferenceScanner(hashParts, options).scan(bytes);
}

/** All occurrences of the candidates in a stream of chunks, yielded as they are found (chunk by chunk). */
export async function* scanStream(
  hashParts: Iterable<string> | HashPartSet,
  chunks: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  options?: ScannerOptions,
): AsyncGenerator<ScanHit, void, undefined> {
  const scanner = new ReferenceScanner(hashParts, options);
  for await (const chunk of chunks) yield* scanner.feed(chunk);
  yield* scanner.end();
}
