/**
 * A ByteSource over bytes that counts what it is asked for: tests bound the work a reader does
 * (reads, bytes read) instead of timing it, so the bound holds on a loaded machine.
 */
import { BufferSource } from '../../src/formats/byte-source.js';

export class CountingSource extends BufferSource {
  reads = 0;
  bytesRead = 0;
  /** The largest single read. */
  largest = 0;
  override read(offset: number, length: number): Uint8Array {
    const b = super.read(offset, length);
    this.reads++;
    this.bytesRead += length;
    this.largest = Math.max(this.largest, length);
    return b;
  }
}
