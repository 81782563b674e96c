import type { Analysis } from '../analysis.js';
import { auditAnalysis, VERDICTS, type AuditResult, type Verdict } from '../seal/audit.js';
import { withBytesOf } from '../sources/binary-cache.js';
import { evidenceLine, relativeFile } from './render.js';

export type { AuditResult };

export interface AuditFlags {
  strict?: boolean;
  evidence: number;
}

/** `audit`: the verdicts, and the exit code --strict asks for (1 when any verdict is not `contained`). */
export async function auditCommand(a: Analysis, f: AuditFlags, log?: (m: string) => void): Promise<{ result: AuditResult; exitCode: number }> {
  // From a binary cache, the seals' NARs are fetched when they are not on disk.
  const withSeals = await withBytesOf(a, a.closure.seals.map((s) => a.graph.paths[s.seal]!), log);
  const result = await auditAnalysis(withSeals, { maxEvidence: f.evidence, ...(log ? { log } : {}) });
  const unsafe = result.summary.mentioned + result.summary.unverified + result.summary.missing;
  return { result, exitCode: f.strict && unsafe > 0 ? 1 : 0 };
}

const counts = (c: Record<Verdict, number>): string => VERDICTS.map((v) => `${c[v]} ${v}`).join(', ');

export function renderAudit(r: AuditResult): string {
  if (r.seals.length === 0) return 'no seal reached from the roots: nothing erased, nothing to audit\n';
  const out: string[] = [];
  const width = Math.max(...VERDICTS.map((v) => v.length)) + 2;
  for (const s of r.seals) {
    out.push(`seal ${s.path}`);
    for (const i of s.images) out.push(`  ${i.nature === 'image' ? 'image' : 'opaque'}: ${relativeFile(i.file, s.path)}: ${i.description ?? ''}`);
    if (s.images.length === 0) out.push('  no image found in it (plain files only)');
    for (const p of s.problems) out.push(`  could not read ${relativeFile(p.file, s.path)}: ${p.why}`);
    out.push(`  erased ${s.erased.length} path${s.erased.length === 1 ? '' : 's'}: ${counts(s.counts)}`);
    for (const e of s.erased) {
      const more = e.hits > 1 ? ` (${e.hits} occurrences of its hash)` : '';
      out.push(`  ${e.verdict.padEnd(width)}${e.path}${e.verdict === 'contained' ? '' : more}`);
      const pad = ' '.repeat(width + 2);
      for (const ev of e.evidence) out.push(pad + evidenceLine(ev, s.path));
      if (e.verdict === 'missing') {
        out.push(`${pad}not in the image and not mentioned by it; erased because ${(e.via ?? []).join(', ') || 'nothing'} refers to it`);
      }
    }
  }
  out.push(`summary: ${counts(r.summary)}`);
  return out.join('\n') + '\n';
}
