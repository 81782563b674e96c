import { Command, CommanderError, Option } from 'commander';
import { analyze, type AnalysisOptions } from '../analysis.js';
import { NixSealError } from '../errors.js';
import { closureLines, closureResult } from './closure.js';
import type { InitrdFlags } from './initrd.js';

// Commands other than `closure` load their modules when they run: `closure` on a small store is
// start-up bound (it must keep pace with nix-store -qR's ~70 ms), so it loads only what it uses.
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
    .option('--store <url>', "where the reference graph comes from (default: the local store; see README)")
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
    ...(f.store !== undefined ? { store: f.store } : {}),
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

function warn(out: Output, warnings: string[]): void {
  for (const w of warnings) out.err(`nix-seal: warning: ${w}\n`);
}

export function buildProgram(out: Output, setExit: (code: number) => void): Command {
  const program = new Command('nix-seal')
    .description('Nix closures that stop at seals: self-contained store paths such as ISO images')
    .version('0.1.0')
    .showHelpAfterError(false)
    .configureOutput({ writeOut: (s) => out.out(s), writeErr: (s) => out.err(s), outputError: (s, write) => write(`nix-seal: ${s.replace(/^error: /, '')}`) })
    .exitOverride();

  withClosureFlags(
    program
      .command('closure')
      .description('print the sealed closure of ROOTs, dependencies first (without seals: exactly nix-store -qR)')
      .argument('<root...>', 'store paths, paths inside them, or symlinks to them (./result)'),
  ).action((roots: string[], f: CommonFlags) => {
    const a = analyze(analysisOptions(roots, f, out));
    warn(out, a.warnings);
    out.out(f.json ? JSON.stringify(closureResult(a), null, 2) + '\n' : closureLines(a));
  });

  withClosureFlags(
    program
      .command('info')
      .description('summarise the full and the sealed closure, and what each seal erased')
      .argument('<root...>', 'store paths, paths inside them, or symlinks to them'),
  ).action(async (roots: string[], f: CommonFlags) => {
    const a = analyze(analysisOptions(roots, f, out));
    warn(out, a.warnings);
    const { infoResult } = await import('./info.js');
    const r = infoResult(a);
    out.out(f.json ? JSON.stringify(r, null, 2) + '\n' : (await render()).renderInfo(r));
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
      const a = analyze(analysisOptions([root], f, out));
      warn(out, a.warnings);
      const { addPrecision, whyResult } = await import('./why.js');
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
      const bar = process.stderr.isTTY && out === processOutput ? await progressBar() : undefined;
      try {
        const { initrdCommand } = await import('./initrd.js');
        const { registrationFor } = await import('./registration-hook.js');
        const r = await initrdCommand(roots, f, analysisOptions([], f, out), registrationFor, bar?.update);
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
      .argument('<root...>', 'store paths, paths inside them, or symlinks to them'),
  )
    .option('-o, --out <dir>', 'write the files into DIR (created if missing; its parent must exist)')
    .option('--registration-only <file>', "write only the registration, to FILE ('-' for standard output)")
    .action(async (roots: string[], f: CommonFlags & { out?: string; registrationOnly?: string }) => {
      const { checkClosureInfoOptions, closureInfoCommand, renderClosureInfo } = await import('./closure-info.js');
      const opts = analysisOptions(roots, f, out);
      const ci = { out: f.out, registrationOnly: f.registrationOnly, log: opts.log };
      checkClosureInfoOptions(ci);
      const a = analyze({ ...opts, hashes: true });
      warn(out, a.warnings);
      const r = await closureInfoCommand(a, ci);
      out.out(f.json ? JSON.stringify(r, null, 2) + '\n' : renderClosureInfo(r));
    });

  withClosureFlags(
    program
      .command('audit')
      .description('prove each seal safe: for every path it erased, is it contained in the image, only mentioned by it, or unverifiable?')
      .argument('<root...>', 'store paths, paths inside them, or symlinks to them'),
  )
    .option('--strict', 'exit 1 when any erased path is not contained')
    .addOption(new Option('--evidence <n>', 'how many pieces of evidence to show per erased path').default(5).argParser(positiveInt('--evidence')))
    .action(async (roots: string[], f: CommonFlags & { strict?: boolean; evidence: number }) => {
      const { auditCommand, renderAudit } = await import('./audit.js');
      const opts = analysisOptions(roots, f, out);
      const a = analyze(opts);
      warn(out, a.warnings);
      const { result, exitCode } = await auditCommand(a, f, opts.log);
      out.out(f.json ? JSON.stringify(result, null, 2) + '\n' : renderAudit(result));
      setExit(exitCode);
    });

  withClosureFlags(
    program
      .command('suggest')
      .description('find the self-contained images in the closure of ROOTs and rank them by what sealing each would erase')
      .argument('<root...>', 'store paths, paths inside them, or symlinks to them'),
  ).action(async (roots: string[], f: CommonFlags) => {
    const { suggestResult, renderSuggest } = await import('./suggest.js');
    const a = analyze({ ...analysisOptions(roots, f, out), sealImages: true });
    warn(out, a.warnings.filter((w) => !w.startsWith('--seal-images found no image')));
    const r = suggestResult(a);
    out.out(f.json ? JSON.stringify(r, null, 2) + '\n' : renderSuggest(r, (await render()).human));
  });

  program
    .command('hash')
    .description('print the NAR hash (sha256, nix32) and NAR size of each PATH, as Nix registers them (nix-hash --type sha256 --base32)')
    .argument('<path...>', 'files or directories, in the store or not (a symlink is hashed as the symlink; PATH/ follows it)')
    .option('--json', 'print JSON')
    .option('--debug', 'print stack traces on errors')
    .action(async (paths: string[], f: { json?: boolean }) => {
      const { hashCommand, renderHash } = await import('./hash.js');
      const r = await hashCommand(paths);
      out.out(f.json ? JSON.stringify(r, null, 2) + '\n' : renderHash(r));
    });

  return program;
}

/** A progress bar over the bytes archived, for a terminal only. Loaded on demand: start-up stays lean. */
async function progressBar(): Promise<{ update: (done: number, total: number) => void; stop: () => void }> {
  const { SingleBar, Presets } = (await import('cli-progress')).default;
  const bar = new SingleBar(
    { format: 'initrd [{bar}] {percentage}% | {value}/{total} MiB', hideCursor: true, clearOnComplete: true, stream: process.stderr },
    Presets.shades_classic,
  );
  let started = false;
  return {
    update: (done, total) => {
      const mib = (n: number): number => Math.round(n / 1048576);
      if (!started) (bar.start(mib(total), 0), (started = true));
      bar.update(mib(done));
    },
    stop: () => started && bar.stop(),
  };
}

/** Runs the CLI; returns the exit code. Errors become one line on stderr (a stack with --debug). */
export async function main(argv: string[], out: Output = processOutput): Promise<number> {
  let code = 0;
  const program = buildProgram(out, (c) => (code = c));
  const debug = argv.includes('--debug');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit through here with code 0; commander already printed the message.
      if (err.exitCode === 0) return 0;
      if (err.code === 'nix-seal.usage') out.err(`nix-seal: ${err.message}\n`);
      return 2;
    }
    if (err instanceof NixSealError) {
      out.err(`nix-seal: ${err.message}\n`);
      if (debug) out.err(`${err.stack}\n${err.details.cause instanceof Error ? `cause: ${err.details.cause.stack}\n` : ''}`);
      return err.exitCode;
    }
    out.err(`nix-seal: internal error: ${(err as Error)?.message ?? String(err)}\n`);
    if (debug) out.err(`${(err as Error)?.stack}\n`);
    else out.err('nix-seal: (run with --debug for a stack trace, and please report it)\n');
    return 1;
  }
}
