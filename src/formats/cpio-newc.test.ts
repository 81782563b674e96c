import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NixSealError } from '../errors.js';
import { collect } from '../../test/support/temp.js';
import { CpioNewcWriter, NEWC_FIELD_OFFSET, NEWC_HEADER_SIZE, NewcHeader, NewcReader, readNewc } from './cpio-newc.js';
import { S_IFDIR, S_IFLNK, S_IFREG } from './image.js';

test('readNewc reads back what the writer wrote', async () => {
  const w = new CpioNewcWriter();
  const bytes = collect(w);
  await w.addDirectory('.', 0o755, { nlink: 3 });
  await w.addDirectory('./bin', 0o755);
  await w.addFile('./bin/init', 0o4755, 5, Buffer.from('#!sh\n'));
  await w.addSymlink('bin/sh', '/nix/store/x-bash/bin/bash');
  await w.addFile(Buffer.from([0x66, 0xff]), 0o644, 0, (async function* () {})());
  await w.finish();
  const archive = await bytes;

  const entries = readNewc(archive);
  assert.deepEqual(
    entries.map((e) => [e.name, e.header.ino, e.header.mode.toString(8), e.header.nlink, e.header.mtime, e.data.toString()]),
    [
      ['.', 0, '40755', 3, 1, ''],
      ['bin', 1, '40755', 2, 1, ''],
      ['bin/init', 2, '104755', 1, 1, '#!sh\n'],
      ['bin/sh', 3, '120777', 1, 1, '/nix/store/x-bash/bin/bash'],
      ['f\ufffd', 4, '100644', 1, 1, ''],
    ],
  );
  assert.deepEqual(entries[4]!.nameBytes, Buffer.from([0x66, 0xff]));
  assert.equal(entries[0]!.header.mode & 0o170000, S_IFDIR);
  assert.equal(entries[2]!.header.mode & 0o170000, S_IFREG);
  assert.equal(entries[3]!.header.mode & 0o170000, S_IFLNK);
  // GNU cpio writes upper-case hex.
  assert.equal(archive.subarray(NEWC_FIELD_OFFSET.mode, NEWC_FIELD_OFFSET.mode + 8).toString(), '000041ED');

  // Fed one byte at a time, the reader finds the same entries.
  const r = new NewcReader();
  const oneByOne = [];
  for (let i = 0; i < archive.length; i++) oneByOne.push(...r.push(archive.subarray(i, i + 1)));
  r.end();
  assert.deepEqual(oneByOne, entries);

  // Concatenated archives (microcode + initrd) read as one list; the trailer padding is skipped.
  const r2 = new NewcReader();
  const both = r2.push(Buffer.concat([archive, archive]));
  r2.end();
  assert.equal(both.length, 2 * entries.length);
  assert.equal(r2.archives, 2);
});

test('NewcHeader encodes fields at their offsets and rejects values over 32 bits', () => {
  const h = new NewcHeader({ ino: 0xabc, mode: 0o100644, filesize: 0xffffffff, namesize: 2 });
  const b = h.encode();
  assert.equal(b.length, NEWC_HEADER_SIZE);
  assert.equal(b.subarray(0, 6).toString(), '070701');
  assert.equal(b.subarray(NEWC_FIELD_OFFSET.ino, NEWC_FIELD_OFFSET.ino + 8).toString(), '00000ABC');
  assert.equal(b.subarray(NEWC_FIELD_OFFSET.filesize, NEWC_FIELD_OFFSET.filesize + 8).toString(), 'FFFFFFFF');
  assert.deepEqual(NewcHeader.decode(b), h);
  assert.throws(() => new NewcHeader({ filesize: 2 ** 32 }).encode(), (e: unknown) => e instanceof NixSealError && e.code === 'EFORMAT');
});

test('corrupt archives are EFORMAT errors with the offset', async () => {
  const w = new CpioNewcWriter();
  const bytes = collect(w);
  await w.addFile('f', 0o644, 3, Buffer.from('abc'));
  await w.finish();
  const good = await bytes;

  const badMagic = Buffer.from(good);
  badMagic.write('070707', 0);
  assert.throws(() => readNewc(badMagic, 'initrd'), (e: unknown) => {
    assert.ok(e instanceof NixSealError);
    assert.equal(e.code, 'EFORMAT');
    assert.match(e.message, /^Cannot read initrd: not a newc header \(magic "070707"\) at offset 0$/);
    assert.equal(e.path, 'initrd');
    return true;
  });
  assert.throws(() => readNewc(good.subarray(0, 100)), /truncated entry at offset 0/);
  assert.throws(() => readNewc(good.subarray(0, 116)), /no TRAILER!!! entry/);
  const badHex = Buffer.from(good);
  badHex.write('0000000G', NEWC_FIELD_OFFSET.filesize);
  assert.throws(() => readNewc(badHex), /bad filesize field "0000000G"/);
});

test('writer errors: oversized files are refused, short data fails the stream', async () => {
  const w = new CpioNewcWriter();
  const bytes = collect(w);
  // Refused before any byte is written: the archive stays usable.
  await assert.rejects(w.addFile('huge', 0o644, 2 ** 32, Buffer.alloc(0)), (e: unknown) => {
    assert.ok(e instanceof NixSealError);
    assert.equal(e.code, 'EFORMAT');
    assert.match(e.message, /^Cannot add huge to a cpio archive: its size 4294967296 is more than/);
    return true;
  });
  await assert.rejects(w.addFile('bad\0name', 0o644, 0, Buffer.alloc(0)), /non-empty and without NUL/);
  await w.addFile('ok', 0o644, 2, Buffer.from('ok'));
  await assert.rejects(
    w.addFile('short', 0o644, 10, (async function* () {
      yield Buffer.from('only5');
    })()),
    /^NixSealError: Cannot add short to a cpio archive: expected 10 bytes of data, got 5$/,
  );
  // The header already promised 10 bytes: the stream ends with the error.
  await assert.rejects(bytes, /expected 10 bytes/);

  const w2 = new CpioNewcWriter();
  const bytes2 = collect(w2);
  await assert.rejects(w2.addFile('long', 0o644, 1, Buffer.from('xy')), /expected 1 bytes of data, got 2/);
  await assert.rejects(bytes2);
});

test('large files stream through with bounded buffering', async () => {
  const w = new CpioNewcWriter({ highWaterMark: 64 * 1024 });
  const chunk = Buffer.alloc(256 * 1024, 7);
  const count = 64; // 16 MiB
  let maxQueued = 0;
  let total = 0;
  const consumer = (async () => {
    for await (const c of w) {
      total += c.length;
      maxQueued = Math.max(maxQueued, w.readable.readableLength);
      await new Promise((r) => setImmediate(r)); // a slow consumer
    }
  })();
  await w.addFile('big', 0o644, chunk.length * count, (async function* () {
    for (let i = 0; i < count; i++) yield chunk;
  })());
  await w.finish();
  await consumer;
  assert.equal(total, w.bytesWritten);
  assert.equal(total % 512, 0);
  // At most about one chunk above the high-water mark is ever queued, not the whole file.
  assert.ok(maxQueued <= 64 * 1024 + chunk.length, `queued ${maxQueued}`);
});

test('the writer enforces one entry at a time and nothing after finish', async () => {
  const w = new CpioNewcWriter();
  const bytes = collect(w);
  const first = w.addDirectory('.', 0o755);
  await assert.rejects(w.addDirectory('x', 0o755), /await each add/);
  await first;
  await w.finish();
  await assert.rejects(w.addDirectory('y', 0o755), /finish\(\) was already called/);
  assert.equal(readNewc(await bytes).length, 1);
});

test('an output closed by an EPIPE is reported to the file being added as "output closed", never as the EPIPE', async () => {
  const w = new CpioNewcWriter({ highWaterMark: 1024 });
  // Nobody reads: the writer waits for room inside addFile, then the downstream pipe breaks.
  const adding = w.addFile('big', 0o644, 1 << 20, new Uint8Array(1 << 20));
  await new Promise((r) => setImmediate(r));
  const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE', syscall: 'write' });
  w.readable.on('error', () => {}); // the pipeline that saw the EPIPE reports it
  w.readable.destroy(epipe);
  await assert.rejects(adding, (e: unknown) => e instanceof NixSealError && e.reason === 'closed' && e.cause === epipe);
});
