/**
 * Every failure nix-seal reports to a user is a NixSealError: a stable `code` for programs, the
 * file or store path it is about, and (for binary or line-oriented formats) where in it. The CLI
 * prints `nix-seal: <message>` on one line and exits with `exitCode`; a stack trace only with --debug.
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
  | 'ECOMPRESS'; // an external compressor failed

export class NixSealError extends Error {
  override name = 'NixSealError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: { path?: string; line?: number; offset?: number; cause?: unknown } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }
  get path(): string | undefined {
    return this.details.path;
  }
  get exitCode(): number {
    return this.code === 'EUSAGE' ? 2 : 1;
  }
}

/** A usage error: the command line itself is wrong. */
export function usageError(message: string): NixSealError {
  return new NixSealError('EUSAGE', message);
}

/** A parse error in a line-oriented file: "Cannot parse FILE line N: why". */
export function parseError(file: string, line: number, why: string): NixSealError {
  return new NixSealError('EPARSE', `Cannot parse ${file} line ${line}: ${why}`, { path: file, line });
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
