import type { Analysis } from '../analysis.js';
import { auditAnalysis, isProven, VERDICTS, type AuditProgress, type AuditResult, type Verdict } from '../seal/audit.js';
import { withBytesOf } from '../sources/binary-cache.js';
import { evidenceLine, relativeFile } from '../cli/render.js';

export type { AuditResult };

export interface AuditFlags {
  strict?: boolean;
  quick?: boolean;
  evidence: number;
}

/** `audit`: the verdicts, and the exit code --strict asks for (1 unless every erased path is proven). */
export async function auditCommand(
  a: Analysis,
  f: AuditFlags,
  log?: (m: string) => void,
  progress?: (p: AuditProgress) => void,
): Promise<{ result: AuditResult; exitCode: number }> {
  // From a binary cache, the seals' NARs are fetched when they are not on disk.
  const withSeals = await withBytesOf(a, a.closure.seals.map((s) => a.graph.paths[s.seal]!), log);
  const result = await auditAnalysis(withSeals, { maxEvidence: f.evidence, quick: f.quick ?? false, ...(log ? { log } : {}), ...(progress ? { progress } : {}) });
  const unproven = result.seals.some((s) => s.erased.some((e) => !isProven(e.verdict, result.quick)));
  return { result, exitCode: f.strict && unproven ? 1 : 0 };
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
