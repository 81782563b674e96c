import { createRequire } from 'node:module';
import type * as JsoncParser from 'jsonc-parser';
import { NixSealError } from '../errors.js';
import type { RefGraph } from '../graph/ref-graph.js';
import { RecordCollector } from './records.js';

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
 * `nix path-info --json --recursive` output: a list of objects with `path` (Nix ≤ 2.18) or an
 * object keyed by path (2.19+; a null value marks an invalid path).
 */
export function parsePathInfoJson(text: string, file: string): RefGraph {
  const c: RecordCollector = new RecordCollector(file);
  const doc = parseJson(text, file);
  const entries: [string | undefined, unknown, string][] = Array.isArray(doc)
    ? doc.map((v, i) => [undefined, v, `entry ${i + 1}`])
    : isObj(doc)
      ? Object.entries(doc).map(([k, v]) => [k, v, `entry '${k}'`])
      : c.fail('', 'expected a JSON list or object of path infos');
  for (const [key, v, where] of entries) {
    if (v === null && key !== undefined) c.fail(where, 'the path is not valid in the store it came from');
    if (!isObj(v)) c.fail(where, 'expected an object');
    if (v.valid === false) c.fail(where, 'the path is not valid in the store it came from');
    const p = key ?? field(c, v, 'path', where, isString, 'a string');
    c.add({
      path: p,
      narHash: field(c, v, 'narHash', where, isString, 'a string'),
      narSize: field(c, v, 'narSize', where, isCount, 'a size'),
      deriver: isString(v.deriver) ? v.deriver : undefined,
      references: field(c, v, 'references', where, isStringList, 'a list of paths'),
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
    key = candidates[0]!;
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
