import prettyBytes from 'pretty-bytes';
import type { Amount, InfoResult } from './info.js';
import type { WhyResult } from './why.js';

export const human = (n: number | null): string => (n === null ? 'size unknown' : prettyBytes(n, { binary: true }));

const amount = (a: Amount): string => `${a.count} ${a.count === 1 ? 'path' : 'paths'}, ${human(a.narSize)}`;

export function renderInfo(r: InfoResult): string {
  const pct =
    r.full.narSize && r.erased.narSize !== null ? ` (${((100 * r.erased.narSize) / r.full.narSize).toFixed(1)}% of the bytes)` : '';
  const lines = [
    ...r.roots.map((p, i) => `${i === 0 ? 'roots:         ' : '               '}${p}`),
    `full closure:   ${amount(r.full)}`,
    `sealed closure: ${amount(r.sealed)}`,
    `erased:         ${amount(r.erased)}${pct}`,
  ];
  if (r.seals.length === 0) lines.push('seals:          none reached');
  for (const s of r.seals) {
    lines.push(`seal ${s.path} (${human(s.narSize)})`);
    lines.push(`  erased ${amount(s.erased)}; of those only through this seal: ${amount(s.exclusive)}`);
  }
  return lines.join('\n') + '\n';
}

function renderChain(chain: string[], seals: Set<string>): string[] {
  return chain.map((p, i) => `${i === 0 ? '' : '→ '}${p}${seals.has(p) ? '  [seal]' : ''}`);
}

export function renderWhy(r: WhyResult): string {
  const seals = new Set(r.seals);
  const out: string[] = [];
  if (r.status === 'absent') return `${r.root} does not depend on ${r.target}\n`;
  if (r.status === 'kept') {
    out.push(`${r.target} is in the sealed closure of ${r.root}:`);
    out.push(...renderChain(r.chain, seals));
  } else {
    for (const e of r.erasedBy) {
      out.push(`${r.target} is erased by seal ${e.seal}; without the seal it is reached as:`);
      out.push(...renderChain(e.chain, seals));
    }
  }
  if (r.chains) {
    out.push('', `all chains (${r.chains.length}):`);
    for (const c of r.chains) out.push(c.map((p) => p + (seals.has(p) ? ' [seal]' : '')).join(' → '));
  }
  return out.join('\n') + '\n';
}

export function renderInitrd(r: import('./initrd.js').InitrdCommandResult): string {
  return (
    `wrote ${r.output}: ${r.storePaths} store paths, ${r.entries} entries, ${human(r.contentBytes)} of files, ` +
    `${human(r.cpioBytes)} cpio → ${human(r.outputBytes)} ${r.compressor}\n`
  );
}
