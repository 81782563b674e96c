import type { AuditResult } from '../commands/audit.js';
import { VERDICTS, type Verdict } from '../seal/audit.js';
import { evidenceLine, relativeFile } from './render.js';

/** `audit`'s text output (apart from render.ts: it needs the verdicts' order, and so the audit module). */
const counts = (c: Record<Verdict, number>): string => VERDICTS.map((v) => `${c[v]} ${v}`).join(', ');

export function renderAudit(r: AuditResult): string {
  if (r.seals.length === 0) return 'no seal reached from the roots: nothing erased, nothing to audit\n';
  const out: string[] = [];
  const width = Math.max(...VERDICTS.map((v) => v.length)) + 2;
  for (const s of r.seals) {
    out.push(`seal ${s.path}`);
    for (const i of s.images) out.push(`  ${i.nature === 'image' ? 'image' : 'opaque'}: ${relativeFile(i.file, s.path)}: ${i.description ?? ''}`);
    if (s.images.length === 0) out.push('  no image found in it (plain files only)');
    for (const p of s.problems) out.push(`  problem: ${relativeFile(p.file, s.path)}: ${p.why}`);
    out.push(`  erased ${s.erased.length} path${s.erased.length === 1 ? '' : 's'}: ${counts(s.counts)}`);
    for (const e of s.erased) {
      const more = e.hits > 1 ? ` (${e.hits} occurrences of its hash)` : '';
      out.push(`  ${e.verdict.padEnd(width)}${e.path}${e.hits > 0 ? more : ''}`);
      const pad = ' '.repeat(width + 2);
      for (const ev of e.evidence) out.push(pad + evidenceLine(ev, s.path));
      if (e.difference !== undefined) out.push(`${pad}first difference: ${e.difference}`);
      if (e.verdict === 'missing') {
        out.push(`${pad}not in the image and not mentioned by it; erased because ${(e.via ?? []).join(', ') || 'nothing'} refers to it`);
      }
    }
  }
  out.push(`summary: ${counts(r.summary)}`);
  return out.join('\n') + '\n';
}
