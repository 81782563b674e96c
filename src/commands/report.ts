/** `nix-seal report`: the closure, the seals and what they erased, as one self-contained HTML file. */
import type { Warning } from '../errors.js';
import * as path from 'node:path';
import type { Analysis } from '../analysis.js';
import { checkOutputFile, writeFileAtomic } from '../emit/atomic-write.js';
import { reportHtml } from '../emit/report-html.js';
import { usageError } from '../errors.js';
import { reportData } from '../emit/report-data.js';

export interface ReportFlags {
  output: string;
  audit?: boolean;
  evidence: number;
}

export interface ReportResult {
  /** The file written, absolute. */
  file: string;
  bytes: number;
  paths: number;
  seals: number;
  audited: boolean;
  warnings: Warning[];
}

/** Usage errors and an unwritable target, before the (possibly long) analysis. */
export async function checkReportFlags(f: ReportFlags): Promise<void> {
  if (f.output === '') throw usageError('report: the output path is empty');
  if (f.output === '-') throw usageError('report: -o needs a file (the page is written atomically)');
  await checkOutputFile(path.resolve(f.output));
}

export async function reportCommand(a: Analysis, f: ReportFlags, log?: (m: string) => void): Promise<ReportResult> {
  let audit;
  let verdicts: readonly string[] = [];
  if (f.audit) {
    const { auditAnalysis, VERDICTS } = await import('../seal/audit.js');
    audit = await auditAnalysis(a, { maxEvidence: f.evidence, ...(log ? { log } : {}) });
    verdicts = VERDICTS;
  }
  const data = reportData(a, { ...(audit ? { audit } : {}), verdicts });
  const html = reportHtml(data);
  const file = path.resolve(f.output);
  const bytes = Buffer.from(html, 'utf8');
  await writeFileAtomic(file, bytes);
  return { file, bytes: bytes.length, paths: data.info.full.count, seals: data.seals.length, audited: audit !== undefined, warnings: a.warnings };
}
