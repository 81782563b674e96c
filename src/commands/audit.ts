import type { Analysis } from '../analysis.js';
import { auditAnalysis, isProven, type AuditProgress, type AuditResult } from '../seal/audit.js';
import { withBytesOf } from '../sources/source.js';
import { itemAt } from '../checked-index.js';

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
  const withSeals = withBytesOf(a, a.closure.seals.map((s) => itemAt(a.graph.paths, s.seal)));
  const result = await auditAnalysis(withSeals, { maxEvidence: f.evidence, quick: f.quick ?? false, ...(log ? { log } : {}), ...(progress ? { progress } : {}) });
  const unproven = result.seals.some((s) => s.erased.some((e) => !isProven(e.verdict, result.quick)));
  return { result, exitCode: f.strict && unproven ? 1 : 0 };
}
