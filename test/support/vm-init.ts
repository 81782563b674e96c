import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import type { SeedScenario } from './seed-scenario.js';

/**
 * Builds, in the scenario's store, an /init for the seed's VM-launcher initrd: a script run by
 * busybox (Debian's busybox-static copied into the store) that lists the store it sees, checks
 * that the launcher refers to the ISO and that the ISO is an ISO 9660 image, and powers off.
 * Its console lines: STORE-BEGIN, one basename a line, STORE-END, LAUNCHER-REFERS-TO-ISO, ISO9660-OK.
 */
export function buildVmInit(s: SeedScenario): string {
  const busyboxSrc = fs.realpathSync(execFileSync('sh', ['-c', 'command -v busybox'], { encoding: 'utf8' }).trim());
  const [vmInit] = s.env.build(`
    let
      launcher = builtins.storePath "${s.launcher}";
      iso = builtins.storePath "${s.iso}";
      busybox = derivation {
        name = "busybox-static"; system = builtins.currentSystem; builder = "/bin/sh";
        args = [ "-c" "/bin/mkdir -p $out/bin && /bin/cp ${busyboxSrc} $out/bin/busybox && /bin/chmod 555 $out/bin/busybox" ];
      };
    in derivation {
      name = "vm-init"; system = builtins.currentSystem; builder = "/bin/sh";
      script = ''
        #!\${busybox}/bin/busybox sh
        B=\${busybox}/bin/busybox
        $B mkdir -p /proc && $B mount -t proc proc /proc
        echo STORE-BEGIN
        $B ls ${s.env.storeDir}
        echo STORE-END
        $B grep -q \${iso} \${launcher} && echo LAUNCHER-REFERS-TO-ISO
        $B dd if=\${iso} bs=2048 skip=16 count=1 2>/dev/null | $B grep -q CD001 && echo ISO9660-OK
        $B poweroff -f
      '';
      args = [ "-c" "printf '%s' \\"$script\\" > $out && /bin/chmod 555 $out" ];
    }`);
  if (!vmInit) throw new Error('vm-init: nix-build printed no path');
  return vmInit;
}

/** The store basenames /init printed between STORE-BEGIN and STORE-END. */
export function listedStore(consoleText: string): string[] {
  const start = consoleText.indexOf('STORE-BEGIN');
  const end = consoleText.indexOf('STORE-END');
  if (start < 0 || end < start) return [];
  return consoleText.slice(start + 'STORE-BEGIN'.length, end).split(/\s+/).filter(Boolean);
}
