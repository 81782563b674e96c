import { Command, CommanderError, Option } from 'commander';
import { analyzeStore, prepareStore, type Analysis, type AnalysisOptions } from '../analysis.js';
import { ERROR_EXIT_CODE, NixSealError, type ErrorJson, type Warning } from '../errors.js';
import { closureLines, closureResult } from '../commands/closure.js';
import type { InitrdFlags } from '../commands/initrd.js';
import type { GraphSource } from '../sources/source.js';
import { STORE_FORMS, parseStoreSpec } from '../store/store-url.js';

// Commands other than `closure` load their modules when they run: `closure` on a small store is
// start-up bound (it must keep pace with nix-store -qR; BENCHMARKS.md), so it loads only what it uses.
const render = () => import('./render.js');

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** A commander parser for a positive whole-number option. */
const positiveInt = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new CommanderError(2, 'nix-seal.usage', `${flag} '${v}' is not a positive whole number`);
  return n;
};

interface CommonFlags {
  store?: string;
  httpConnections?: number;
  netrcFile?: string;
  seal: string[];
  sealsFrom: string[];
  sealImages?: boolean;
  noSeal: string[];
  json?: boolean;
  verbose?: boolean;
  debug?: boolean;
}

/** Flags every closure-computing command takes. */
function withClosureFlags(cmd: Command): Command {
  return cmd
    .option('--store <url>', `where the reference graph comes from: ${STORE_FORMS} (default: auto)`)
    .addOption(new Option('--http-connections <n>', 'binary caches over HTTP: how many requests in flight at once (default 25, like Nix)').argParser(positiveInt('--http-connections')))
    .option('--netrc-file <file>', "binary caches over HTTP: credentials from this netrc file (like Nix's netrc-file)")
    .option('--seal <pattern>', "seal a path (contains '/') or every path whose name matches a glob (e.g. '*.iso'); repeatable", collect, [])
    .option('--seals-from <file>', 'read seal patterns from FILE, one a line (# comments); repeatable', collect, [])
    .option('--seal-images', 'also seal every path of the closure whose bytes are a self-contained image (ISO, disk image, squashfs, archive…)')
    .addOption(noSealOption())
    .option('--json', 'print JSON')
    .option('-v, --verbose', 'say which source was used and what was done')
    .option('--debug', 'print stack traces on errors');
}

/**
 * `--no-seal PATTERN`: commander reads any `--no-X` as the negation of `--X` and would append the
 * pattern to --seal's list; this option is its own list, under `noSeal`.
 */
function noSealOption(): Option {
  const o = new Option('--no-seal <pattern>', 'never seal what PATTERN matches (a path or a glob, as for --seal), declared or detected; repeatable')
    .argParser(collect)
    .default([]);
  o.negate = false;
  o.attributeName = () => 'noSeal';
  return o;
}

function analysisOptions(roots: string[], f: CommonFlags, out: Output): AnalysisOptions {
  return {
    roots,
    seals: f.seal,
    sealsFrom: f.sealsFrom,
    sealImages: f.sealImages ?? false,
    noSeals: f.noSeal,
    ...(f.httpConnections !== undefined || f.netrcFile !== undefined
      ? { store: parseStoreSpec(f.store, process.env, { httpConnections: f.httpConnections, netrcFile: f.netrcFile }) }
      : f.store !== undefined
        ? { store: f.store }
        : {}),
    log: f.verbose ? (m) => out.err(`nix-seal: ${m}\n`) : () => {},
  };
}

export interface Output {
  out(text: string): void;
  err(text: string): void;
}

const processOutput: Output = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
};

function warn(out: Output, warnings: Warning[]): void {
  for (const w of warnings) out.err(`nix-seal: warning: ${w.message}\n`);
}

const HELP_AFTER = `
--store URL (every closure command):
  auto                      the local store (NIX_STORE_DIR, NIX_STATE_DIR; default /nix/store, /nix/var/nix);
                            through the nix command when its database is not readable
  local?root=DIR            store and state under DIR (DIR/nix/store, DIR/nix/var/nix)
  local?store=S&state=T     store dir S, state dir T (holding db/db.sqlite); real=R: files at R
  daemon                    nix path-info through the daemon (or NIX_REMOTE)
  registration:FILE         closureInfo's registration, or nix-store --dump-db output
  export-graph:FILE[,FILE…] exportReferencesGraph files inside a build
  attrs-json:FILE[#NAME]    a structured-attrs .attrs.json
  path-info:FILE            nix path-info --json -r output

Exit codes: 0 success or yes, 1 a negative answer (why: no dependency; audit --strict: not proven),
2 any error (with --json: one {"error": {...}} object on stderr).
`;

/**
 * The CLI's commands. `opened` collects the sources their analyses open; main() closes them when
 * the command is done, whether it succeeded or not.
 */
export function buildProgram(out: Output, setExit: (code: number) => void, opened: GraphSource[] = []): Command {
  const analyze = async (opts: AnalysisOptions): Promise<Analysis> => {
    const a = await analyzeStore(opts);
    opened.push(a.source);
    return a;
  };
  const program = new Command('nix-seal')
    .description('Nix closures that stop at seals: self-contained store paths such as ISO images')
    .version('0.1.0')
    .showHelpAfterError(false)
    .configureOutput({ writeOut: (s) => out.out(s), writeErr: (s) => out.err(s), outputError: () => {} }) // main() reports it
    .exitOverride()
    .addHelpText('after', HELP_AFTER);

  withClosureFlags(
    program
      .command('closure')
      .description('print the sealed closure of ROOTs, dependencies first (without seals: exactly nix-store -qR)')
      .argument('[root...]', 'store paths, paths inside them, or symlinks to them (./result); with --store image:FILE, default: the paths the image embeds that nothing else refers to'),
  ).action(async (roots: string[], f: CommonFlags) => {
    const a = await analyze(analysisOptions(roots, f, out));
    warn(out, a.warnings);
    out.out(f.json ? JSON.stringify(closureResult(a), null, 2) + '\n' : closureLines(a));
  });

  withClosureFlags(
    program
      .command('info')
      .description('summarise the full and the sealed closure, and what each seal erased')
      .argument('[root...]', 'store paths, paths inside them, or symlinks to them (default with --store image:FILE: the roots of the closure it embeds)'),
  )
    .option('--all', 'list every erased path (default: the 10 largest per seal)')
    .action(async (roots: string[], f: CommonFlags & { all?: boolean }) => {
      const a = await analyze(analysisOptions(roots, f, out));
      warn(out, a.warnings);
      const { infoResult } = await import('../commands/info.js');
      const r = infoResult(a);
      out.out(f.json ? JSON.stringify(r, null, 2) + '\n' : (await render()).renderInfo(r, { all: f.all ?? false }));
    });

  withClosureFlags(
    program
      .command('why')
      .description('show the shortest reference chain from ROOT to TARGET, and which seal erased TARGET')
      .argument('<root>', 'a store path, a path inside one, or a symlink to one')
      .argument('<target>', 'the path to explain'),
  )
    .option('--all', 'print every chain (up to --limit)')
    .addOption(new Option('--limit <n>', 'how many chains --all prints').default(100).argParser(positiveInt('--limit')))
    .option('--precise', "for each edge, where the reference sits: file, offset, the bytes around it, and the file inside an image (ISO 9660, squashfs)")
    .addOption(new Option('--evidence <n>', 'how many occurrences --precise shows per edge').default(5).argParser(positiveInt('--evidence')))
    .action(async (root: string, target: string, f: CommonFlags & { all?: boolean; limit: number; precise?: boolean; evidence: number }) => {
      const a = await analyze(analysisOptions([root], f, out));
      warn(out, a.warnings);
      const { addPrecision, whyResult } = await import('../commands/why.js');
      let r = whyResult(a, target, f.all ? { limit: f.limit } : undefined);
      if (f.precise) r = await addPrecision(r, a, { maxEvidence: f.evidence });
      out.out(f.json ? JSON.stringify(r, null, 2) + '\n' : (await render()).renderWhy(r));
      if (r.status === 'absent') setExit(1);
    });

  withClosureFlags(
    program
      .command('initrd')
      .description('write the sealed closure as a compressed cpio initrd (reproducible, streaming)')
      .argument('[root...]', 'store paths, paths inside them, or symlinks to them'),
  )
    .requiredOption('-o, --output <file>', 'the initrd to write (written to a temporary file, then renamed)')
    .option('--mkdir', "create FILE's directory if it is missing (one level; for Nix builds writing $out/initrd)")
    .option('--init <path>', 'make /init a symlink to PATH (a path in the store) and add PATH to the roots')
    .option('--link <dest=target>', 'add a symlink DEST → TARGET to the image (a store TARGET joins the roots); repeatable', collect, [])
    .option('--registration <path>', "put the sealed closure's registration into the image at PATH (like nix-path-registration)")
    .option('--prepend <file>', 'put this uncompressed cpio archive first (CPU microcode); repeatable', collect, [])
    .option('--compress <name>', 'zstd, gzip, xz, lz4 (legacy frame) or none', 'zstd')
    .option('--level <n>', 'compression level (default: what nixpkgs uses: zstd 10, gzip 9, xz 6, lz4 1)')
    .action(async (roots: string[], f: CommonFlags & InitrdFlags) => {
      // A bar only on a person's terminal (not in pipes, CI, TERM=dumb, NO_COLOR or Nix builds).
      const { noProgressReason, progressBar } = await import('./progress.js');
      const bar = out === processOutput && noProgressReason(process.stderr) === undefined ? await progressBar(process.stderr) : undefined;
      try {
        const { initrdCommand } = await import('../commands/initrd.js');
        const { registrationFor } = await import('../commands/initrd-registration.js');
        const r = await initrdCommand(roots, f, analysisOptions([], f, out), registrationFor, bar?.update);
        // The bar goes first, so the summary stands on its own line, not glued to or wiped by it.
        bar?.stop();
        warn(out, r.warnings);
        out.out(f.json ? JSON.stringify(r, null, 2) + '\n' : (await render()).renderInitrd(r));
      } finally {
        bar?.stop();
      }
    });

  withClosureFlags(
    program
      .command('closure-info')
      .description("write nixpkgs closureInfo's files for the sealed closure: store-paths, registration (for nix-store --load-db), total-nar-size, and seals.json")
      .argument('[root...]', 'store paths, paths inside them, or symlinks to them (default with --store image:FILE: the roots of the closure it embeds)'),
  )
    .option('-o, --out <dir>', 'write the files into DIR (created if missing; its parent must exist)')
    .option('--registration-only <file>', "write only the registration, to FILE ('-' for standard output)")
    .action(async (roots: string[], f: CommonFlags & { out?: string; registrationOnly?: string }) => {
      const { checkClosureInfoOptions, closureInfoCommand } = await import('../commands/closure-info.js');
      const opts = analysisOptions(roots, f, out);
      const ci = { out: f.out, registrationOnly: f.registrationOnly, log: opts.log };
      checkClosureInfoOptions(ci);
      const a = await analyze({ ...opts, hashes: true });
      warn(out, a.warnings);
      const r = await closureInfoCommand(a, ci);
      out.out(f.json ? JSON.stringify(r, null, 2) + '\n' : (await render()).renderClosureInfo(r));
    });

  withClosureFlags(
    program
      .command('audit')
      .description('prove each seal safe: for every path it erased, is it contained in the image, only mentioned by it, or unverifiable?')
      .argument('[root...]', 'store paths, paths inside them, or symlinks to them (default with --store image:FILE: the roots of the closure it embeds)'),
  )
    .option('--strict', 'exit 1 unless every erased path is verified (contained, with --quick)')
    .option('--quick', "do not hash the copies inside the images: a copy makes a path 'contained', not 'verified'")
    .addOption(new Option('--evidence <n>', 'how many pieces of evidence to show per erased path').default(5).argParser(positiveInt('--evidence')))
    .action(async (roots: string[], f: CommonFlags & { strict?: boolean; quick?: boolean; evidence: number }) => {
      const { auditCommand } = await import('../commands/audit.js');
      const opts = analysisOptions(roots, f, out);
      const a = await analyze({ ...opts, hashes: true });
      warn(out, a.warnings);
      const { noProgressReason, progressBar } = await import('./progress.js');
      const bar = !f.quick && out === processOutput && noProgressReason(process.stderr) === undefined ? await progressBar(process.stderr, 'audit: hashing copies') : undefined;
      let r;
      try {
        r = await auditCommand(a, f, opts.log, bar ? (p) => bar.update(p.done, p.total) : undefined);
      } finally {
        bar?.stop();
      }
      out.out(f.json ? JSON.stringify(r.result, null, 2) + '\n' : (await import('./render-audit.js')).renderAudit(r.result));
      setExit(r.exitCode);
    });

  withClosureFlags(
    program
      .command('suggest')
      .description('find the self-contained images in the closure of ROOTs and rank them by what sealing each would erase')
      .argument('[root...]', 'store paths, paths inside them, or symlinks to them (default with --store image:FILE: the roots of the closure it embeds)'),
  )
    .option('--quick', "do not hash the copies inside the images: an image is proven when every erased path has a copy inside")
    .action(async (roots: string[], f: CommonFlags & { quick?: boolean }) => {
    const { suggestResult } = await import('../commands/suggest.js');
    const a = await analyze({ ...analysisOptions(roots, f, out), sealImages: true, hashes: true });
    warn(out, a.warnings.filter((w) => w.code !== 'WNOIMAGE'));
    const r = await suggestResult(a, { seals: f.seal, sealsFrom: f.sealsFrom, noSeals: f.noSeal }, { quick: f.quick ?? false });
    out.out(f.json ? JSON.stringify(r, null, 2) + '\n' : (await render()).renderSuggest(r));
  });

  withClosureFlags(
    program
      .command('sbom')
      .description('write the sealed closure as a software bill of materials (CycloneDX 1.6 or SPDX 2.3 JSON); each seal lists what it embeds')
      .argument('[root...]', 'store paths, paths inside them, or symlinks to them (default with --store image:FILE: the roots of the closure it embeds)'),
  )
    .requiredOption('-o, --output <file>', "the document to write (temporary file, then renamed; '-' for standard output)")
    .addOption(new Option('--format <name>', 'cyclonedx (1.6 JSON) or spdx (2.3 JSON)').choices(['cyclonedx', 'spdx']).default('cyclonedx'))
    .option('--audit', "audit each seal and give every erased path its verdict (property nix-seal:verdict)")
    .option('--timestamp', 'record the time of writing (otherwise none: CycloneDX omits it, SPDX gets 1970-01-01T00:00:00Z)')
    .action(async (roots: string[], f: CommonFlags & import('../commands/sbom.js').SbomFlags) => {
      const { sbomCommand } = await import('../commands/sbom.js');
      const r = await sbomCommand(analysisOptions(roots, f, out), f, (t) => out.out(t));
      warn(out, r.warnings);
      if (f.output !== '-') out.out(f.json ? JSON.stringify(r, null, 2) + '\n' : (await render()).renderSbomResult(r));
    });

  withClosureFlags(
    program
      .command('report')
      .description('write one self-contained HTML page: treemap, seals and what they erased, every path and why it is there')
      .argument('[root...]', 'store paths, paths inside them, or symlinks to them (default with --store image:FILE: the roots of the closure it embeds)'),
  )
    .requiredOption('-o, --output <file>', 'the HTML file to write (written to a temporary file, then renamed)')
    .option('--audit', "also audit each seal (as `audit`): every erased path's verdict and evidence")
    .addOption(new Option('--evidence <n>', 'with --audit: how many pieces of evidence per erased path').default(5).argParser(positiveInt('--evidence')))
    .action(async (roots: string[], f: CommonFlags & { output: string; audit?: boolean; evidence: number }) => {
      const { checkReportFlags, reportCommand } = await import('../commands/report.js');
      await checkReportFlags(f);
      const opts = analysisOptions(roots, f, out);
      const a = await analyze(opts);
      warn(out, a.warnings);
      const r = await reportCommand(a, f, opts.log);
      out.out(f.json ? JSON.stringify(r, null, 2) + '\n' : (await render()).renderReport(r));
    });

  program
    .command('hash')
    .description('print the NAR hash (sha256, nix32) and NAR size of each PATH, as Nix registers them (nix-hash --type sha256 --base32)')
    .argument('<path...>', 'files or directories, in the store or not (a symlink is hashed as the symlink; PATH/ follows it)')
    .option('--store <url>', `where a store path that is not on disk is read from: ${STORE_FORMS} (default: disk only)`)
    .addOption(new Option('--http-connections <n>', 'binary caches over HTTP: how many requests in flight at once (default 25, like Nix)').argParser(positiveInt('--http-connections')))
    .option('--netrc-file <file>', "binary caches over HTTP: credentials from this netrc file (like Nix's netrc-file)")
    .option('--json', 'print JSON')
    .option('-v, --verbose', 'say which source was used and what was done')
    .option('--debug', 'print stack traces on errors')
    .action(async (paths: string[], f: { json?: boolean; store?: string; httpConnections?: number; netrcFile?: string; verbose?: boolean }) => {
      const { hashCommand } = await import('../commands/hash.js');
      const { openSource } = await import('../sources/open-source.js');
      const store = f.store;
      if (store !== undefined) await prepareStore(store);
      const r = await hashCommand(
        paths,
        store === undefined
          ? undefined
          : () =>
              openSource(
                parseStoreSpec(store, process.env, { httpConnections: f.httpConnections, netrcFile: f.netrcFile }),
                f.verbose ? (m) => out.err(`nix-seal: ${m}\n`) : () => {},
              ),
      );
      out.out(f.json ? JSON.stringify(r, null, 2) + '\n' : (await render()).renderHash(r));
    });

  return program;
}

/**
 * Runs the CLI; returns the exit code: 0 success (or yes), 1 a negative answer (set by the
 * command), 2 any error. An error is `nix-seal: message` (and `nix-seal: hint: …`) on stderr, or
 * with --json one `{"error": {...}}` line; a stack trace only with --debug.
 */
export async function main(argv: string[], out: Output = processOutput): Promise<number> {
  let code = 0;
  const opened: GraphSource[] = [];
  const program = buildProgram(out, (c) => (code = c), opened);
  const debug = argv.includes('--debug');
  const json = argv.includes('--json');
  const report = (e: ErrorJson, stack?: string): number => {
    if (json) out.err(JSON.stringify({ error: e }) + '\n');
    else out.err(`nix-seal: ${e.message}\n${e.hint !== null ? `nix-seal: hint: ${e.hint}\n` : ''}`);
    if (debug && stack !== undefined) out.err(stack);
    return ERROR_EXIT_CODE;
  };
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit through here with code 0; commander already printed them.
      if (err.exitCode === 0) return 0;
      const command = program.commands.find((c) => argv.includes(c.name()));
      return report({
        code: 'EUSAGE',
        message: err.message.replace(/^error: /, ''),
        path: null,
        offset: null,
        line: null,
        hint: `'nix-seal ${command ? command.name() + ' ' : ''}--help' lists the arguments and options`,
      });
    }
    if (err instanceof NixSealError) {
      return report(err.toJSON(), `${err.stack}\n${err.details.cause instanceof Error ? `cause: ${err.details.cause.stack}\n` : ''}`);
    }
    return report(
      {
        code: 'EINTERNAL',
        message: `internal error: ${(err as Error)?.message ?? String(err)}`,
        path: null,
        offset: null,
        line: null,
        hint: debug ? null : 'run with --debug for a stack trace, and please report it',
      },
      `${(err as Error)?.stack}\n`,
    );
  } finally {
    for (const s of opened) s.close?.();
  }
}
