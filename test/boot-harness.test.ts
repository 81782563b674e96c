/**
 * The boot harness, proven with real boots: a tiny busybox initrd, packed the way nixpkgs packs
 * initrds (sorted find | cpio newc | compressor), booted in qemu with Debian's kernel, once per
 * compressor the kernel can unpack. Also checks the two other ways a boot ends: a kernel panic
 * (qemu exits by itself) and the timeout (qemu is killed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, openSync, readSync, closeSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requireTools, skipOrFail } from './support/tools.js';
import { debianKernel, initrdCompressors, type InitrdCompressor } from './support/kernel.js';
import { bootInitrd, describeBoot } from './support/boot.js';
import { fileTempDir } from './support/temp.js';

const BASE_TOOLS = ['qemu-system-x86_64', 'cpio', 'zstd', 'apt-get', 'dpkg-deb', 'bash'];
const BUSYBOX = '/bin/busybox';
const MARKER = 'NIX-SEAL-BOOT-OK';
/** Generous: a TCG boot takes ~5–15 s here, but a loaded CI runner can be much slower. */
const BOOT_TIMEOUT_MS = 240_000;
/** Per test: kernel download (first test only) plus one boot. */
const TEST_TIMEOUT_MS = 15 * 60_000;

interface Compressor {
  name: InitrdCompressor;
  tool: string;
  /** The compression step of the pipeline (stdin → stdout). */
  cmd: string;
  /** Leading bytes of its output, as the kernel's decompressor detection expects them. */
  magic: number[];
}

const COMPRESSORS: Compressor[] = [
  { name: 'zstd', tool: 'zstd', cmd: 'zstd -10', magic: [0x28, 0xb5, 0x2f, 0xfd] },
  { name: 'gzip', tool: 'gzip', cmd: 'gzip -9n', magic: [0x1f, 0x8b] },
  { name: 'xz', tool: 'xz', cmd: 'xz --check=crc32 --lzma2=dict=512KiB', magic: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  // The kernel only knows the legacy lz4 format (-l), not lz4 frames.
  { name: 'lz4', tool: 'lz4', cmd: 'lz4 -l', magic: [0x02, 0x21, 0x4c, 0x18] },
];

const work = fileTempDir('nix-seal-boot-');

/** A minimal initrd tree: /bin/busybox and an /init script with the given body. */
function makeTree(name: string, initBody: string): string {
  const root = join(work, name);
  mkdirSync(join(root, 'bin'), { recursive: true });
  for (const d of ['proc', 'sys', 'dev']) mkdirSync(join(root, d));
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  chmodSync(join(root, 'bin', 'busybox'), 0o755);
  // The kernel passes no PATH to /init: call every applet through /bin/busybox.
  writeFileSync(join(root, 'init'), `#!/bin/busybox sh\n${initBody}`, { mode: 0o755 });
  chmodSync(root, 0o755); // the archive's "." entry becomes the mode of /
  return root;
}

/** nixpkgs' pipeline: find . -print0 | sort -z | cpio -o -H newc -R +0:+0 --reproducible --null | <compress> > out. */
function pack(tree: string, compressCmd: string, out: string): void {
  const script = `find . -print0 | sort -z | cpio -o -H newc -R +0:+0 --reproducible --null | ${compressCmd} > "$1"`;
  try {
    execFileSync('bash', ['-o', 'pipefail', '-c', script, 'pack', out], { cwd: tree, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`packing ${tree} with "${compressCmd}" failed: ${e.stderr?.toString().trim() || e.message}`);
  }
}

function leadingBytes(file: string, n: number): number[] {
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const got = readSync(fd, buf, 0, n, 0);
    return [...buf.subarray(0, got)];
  } finally {
    closeSync(fd);
  }
}

let okTree: string | undefined;
/** The tree every compressor test packs (built once). */
function bootOkTree(): string {
  okTree ??= makeTree(
    'ok',
    [
      '/bin/busybox mount -t proc proc /proc',
      '/bin/busybox mount -t sysfs sysfs /sys',
      // CONFIG_DEVTMPFS_MOUNT is off in Debian's kernel: mount it ourselves.
      '/bin/busybox mount -t devtmpfs devtmpfs /dev',
      `echo ${MARKER}`,
      '/bin/busybox ls /',
      '/bin/busybox poweroff -f',
      '',
    ].join('\n'),
  );
  return okTree;
}

for (const c of COMPRESSORS) {
  test(`boots a ${c.name} initrd (${c.cmd}) to /init and powers off`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
    if (!requireTools(t, ...BASE_TOOLS, c.tool)) return;
    const kernel = debianKernel();
    const supported = initrdCompressors(kernel);
    if (supported !== undefined && !supported.has(c.name)) {
      skipOrFail(t, `kernel ${kernel.version} has no CONFIG_RD_${c.name.toUpperCase()}=y`);
      return;
    }

    const initrd = join(work, `initrd.${c.name}`);
    pack(bootOkTree(), c.cmd, initrd);
    assert.deepEqual(leadingBytes(initrd, c.magic.length), c.magic, `${c.cmd} output starts with the ${c.name} magic`);

    const r = await bootInitrd({ initrd, timeoutMs: BOOT_TIMEOUT_MS });
    t.diagnostic(`${c.name}: initrd ${statSync(initrd).size} bytes, kernel ${kernel.version}, booted and powered off in ${r.durationMs} ms`);
    const lines = r.console.split('\n').map((l) => l.trim());
    assert.ok(lines.includes(MARKER), `marker printed by /init\n${describeBoot(r)}`);
    assert.ok(r.exitedCleanly, `qemu exited cleanly via poweroff\n${describeBoot(r)}`);
    // `ls /`: our entries, plus /root from the kernel's built-in default initramfs (unpacked first).
    const ls = lines[lines.indexOf(MARKER) + 1] ?? '';
    for (const name of ['bin', 'dev', 'init', 'proc', 'sys']) {
      assert.ok(ls.split(/\s+/).includes(name), `ls / shows ${name}: ${JSON.stringify(ls)}`);
    }
  });
}

test('an /init that exits panics the kernel, and qemu exits by itself (panic=-1, -no-reboot)', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  if (!requireTools(t, ...BASE_TOOLS)) return;
  const tree = makeTree('panic', `echo NIX-SEAL-ABOUT-TO-EXIT\nexit 3\n`);
  const initrd = join(work, 'initrd-panic.gz');
  pack(tree, 'gzip -9n', initrd);
  const r = await bootInitrd({ initrd, timeoutMs: BOOT_TIMEOUT_MS });
  t.diagnostic(`panic boot: qemu exited after ${r.durationMs} ms`);
  assert.match(r.console, /NIX-SEAL-ABOUT-TO-EXIT/, describeBoot(r));
  assert.ok(r.panicked, `kernel panic seen\n${describeBoot(r)}`);
  assert.match(r.console, /Attempted to kill init/, describeBoot(r));
  assert.equal(r.timedOut, false, describeBoot(r));
  assert.equal(r.exitedCleanly, false);
});

test('a boot that never ends is killed at the timeout', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  if (!requireTools(t, ...BASE_TOOLS)) return;
  const tree = makeTree('hang', `/bin/busybox sleep 100000\n`);
  const initrd = join(work, 'initrd-hang.gz');
  pack(tree, 'gzip -9n', initrd);
  const r = await bootInitrd({ initrd, timeoutMs: 3_000 });
  assert.ok(r.timedOut, describeBoot(r));
  assert.equal(r.exitedCleanly, false);
  assert.ok(r.durationMs >= 3_000 && r.durationMs < 30_000, `killed promptly (${r.durationMs} ms)`);
  assert.match(r.console, /timed out after 3000 ms/);
});
