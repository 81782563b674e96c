import prettyBytes from 'pretty-bytes';
import type { ClosureInfoResult } from '../commands/closure-info.js';
import type { HashResult } from '../commands/hash.js';
import type { Amount, InfoResult } from '../commands/info.js';
import type { InitrdCommandResult } from '../commands/initrd.js';
import type { ReportResult } from '../commands/report.js';
import type { SbomResult } from '../commands/sbom.js';
import type { SuggestResult } from '../commands/suggest.js';
import type { WhyResult } from '../commands/why.js';
import { edgeKey } from '../graph/why.js';
import type { EdgeEvidence } from '../seal/edge-evidence.js';
import type { Evidence } from '../seal/inspect.js';

export const human = (n: number | null): string => (n === null ? 'size unknown' : prettyBytes(n, { binary: true }));

const amount = (a: Amount): string => `${a.count} ${a.count === 1 ? 'path' : 'paths'}, ${human(a.narSize)}`;

/** How many erased paths `info` lists per seal without --all. */
export const INFO_ERASED_SHOWN = 10;

export function renderInfo(r: InfoResult, opts: { all?: boolean } = {}): string {
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
    const shown = opts.all ? s.erasedPaths : s.erasedPaths.slice(0, INFO_ERASED_SHOWN);
    for (const e of shown) lines.push(`    ${human(e.narSize).padStart(10)}  ${e.path}${e.exclusive ? '' : '  (also erased by another seal)'}`);
    if (shown.length < s.erasedPaths.length) lines.push(`    … ${s.erasedPaths.length - shown.length} more (--all lists every one)`);
  }
  return lines.join('\n') + '\n';
}

function renderChain(chain: string[], seals: Set<string>, edges?: Map<string, EdgeEvidence>): string[] {
  const out: string[] = [];
  chain.forEach((p, i) => {
    out.push(`${i === 0 ? '' : '→ '}${p}${seals.has(p) ? '  [seal]' : ''}`);
    const next = chain[i + 1];
    const e = next === undefined ? undefined : edges?.get(edgeKey(p, next));
    if (e !== undefined) out.push(...renderEdgeEvidence(e));
  });
  return out;
}

/** Shows a file of store path `from` relative to it: `iso/nixos.iso » boot/grub/grub.cfg`; a single-file path by its name. */
export function relativeFile(file: string, from: string): string {
  if (file.startsWith(from + '/')) return file.slice(from.length + 1);
  if (file === from || file.startsWith(from + ' » ')) return from.slice(from.lastIndexOf('/') + 1).replace(/^[^-]*-/, '') + file.slice(from.length);
  return file;
}

/**
 * One piece of evidence on a line: the file (relative to `from`), the offset, and the bytes around
 * a hash in file data, or what holds it (a directory record's name, a symlink target: binary or
 * already said), or what the image holds.
 */
export function evidenceLine(ev: Evidence, from: string): string {
  const file = relativeFile(ev.file, from);
  const where = ev.offset === null ? '' : ` @${ev.offset}`;
  if (ev.context !== undefined && /^(contents|data of )/.test(ev.what)) return `${file}${where}: …${ev.context}…`;
  return `${file}${where}: ${ev.what}`;
}

function renderEdgeEvidence(e: EdgeEvidence): string[] {
  if (e.hits === 0) return [`    (no occurrence of the hash found: the reference is not in the bytes on disk)`];
  const lines = e.evidence.map((ev) => `    ${evidenceLine(ev, e.from)}`);
  if (e.hits > e.evidence.length) lines.push(`    (${e.hits - e.evidence.length} more occurrence${e.hits - e.evidence.length === 1 ? '' : 's'})`);
  return lines;
}

export function renderWhy(r: WhyResult): string {
  const seals = new Set(r.seals);
  const edges = r.edges === undefined ? undefined : new Map(r.edges.map((e) => [edgeKey(e.from, e.to), e]));
  const out: string[] = [];
  if (r.status === 'absent') return `${r.root} does not depend on ${r.target}\n`;
  if (r.status === 'kept') {
    out.push(`${r.target} is in the sealed closure of ${r.root}:`);
    out.push(...renderChain(r.chain, seals, edges));
  } else {
    for (const e of r.erasedBy) {
      out.push(`${r.target} is erased by seal ${e.seal}; without the seal it is reached as:`);
      out.push(...renderChain(e.chain, seals, edges));
    }
  }
  if (r.chains) {
    out.push('', `all chains (${r.chains.length}):`);
    for (const c of r.chains) out.push(c.map((p) => p + (seals.has(p) ? ' [seal]' : '')).join(' → '));
  }
  return out.join('\n') + '\n';
}

export function renderInitrd(r: InitrdCommandResult): string {
  return (
    `wrote ${r.output}: ${r.storePaths} store paths, ${r.entries} entries, ${human(r.contentBytes)} of files, ` +
    `${human(r.cpioBytes)} cpio → ${human(r.outputBytes)} ${r.compressor}\n`
  );
}

/** The text output: the registration itself for `--registration-only -`, else a short summary. */
export function renderClosureInfo(r: ClosureInfoResult): string {
  if (r.registration !== undefined) return r.registration;
  const where = r.outDir ?? r.files[0] ?? '';
  const lines = [`wrote ${where}: ${r.count} ${r.count === 1 ? 'path' : 'paths'}, ${human(r.totalNarSize)}`];
  for (const s of r.seals) {
    lines.push(`  seal ${s.path} erased ${s.erased.length} ${s.erased.length === 1 ? 'path' : 'paths'}, ${human(s.erasedNarSize)}`);
  }
  return lines.join('\n') + '\n';
}

export function renderSuggest(r: SuggestResult): string {
  const amt = (a: Amount): string => `${a.count} ${a.count === 1 ? 'path' : 'paths'}, ${human(a.narSize)}`;
  const out: string[] = [];
  out.push(`closure: ${amt(r.full)}`);
  const excluded = r.excluded.map((e) => `excluded by --no-seal: ${e.path} (${e.reason})`);
  if (r.images.length === 0) {
    out.push(
      r.excluded.length === 0
        ? 'no self-contained image with references found in the closure: nothing to seal'
        : `images found: ${r.excluded.length}, all excluded by --no-seal: nothing more to seal`,
      ...excluded,
    );
    if (r.flags.length > 0) out.push(`sealed closure: ${amt(r.sealedAll)}`, `flags (give this closure): ${shellWords(r.flags)}`);
    return out.join('\n') + '\n';
  }
  out.push(`images found: ${r.images.length} (ranked by what sealing each alone erases)${r.excluded.length > 0 ? `, ${r.excluded.length} excluded` : ''}`);
  r.images.forEach((s, i) => {
    out.push(`${String(i + 1).padStart(3)}. ${s.path} (${human(s.narSize)})`);
    out.push(`     ${s.reason}`);
    out.push(`     sealing it erases ${amt(s.alone)}; of those only it (with all images sealed): ${amt(s.exclusive)}`);
    const opaque = s.inside.opaque.length > 0 ? `; cannot look inside ${s.inside.opaque.join(', ')}` : '';
    const parts = [
      `${s.inside.verified} verified`,
      ...(s.inside.contained > 0 ? [`${s.inside.contained} contained (not hashed)`] : []),
      ...(s.inside.differs > 0 ? [`${s.inside.differs} differ`] : []),
      ...(s.inside.notFound > 0 ? [`${s.inside.notFound} not found`] : []),
    ];
    out.push(`     inside, of ${s.alone.count} erased paths: ${parts.join(', ')}${s.proven ? '' : ' (see nix-seal audit)'}${opaque}`);
  });
  out.push(...excluded);
  out.push(`sealing all: ${amt(r.sealedAll)} left of ${amt(r.full)}`);
  if (r.images.some((s) => !s.proven)) {
    out.push(`sealing the proven ones only: ${amt(r.sealedProven)}`);
    out.push(`flags (give the proven closure, ${amt(r.sealedProven)}): ${shellWords(r.flags)}`);
  } else {
    out.push(`flags (give this closure, ${amt(r.sealedAll)}): ${shellWords(r.flags)}`);
  }
  return out.join('\n') + '\n';
}

/** argv words as one line to paste into a POSIX shell. */
export function shellWords(words: readonly string[]): string {
  return words.map((w) => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** `sha256:<nix32> <narSize> <path>`, one line per path: the path last, so it may contain spaces. */
export function renderHash(results: readonly HashResult[]): string {
  return results.map((r) => `${r.narHash} ${r.narSize} ${r.path}\n`).join('');
}

/** The summary line after the document is written (none when it went to stdout). */
export function renderSbomResult(r: SbomResult): string {
  const s = (n: number, w: string): string => `${n} ${w}${n === 1 ? '' : 's'}`;
  return `wrote ${r.file} (${r.format === 'spdx' ? 'SPDX 2.3' : 'CycloneDX 1.6'}): ${s(r.kept, 'kept path')}, ${s(r.seals, 'seal')} embedding ${s(r.erased, 'erased path')}${r.audited ? ', audited' : ''}\n`;
}

export function renderReport(r: ReportResult): string {
  return `wrote ${r.file} (${human(r.bytes)}): ${r.paths} paths, ${r.seals} seal${r.seals === 1 ? '' : 's'}${r.audited ? ', audited' : ''}\n`;
}
