/**
 * Re-encodes the lz4 pclusters of a real mkfs.erofs image with lzma (MicroLZMA), deflate or zstd,
 * since mkfs.erofs 1.5 (Debian 12) makes lz4 only: see src/formats/erofs.test.ts. Used by that test
 * and to make the erofs fuzz seeds of those algorithms.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { bytesSource } from '../../src/formats/byte-source.js';
import { EROFS_SUPERBLOCK_OFFSET, SB, openErofs } from '../../src/formats/erofs.js';

/** liblzma's MicroLZMA encoder over stdin records [u32 capacity][u32 length][data] → [u32 length][data]. */
const MICROLZMA_PY = String.raw`
import ctypes, struct, sys
lib = ctypes.CDLL('liblzma.so.5')
class Stream(ctypes.Structure):
    _fields_ = [('next_in', ctypes.c_void_p), ('avail_in', ctypes.c_size_t), ('total_in', ctypes.c_uint64),
                ('next_out', ctypes.c_void_p), ('avail_out', ctypes.c_size_t), ('total_out', ctypes.c_uint64),
                ('allocator', ctypes.c_void_p), ('internal', ctypes.c_void_p)] + [('r%d' % i, ctypes.c_void_p) for i in range(4)] + [
                ('seek_pos', ctypes.c_uint64), ('r5', ctypes.c_uint64), ('r6', ctypes.c_size_t), ('r7', ctypes.c_size_t), ('r8', ctypes.c_int), ('r9', ctypes.c_int)]
opts = ctypes.create_string_buffer(256)
assert lib.lzma_lzma_preset(opts, 6) == 0
inp = sys.stdin.buffer.read(); pos = 0; out = sys.stdout.buffer
while pos < len(inp):
    cap, n = struct.unpack_from('<II', inp, pos); pos += 8
    data = inp[pos:pos + n]; pos += n
    s = Stream()
    assert lib.lzma_microlzma_encoder(ctypes.byref(s), opts) == 0
    ib = ctypes.create_string_buffer(data, n); ob = ctypes.create_string_buffer(cap)
    s.next_in = ctypes.addressof(ib); s.avail_in = n; s.next_out = ctypes.addressof(ob); s.avail_out = cap
    r = lib.lzma_code(ctypes.byref(s), 3)
    # The encoder fills at most cap bytes; all the input must fit (else this pcluster cannot be re-encoded).
    enc = ob.raw[:s.total_out] if r == 1 and s.total_in == n else b''
    lib.lzma_end(ctypes.byref(s))
    out.write(struct.pack('<I', len(enc)) + enc)
`;

type Encoder = (jobs: { data: Buffer; cap: number }[], dir: string) => Buffer[];

export const ENCODERS: Record<'lzma' | 'deflate' | 'zstd', { id: number; tools: string[]; encode: Encoder }> = {
  lzma: {
    id: 1,
    tools: ['python3'],
    encode(jobs) {
      const input = Buffer.concat(jobs.flatMap((j) => { const h = Buffer.alloc(8); h.writeUInt32LE(j.cap, 0); h.writeUInt32LE(j.data.length, 4); return [h, j.data]; }));
      const out = execFileSync('python3', ['-c', MICROLZMA_PY], { input, maxBuffer: 1 << 28 });
      const res: Buffer[] = [];
      for (let p = 0; p < out.length; ) { const n = out.readUInt32LE(p); res.push(out.subarray(p + 4, p + 4 + n)); p += 4 + n; }
      return res;
    },
  },
  deflate: { id: 2, tools: [], encode: (jobs) => jobs.map((j) => deflateRawSync(j.data, { level: 9 })) },
  zstd: {
    id: 3,
    tools: ['zstd'],
    encode(jobs, dir) {
      const files = jobs.map((j, i) => { const f = join(dir, `x${i}`); writeFileSync(f, j.data); return f; });
      execFileSync('zstd', ['-q', '-19', '-f', ...files], { stdio: 'ignore' });
      return files.map((f) => readFileSync(`${f}.zst`));
    },
  },
};

/** `bytes` (a mkfs.erofs lz4 image) with every lz4 pcluster re-encoded with `alg`; how many. */
export function transcode(bytes: Buffer, alg: keyof typeof ENCODERS, dir: string): { image: Buffer; pclusters: number } {
  const fs = openErofs(bytesSource(bytes), 'lz4.img');
  const jobs: { data: Buffer; cap: number; offset: number; header: number }[] = [];
  for (const e of fs.entries()) {
    const ino = fs.inode(e.nid, 0);
    if (ino.layout !== 1 && ino.layout !== 3) continue;
    const data = Buffer.concat([...fs.readInode(ino)]);
    const header = Math.ceil((ino.offset + ino.inodeSize + ino.xattrSize) / 8) * 8;
    for (const x of fs.zextents(ino)) if (x.alg === 0) jobs.push({ data: data.subarray(x.fileOffset, x.fileOffset + x.length), cap: x.compressedLength, offset: x.offset, header });
  }
  const work = mkdtempSync(join(dir, `${alg}-`));
  const encoded = ENCODERS[alg].encode(jobs, work);
  const image = Buffer.from(bytes);
  jobs.forEach((j, i) => {
    const enc = encoded[i]!;
    assert.ok(enc.length > 0 && enc.length <= j.cap, `${alg} re-encodes the ${j.data.length}-byte extent at ${j.offset} into ${enc.length} bytes, its pcluster holds ${j.cap}`);
    assert.notEqual(enc[0], 0, 'a stream starting with a zero byte would be eaten as 0-padding (by the kernel too)');
    image.fill(0, j.offset, j.offset + j.cap);
    enc.copy(image, j.offset + j.cap - enc.length);
    image[j.header + 6] = (image[j.header + 6]! & 0xf0) | ENCODERS[alg].id;
  });
  // 0-padding (INCOMPAT_ZERO_PADDING), which every algorithm but lz4 implies.
  image[EROFS_SUPERBLOCK_OFFSET + SB.featureIncompat] = image[EROFS_SUPERBLOCK_OFFSET + SB.featureIncompat]! | 1;
  return { image, pclusters: jobs.length };
}

