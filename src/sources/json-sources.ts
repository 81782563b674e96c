import { createRequire } from 'node:module';
import type * as JsoncParser from 'jsonc-parser';
import { NixSealError } from '../errors.js';
import type { RefGraph } from '../graph/ref-graph.js';
import { RecordCollector } from './records.js';
import { itemAt } from '../checked-index.js';

/**
 * JSON.parse with the failure turned into "Cannot parse FILE line N: …". V8's messages do not
 * always carry a position, so a tolerant parser (jsonc-parser) locates the first error. It is
 * loaded only then: its six modules cost start-up time every command would pay otherwise.
 */
function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const { parse: parseTolerant, printParseErrorCode } = createRequire(import.meta.url)('jsonc-parser') as typeof JsoncParser;
    const errors: JsoncParser.ParseError[] = [];
    parseTolerant(text, errors, { allowTrailingComma: false, disallowComments: true });
    const first = errors[0];
    const line = first ? text.slice(0, first.offset).split('\n').length : undefined;
    const why = first ? printParseErrorCode(first.error) : (err as Error).message;
    throw new NixSealError('EPARSE', `Cannot parse ${file}${line ? ` line ${line}` : ''}: invalid JSON (${why})`, {
      path: file,
      ...(line ? { line } : {}),
    });
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function field<T>(c: RecordCollector, o: Obj, key: string, where: string, check: (v: unknown) => v is T, what: string): T {
  const v = o[key];
  if (!check(v)) c.fail(where, `'${key}' is ${v === undefined ? 'missing' : 'not ' + what}`);
  return v;
}
const isString = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

/**
 * A `narHash` as path-info JSON gives it: a string (nix32 with `sha256:`, or SRI, which every
 * released format uses), or the object `{algorithm, format, hash}` that Nix's development branch
 * printed for a while before 2.33 (commit 61de9222b0 went back to SRI strings).
 */
function narHashOf(c: RecordCollector, o: Obj, where: string): string {
  const v = o.narHash;
  if (isString(v)) return v;
  if (isObj(v) && isString(v.algorithm) && isString(v.hash)) {
    switch (v.format) {
      case 'base16':
      case 'nix32':
      case 'base32':
        return `${v.algorithm}:${v.hash}`;
      case 'base64':
        return `${v.algorithm}-${v.hash}`;
      case 'sri':
        return v.hash;
    }
    c.fail(where, `'narHash' has the unknown format ${JSON.stringify(v.format)}`);
  }
  return field(c, o, 'narHash', where, isString, 'a hash');
}

/** A path as format 2 and 3 write them (`<hash>-<name>`, no store dir) made absolute. */
function underStoreDir(c: RecordCollector, storeDir: string, name: string, where: string, what: string): string {
  if (name.includes('/')) c.fail(where, `${what} '${name}' is not a store path's base name (JSON format 2 and 3 give no directory)`);
  return `${storeDir}/${name}`;
}

/**
 * `nix path-info --json --recursive` output, in every shape Nix prints
 * (NixOS/nix src/nix/path-info.cc `pathInfoToJSON`, src/libstore/path-info.cc
 * `UnkeyedValidPathInfo::toJSON`; fixtures in src/libstore-tests/data/path-info/json-{1,2,3}):
 * - Nix ≤ 2.18: a list of objects with `path`;
 * - 2.19 to 2.32, and `--json-format 1` of 2.33+: an object keyed by absolute path (a null value
 *   marks an invalid path); format 1 adds `"version": 1` and `storeDir` to each entry;
 * - `--json-format 2` and `3` (2.33+): `{"version": N, "storeDir": D, "info": {…}}`, keyed by base
 *   name, with references and deriver as base names; 3 differs only in its signatures (objects).
 */
export function parsePathInfoJson(text: string, file: string): RefGraph {
  const c: RecordCollector = new RecordCollector(file);
  const doc = parseJson(text, file);
  let entries: [string | undefined, unknown, string][];
  let storeDir: string | undefined; // format 2 and 3: paths are base names under it
  let version = 1; // what an entry's own `version` must be, when it has one
  if (Array.isArray(doc)) {
    entries = doc.map((v, i) => [undefined, v, `entry ${i + 1}`]);
  } else if (isObj(doc) && ('info' in doc || 'version' in doc)) {
    if (doc.version !== 2 && doc.version !== 3) {
      c.fail('', `'version' is ${JSON.stringify(doc.version)}: expected 2 or 3 (nix path-info --json-format 2 or 3) beside 'info'`);
    }
    version = doc.version;
    storeDir = field(c, doc, 'storeDir', '', isString, 'a string').replace(/\/+$/, '');
    if (!storeDir.startsWith('/')) c.fail('', `'storeDir' '${storeDir}' is not an absolute directory`);
    const info = doc.info;
    if (!isObj(info)) c.fail('', `'info' is ${info === undefined ? 'missing' : 'not an object of path infos'}`);
    entries = Object.entries(info).map(([k, v]) => [underStoreDir(c, storeDir!, k, `info '${k}'`, 'key'), v, `info '${k}'`]);
  } else if (isObj(doc)) {
    entries = Object.entries(doc).map(([k, v]) => [k, v, `entry '${k}'`]);
  } else {
    c.fail('', 'expected a JSON list or object of path infos');
  }
  for (const [key, v, where] of entries) {
    if (v === null && key !== undefined) c.fail(where, 'the path is not valid in the store it came from');
    if (!isObj(v)) c.fail(where, 'expected an object');
    if (v.valid === false) c.fail(where, 'the path is not valid in the store it came from');
    // An entry's own version: 1 in a map keyed by path (format 1), the document's in format 2/3.
    if (v.version !== undefined && v.version !== version) c.fail(where, `'version' is ${JSON.stringify(v.version)}, expected ${version}`);
    if (storeDir !== undefined && v.storeDir !== undefined && v.storeDir !== storeDir) {
      c.fail(where, `'storeDir' is ${JSON.stringify(v.storeDir)}, but the document's is '${storeDir}'`);
    }
    const p = key ?? field(c, v, 'path', where, isString, 'a string');
    let references = field(c, v, 'references', where, isStringList, 'a list of paths');
    let deriver = isString(v.deriver) ? v.deriver : undefined;
    if (storeDir !== undefined) {
      const dir = storeDir;
      references = references.map((r) => underStoreDir(c, dir, r, where, 'reference'));
      if (deriver !== undefined) deriver = underStoreDir(c, dir, deriver, where, 'deriver');
    }
    c.add({
      path: p,
      narHash: narHashOf(c, v, where),
      narSize: field(c, v, 'narSize', where, isCount, 'a size'),
      deriver,
      references,
      where,
    });
  }
  return c.finish();
}

/**
 * A structured-attrs `.attrs.json` with `exportReferencesGraph.NAME = [ … ]`: under NAME a list of
 * objects with `path`, `narHash`, `narSize`, `references`. Without NAME the file must hold exactly
 * one such list.
 */
export function parseAttrsJson(text: string, file: string, name?: string): RefGraph {
  const c: RecordCollector = new RecordCollector(file);
  const doc = parseJson(text, file);
  if (!isObj(doc)) c.fail('', 'expected a JSON object');
  const looksLikeGraph = (v: unknown): boolean => Array.isArray(v) && v.length > 0 && isObj(v[0]) && 'references' in v[0];
  let key = name;
  if (key === undefined) {
    const candidates = Object.keys(doc).filter((k) => looksLikeGraph(doc[k]));
    if (candidates.length !== 1) {
      c.fail(
        '',
        candidates.length === 0
          ? 'it holds no exportReferencesGraph list'
          : `it holds several graphs (${candidates.join(', ')}); name one as attrs-json:FILE#NAME`,
      );
    }
    key = itemAt(candidates, 0);
  }
  const list = doc[key];
  if (!Array.isArray(list)) c.fail('', `'${key}' is ${list === undefined ? 'missing' : 'not a list'}`);
  list.forEach((v, i) => {
    const where = `${key}[${i}]`;
    if (!isObj(v)) c.fail(where, 'expected an object');
    c.add({
      path: field(c, v, 'path', where, isString, 'a string'),
      narHash: field(c, v, 'narHash', where, isString, 'a string'),
      narSize: field(c, v, 'narSize', where, isCount, 'a size'),
      references: field(c, v, 'references', where, isStringList, 'a list of paths'),
      where,
    });
  });
  return c.finish();
}
