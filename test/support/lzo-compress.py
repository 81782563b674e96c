#!/usr/bin/env python3
"""Compresses inputs with the real liblzo2 (Debian's liblzo2-2), the oracle for nix-seal's LZO1X
decoder. Reads a JSON list of {"algorithm": ..., "hex": ...} on stdin, prints a JSON list of
compressed hex strings. Algorithms: the LZO1X compressors mksquashfs offers."""
import ctypes, json, sys

lzo = ctypes.CDLL("liblzo2.so.2")
# __lzo_init_v2(version, sizeof short, int, long, lzo_uint32_t, lzo_uint, dict_t, char *, void *, callback)
if lzo.__lzo_init_v2(ctypes.c_uint(lzo.lzo_version()), 2, 4, 8, 4, 8, 8, 8, 8, 48) != 0:
    sys.exit("lzo init failed")

WORKMEM = {"lzo1x_1": 16384 * 8, "lzo1x_1_11": 2048 * 8, "lzo1x_1_12": 4096 * 8, "lzo1x_1_15": 32768 * 8, "lzo1x_999": 14 * 16384 * 8}
out = []
for job in json.load(sys.stdin):
    src = bytes.fromhex(job["hex"])
    dst = ctypes.create_string_buffer(len(src) + len(src) // 16 + 64 + 3)
    dst_len = ctypes.c_size_t(len(dst))
    wrk = ctypes.create_string_buffer(WORKMEM[job["algorithm"]])
    fn = getattr(lzo, job["algorithm"] + "_compress")
    if fn(src, ctypes.c_size_t(len(src)), dst, ctypes.byref(dst_len), wrk) != 0:
        sys.exit("compress failed")
    out.append(dst.raw[: dst_len.value].hex())
json.dump(out, sys.stdout)
