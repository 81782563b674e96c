/**
 * Every failure nix-seal reports to a user is a NixSealError: a stable `code` for programs, the
 * file or store path it is about, (for binary or line-oriented formats) where in it, and a `hint`
 * (what to do about it). The CLI prints `nix-seal: <message>` (and `nix-seal: hint: <hint>`), or
 * with --json one `{"error": {...}}` object, and exits 2; a stack trace only with --debug.
 * Code decides on `code` and `reason`, never on the message's words.
 */
export type ErrorCode =
  | 'EUSAGE' // bad command line (exit 2)
  | 'ENOTINSTORE' // a path outside the Nix store
  | 'EINVALIDPATH' // a store path that is not valid (not registered) in the source
  | 'EBADSTOREPATH' // a string that is not a well-formed store path
  | 'EBADHASH' // a hash in no encoding Nix accepts
  | 'EPARSE' // a malformed input file (registration, export graph, JSON)
  | 'EDB' // the store database is missing, unreadable, corrupt or locked
  | 'EDAEMON' // the nix command-line fallback failed
  | 'EIO' // reading or writing a file failed
  | 'EFORMAT' // a binary format is corrupt or unsupported
  | 'ECOMPRESS' // an external compressor failed
  | 'ENOTFOUND' // a name (why TARGET) that matches no path, or more than one
  | 'EINTERNAL'; // a bug: anything that is not a NixSealError

/** Every error exits 2; 1 is kept for negative answers (why: no dependency; audit --strict). */
export const ERROR_EXIT_CODE = 2;

export interface ErrorDetails {
  path?: string;
  line?: number;
  offset?: number;
  /** What the user can do about it, one line. */
  hint?: string;
  /** A finer machine-readable cause within `code` (e.g. 'EACCES', 'SQLITE_CANTOPEN', 'closed'). */
  reason?: string;
  cause?: unknown;
}

/** The shape of `--json` errors on stderr: `{"error": ErrorJson}`. */
export interface ErrorJson {
  code: string;
  message: string;
  path: string | null;
  offset: number | null;
  line: number | null;
  hint: string | null;
}

export class NixSealError extends Error {
  override name = 'NixSealError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }
  get path(): string | undefined {
    return this.details.path;
  }
  get line(): number | undefined {
    return this.details.line;
  }
  get offset(): number | undefined {
    return this.details.offset;
  }
  get hint(): string | undefined {
    return this.details.hint;
  }
  get reason(): string | undefined {
    return this.details.reason;
  }
  get exitCode(): number {
    return ERROR_EXIT_CODE;
  }
  toJSON(): ErrorJson {
    return {
      code: this.code,
      message: this.message,
      path: this.path ?? null,
      offset: this.offset ?? null,
      line: this.line ?? null,
      hint: this.hint ?? null,
    };
  }
}

/** A warning: the command still succeeds. `code` is stable for programs, as for errors. */
export type WarningCode =
  | 'WSEALNOTHING' // a --seal / --seals-from pattern seals no path of the closure
  | 'WUNSEALNOTHING' // a --no-seal pattern unseals nothing
  | 'WNOIMAGE'; // --seal-images found no image with references

export interface Warning {
  code: WarningCode;
  message: string;
}

/** A usage error: the command line itself is wrong. */
export function usageError(message: string, hint?: string): NixSealError {
  return new NixSealError('EUSAGE', message, hint === undefined ? {} : { hint });
}

/** A parse error in a line-oriented file: "Cannot parse FILE line N: why". */
export function parseError(file: string, line: number, why: string): NixSealError {
  return new NixSealError('EPARSE', `Cannot parse ${file} line ${line}: ${why}`, { path: file, line });
}

/** The `code` of a caught error (a Node system error's ENOENT, EACCES…), if it has a string one. */
export function errnoCode(err: unknown): string | undefined {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** Node's system errors (ENOENT, EACCES, …) rendered the way a user reads them. */
export function describeSystemError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'not a directory';
    case 'ENOSPC':
      return 'no space left on device';
    case 'ELOOP':
      return 'too many levels of symbolic links';
    default:
      return e?.message ?? String(err);
  }
}
