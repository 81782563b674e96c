/** `nix-seal sbom`: the sealed closure as a CycloneDX or SPDX JSON document, written atomically. */
import type { Warning } from '../errors.js';
import * as fs from 'node:fs';
import { analyzeStore, type Analysis, type AnalysisOptions } from '../analysis.js';
import { checkOutputFile, writeFileAtomic } from '../emit/atomic-write.js';
import { renderSbom, sbomInput, type SbomFormat } from '../emit/sbom.js';

export interface SbomFlags {
  output: string;
  format: SbomFormat;
  audit?: boolean;
  timestamp?: boolean;
}

export interface SbomResult {
  file: string;
  format: SbomFormat;
  kept: number;
  seals: number;
  erased: number;
  audited: boolean;
  warnings: Warning[];
}

/** nix-seal's own name and version (package.json, two levels above dist/src/commands). */
function tool(): { name: string; version: string } {
  const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
}

/** Computes the sealed closure (with hashes), audits its seals under --audit, writes the document; closes the source it opened. */
export async function sbomCommand(opts: AnalysisOptions, f: SbomFlags, write: (text: string) => void): Promise<SbomResult> {
  const toStdout = f.output === '-';
  if (!toStdout) await checkOutputFile(f.output);
  const a = await analyzeStore({ ...opts, hashes: true });
  try {
    return await sbomOf(a, opts, f, write);
  } finally {
    if (opts.source === undefined) a.source.close?.();
  }
}

async function sbomOf(a: Analysis, opts: AnalysisOptions, f: SbomFlags, write: (text: string) => void): Promise<SbomResult> {
  const toStdout = f.output === '-';
  let verdicts: Map<string, Map<string, string>> | undefined;
  if (f.audit) {
    // Loaded only here: the audit pulls in every image reader.
    const { auditAnalysis } = await import('../seal/audit.js');
    const r = await auditAnalysis(a, opts.log ? { log: opts.log } : {});
    verdicts = new Map(r.seals.map((s) => [s.path, new Map(s.erased.map((e) => [e.path, e.verdict as string]))]));
  }
  const timestamp = f.timestamp ? new Date().toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined;
  const input = sbomInput(a, { tool: tool(), ...(verdicts ? { verdicts } : {}), ...(timestamp ? { timestamp } : {}) });
  const text = renderSbom(f.format, input);
  if (toStdout) write(text);
  else await writeFileAtomic(f.output, text);
  return {
    file: f.output,
    format: f.format,
    kept: input.kept.length,
    seals: input.seals.length,
    erased: new Set(input.seals.flatMap((s) => s.erased.map((e) => e.path))).size,
    audited: f.audit ?? false,
    warnings: a.warnings,
  };
}
