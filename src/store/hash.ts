import { NixSealError } from '../errors.js';
import { decodeNix32, encodeNix32, nix32Length } from './nix32.js';

export type HashAlgo = 'md5' | 'sha1' | 'sha256' | 'sha512';

const DIGEST_BYTES: Record<HashAlgo, number> = { md5: 16, sha1: 20, sha256: 32, sha512: 64 };

/** A content hash, held as its raw digest. */
export interface Hash {
  readonly algo: HashAlgo;
  readonly digest: Uint8Array;
}

const HEX = /^[0-9a-fA-F]+$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeDigest(algo: HashAlgo, text: string): Uint8Array | undefined {
  const n = DIGEST_BYTES[algo];
  if (text.length === n * 2 && HEX.test(text)) return Uint8Array.from(Buffer.from(text, 'hex'));
  if (text.length === nix32Length(n)) return decodeNix32(text, n);
  if (text.length === Math.ceil(n / 3) * 4 && BASE64.test(text)) {
    const bytes = Buffer.from(text, 'base64');
    if (bytes.length === n) return Uint8Array.from(bytes);
  }
  return undefined;
}

/**
 * Parses a hash in every form Nix writes one: `algo:<hex|nix32|base64>` (closureInfo, narinfo,
 * the SQLite `hash` column), SRI `algo-<base64>` (`nix path-info --json`) and, when `defaultAlgo`
 * is given, a bare digest (`nix-store --dump-db` writes bare hex).
 */
export function parseHash(text: string, defaultAlgo?: HashAlgo): Hash {
  const fail = (): never => {
    throw new NixSealError('EBADHASH', `Cannot parse hash '${text}': not a hash in any encoding Nix accepts`);
  };
  let algo: string | undefined;
  let rest = text;
  const colon = text.indexOf(':');
  const dash = text.indexOf('-');
  if (colon > 0) {
    algo = text.slice(0, colon);
    rest = text.slice(colon + 1);
  } else if (dash > 0 && text.slice(0, dash) in DIGEST_BYTES) {
    algo = text.slice(0, dash);
    rest = text.slice(dash + 1);
    // SRI is always base64.
    const n = DIGEST_BYTES[algo as HashAlgo];
    const bytes = BASE64.test(rest) ? Buffer.from(rest, 'base64') : undefined;
    if (!bytes || bytes.length !== n) return fail();
    return { algo: algo as HashAlgo, digest: Uint8Array.from(bytes) };
  } else {
    algo = defaultAlgo;
  }
  if (algo === undefined || !(algo in DIGEST_BYTES)) return fail();
  const digest = decodeDigest(algo as HashAlgo, rest);
  if (!digest) return fail();
  return { algo: algo as HashAlgo, digest };
}

/** `sha256:<nix32>`: what closureInfo's registration and narinfo files hold. */
export function formatHashNix32(h: Hash): string {
  return `${h.algo}:${encodeNix32(h.digest)}`;
}

/** `sha256:<hex>`: what Nix stores in the database. */
export function formatHashHex(h: Hash): string {
  return `${h.algo}:${Buffer.from(h.digest).toString('hex')}`;
}

/** `sha256-<base64>`: SRI, what newer `nix path-info --json` prints. */
export function formatHashSri(h: Hash): string {
  return `${h.algo}-${Buffer.from(h.digest).toString('base64')}`;
}

export function hashesEqual(a: Hash, b: Hash): boolean {
  return a.algo === b.algo && Buffer.from(a.digest).equals(Buffer.from(b.digest));
}
