/**
 * Boot an initrd in qemu (software emulation, no KVM needed) with Debian's kernel and capture the
 * serial console. For tests: no TTY and no stdin needed, nothing is left running.
 *
 * The initrd's /init ends the run either with `busybox poweroff -f` (ACPI power-off: qemu exits
 * cleanly) or by exiting / crashing: the kernel panics, panic=-1 reboots at once and -no-reboot
 * turns that reboot into a qemu exit. Anything else (a hang, a wait for input) runs into the
 * timeout, where qemu is killed.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { debianKernel } from './kernel.js';

export interface BootOptions {
  /** The (compressed) cpio archive to pass as -initrd. */
  initrd: string;
  /** Extra kernel command line, after "console=ttyS0 panic=-1 quiet no_timer_check" (later options win, e.g. "loglevel=7"). */
  append?: string;
  /** Kill qemu after this long; default 120 000 ms. */
  timeoutMs?: number;
  /** Guest RAM; default 512. */
  memoryMb?: number;
  /** Appended to the qemu command line. */
  extraQemuArgs?: string[];
  /** bzImage to boot; default debianKernel().vmlinuz (fetched and cached on first use). */
  kernel?: string;
}

export interface BootResult {
  /** Everything the guest wrote to ttyS0 (kernel messages and /init's output), "\r\n" turned into "\n". */
  console: string;
  /** qemu exited on its own with status 0, before the timeout, and the kernel did not panic (i.e. /init powered off). */
  exitedCleanly: boolean;
  /** Wall time from spawning qemu to its exit (or kill). */
  durationMs: number;
  /** qemu was killed at timeoutMs. */
  timedOut: boolean;
  /** The console shows "Kernel panic - not syncing" (e.g. /init exited, or no /init could run). */
  panicked: boolean;
  /** qemu's exit status (null when killed by a signal). */
  exitCode: number | null;
  /** qemu's own stderr (warnings, "could not load …"). */
  stderr: string;
  /** The qemu command line, for reproducing a failure by hand. */
  command: string[];
}

export const DEFAULT_BOOT_TIMEOUT_MS = 120_000;
/** Console output kept; beyond this (a guest printing in a loop) the rest is dropped. */
const MAX_CONSOLE_BYTES = 8 << 20;

/** qemu processes still running, killed if the test process exits early. */
const running = new Set<import('node:child_process').ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of running) p.kill('SIGKILL');
  });
}

/** The qemu argv (without the program name) bootInitrd uses. */
export function qemuArgs(opts: BootOptions & { kernel: string }): string[] {
  // no_timer_check: under software emulation on a loaded machine the kernel's IO-APIC timer check
  // can miss its ticks and panic ("IO-APIC + timer doesn't work!"); the check proves nothing here.
  const append = ['console=ttyS0', 'panic=-1', 'quiet', 'no_timer_check', opts.append ?? ''].filter((s) => s !== '').join(' ');
  return [
    '-machine', 'accel=tcg',
    '-m', String(opts.memoryMb ?? 512),
    // No default NIC/VGA/floppy/CD and no host config: less to probe, same machine everywhere.
    '-nodefaults', '-no-user-config',
    // No window, no monitor, the one serial port on our stdout. (-nographic would mux the monitor
    // onto stdio and put a TTY stdin into raw mode; we have neither a TTY nor a use for the monitor.)
    '-display', 'none', '-monitor', 'none', '-serial', 'stdio',
    '-no-reboot',
    '-kernel', opts.kernel,
    '-initrd', opts.initrd,
    '-append', append,
    ...(opts.extraQemuArgs ?? []),
  ];
}

/**
 * Boot `initrd` under qemu-system-x86_64 and resolve when qemu exits (or is killed at the
 * timeout: then timedOut is true). Never rejects for guest failures (those show in the result);
 * rejects only when qemu cannot be started or the kernel cannot be found.
 */
export async function bootInitrd(opts: BootOptions): Promise<BootResult> {
  if (!existsSync(opts.initrd)) throw new Error(`bootInitrd: initrd ${opts.initrd} does not exist`);
  const kernel = opts.kernel ?? debianKernel().vmlinuz;
  if (!existsSync(kernel)) throw new Error(`bootInitrd: kernel ${kernel} does not exist`);
  const timeoutMs = opts.timeoutMs ?? DEFAULT_BOOT_TIMEOUT_MS;
  const args = qemuArgs({ ...opts, kernel });
  const command = ['qemu-system-x86_64', ...args];

  installExitHook();
  const started = Date.now();
  return new Promise<BootResult>((resolvePromise, reject) => {
    // stdin 'ignore' (= /dev/null): works without a TTY, and the guest never waits on us.
    const child = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const out: Buffer[] = [];
    let outBytes = 0;
    let truncated = false;
    const err: Buffer[] = [];
    let timedOut = false;

    child.stdout.on('data', (d: Buffer) => {
      if (outBytes >= MAX_CONSOLE_BYTES) {
        truncated = true;
        return;
      }
      out.push(d);
      outBytes += d.length;
    });
    child.stderr.on('data', (d: Buffer) => err.push(d));

    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);

    child.on('error', (e) => {
      clearTimeout(timer);
      running.delete(child);
      reject(new Error(`bootInitrd: cannot run qemu-system-x86_64: ${e.message}`));
    });

    // 'close' (not 'exit'): all console output has been read by then.
    child.on('close', (code) => {
      clearTimeout(timer);
      running.delete(child);
      const durationMs = Date.now() - started;
      let consoleText = Buffer.concat(out).toString('utf8').replace(/\r\n/g, '\n');
      if (truncated) consoleText += `\n[bootInitrd: console output cut at ${MAX_CONSOLE_BYTES} bytes]\n`;
      if (timedOut) consoleText += `\n[bootInitrd: timed out after ${timeoutMs} ms; qemu killed]\n`;
      const panicked = /Kernel panic - not syncing/.test(consoleText);
      resolvePromise({
        console: consoleText,
        exitedCleanly: !timedOut && code === 0 && !panicked,
        durationMs,
        timedOut,
        panicked,
        exitCode: code,
        stderr: Buffer.concat(err).toString('utf8'),
        command,
      });
    });
  });
}

/** A failure message for assertions: why the boot ended, qemu's stderr, the console's last lines. */
export function describeBoot(r: BootResult, lines = 40): string {
  const how = r.timedOut
    ? `timed out after ${r.durationMs} ms`
    : r.panicked
      ? `kernel panicked (qemu exit ${r.exitCode}) after ${r.durationMs} ms`
      : `qemu exited ${r.exitCode} after ${r.durationMs} ms`;
  const tail = r.console.trimEnd().split('\n').slice(-lines).join('\n');
  return [
    `boot ${how}`,
    `command: ${r.command.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ')}`,
    ...(r.stderr.trim() !== '' ? [`qemu stderr: ${r.stderr.trim()}`] : []),
    `console (last ${lines} lines):`,
    tail,
  ].join('\n');
}
