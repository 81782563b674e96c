/**
 * Software bills of materials of a sealed closure, as CycloneDX 1.6 and SPDX 2.3 JSON: every kept
 * path with its kept references, and per seal what it embeds (the paths it erased, with their audit
 * verdicts when known). Pure: the CLI gathers the analysis, the verdicts and the time; nothing
 * here reads the clock or the disk, so the same input always gives the same bytes.
 */
import { createHash } from 'node:crypto';
import type { Analysis } from '../analysis.js';
import { asPathId, referencesOf } from '../graph/ref-graph.js';
import { parseHash } from '../store/hash.js';
import { baseNameOf, hashPartOf, nameOf, type StorePath } from '../store/store-path.js';
import { f64At, itemAt, u8At } from '../checked-index.js';

export type SbomFormat = 'cyclonedx' | 'spdx';
export const SBOM_FORMATS: readonly SbomFormat[] = ['cyclonedx', 'spdx'];

export interface SbomPath {
  path: string;
  /** SHA-256 of the NAR, lowercase hex; undefined where the source does not know the narHash. */
  sha256?: string;
  narSize: number | null;
}

export interface SbomKept extends SbomPath {
  /** Kept references, sorted, without the path itself. */
  references: string[];
}

export interface SbomErased extends SbomPath {
  /** The audit verdict (an opaque string: verdicts are added over time). */
  verdict?: string;
}

export interface SbomSeal {
  path: string;
  /** Its erased paths, sorted. */
  erased: SbomErased[];
}

/** Everything an SBOM says, sorted by path. */
export interface SbomInput {
  roots: string[];
  kept: SbomKept[];
  seals: SbomSeal[];
  tool: { name: string; version: string };
  /** ISO 8601 UTC to the second (`2026-01-02T03:04:05Z`); absent: no timestamp (deterministic output). */
  timestamp?: string;
}

/**
 * Splits a derivation name into name and version the way Nix does (`builtins.parseDrvName`,
 * DrvName in Nix's names.cc): the version starts after the first '-' that is followed by a
 * character that is not an ASCII letter. `python3.11-requests-2.31.0` → python3.11-requests, 2.31.0.
 */
export function parseDrvName(s: string): { name: string; version: string } {
  for (let i = 0; i + 1 < s.length; i++) {
    if (s.charCodeAt(i) !== 45 /* - */) continue;
    const c = s.charCodeAt(i + 1);
    const letter = (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    if (!letter) return { name: s.slice(0, i), version: s.slice(i + 1) };
  }
  return { name: s, version: '' };
}

/** A narHash in any encoding Nix writes, as lowercase hex SHA-256; undefined when unknown or not SHA-256. */
export function sha256Hex(narHash: string | undefined): string | undefined {
  if (narHash === undefined) return undefined;
  const h = parseHash(narHash, 'sha256');
  return h.algo === 'sha256' ? Buffer.from(h.digest).toString('hex') : undefined;
}

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The SBOM's content from an analysis: kept paths (ids are in byte-wise path order, so the lists
 * come out sorted), each reached seal's erased paths, and `verdicts` (seal → erased path → verdict).
 */
export function sbomInput(
  a: Analysis,
  opts: { tool: { name: string; version: string }; verdicts?: ReadonlyMap<string, ReadonlyMap<string, string>>; timestamp?: string },
): SbomInput {
  const g = a.graph;
  const { kept } = a.closure;
  const info = (id: number): SbomPath => {
    const sha256 = sha256Hex(g.narHash[id]);
    const n = f64At(g.narSize, id);
    return { path: itemAt(g.paths, id), ...(sha256 !== undefined ? { sha256 } : {}), narSize: Number.isNaN(n) ? null : n };
  };
  const keptList: SbomKept[] = [];
  for (let i = 0; i < g.paths.length; i++) {
    const id = asPathId(i);
    if (!kept[id]) continue;
    const refs = Array.from(referencesOf(g, id)).filter((r) => kept[r] && r !== id);
    keptList.push({ ...info(id), references: refs.map((r) => itemAt(g.paths, r)) });
  }
  const seals = a.closure.seals
    .map((s): SbomSeal => {
      const path = itemAt(g.paths, s.seal);
      const v = opts.verdicts?.get(path);
      return {
        path,
        erased: [...s.erased].sort((x, y) => x - y).map((e) => {
          const verdict = v?.get(itemAt(g.paths, e));
          return { ...info(e), ...(verdict !== undefined ? { verdict } : {}) };
        }),
      };
    })
    .sort((x, y) => byString(x.path, y.path));
  return {
    roots: a.roots.map((r) => itemAt(g.paths, r)).sort(byString),
    kept: keptList,
    seals,
    tool: opts.tool,
    ...(opts.timestamp !== undefined ? { timestamp: opts.timestamp } : {}),
  };
}

/** A UUID (version 5 layout) from the SHA-256 of `text`: the same document always gets the same one. */
function contentUuid(text: string): string {
  const b = createHash('sha256').update(text).digest();
  b[6] = (u8At(b, 6) & 0x0f) | 0x50;
  b[8] = (u8At(b, 8) & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Name and version of a store path's name, Nix's way. */
function nameVersion(p: string): { name: string; version: string } {
  return parseDrvName(nameOf(p as StorePath));
}

// ---------------------------------------------------------------------------------------------
// CycloneDX 1.6

interface CdxProperty {
  name: string;
  value: string;
}

interface CdxComponent {
  type: 'application';
  'bom-ref': string;
  name: string;
  version?: string;
  hashes?: { alg: 'SHA-256'; content: string }[];
  properties: CdxProperty[];
  components?: CdxComponent[];
}

/** The bom-ref of an erased path inside a seal: unique even when several seals erased the path. */
export const erasedBomRef = (seal: string, path: string): string => `${seal}!${path}`;

function cdxComponent(p: SbomPath, ref: string, extra: CdxProperty[]): CdxComponent {
  const { name, version } = nameVersion(p.path);
  const props: CdxProperty[] = [];
  if (p.narSize !== null) props.push({ name: 'nix:narSize', value: String(p.narSize) });
  props.push({ name: 'nix:storePath', value: p.path }, ...extra);
  return {
    type: 'application',
    'bom-ref': ref,
    name,
    ...(version !== '' ? { version } : {}),
    ...(p.sha256 !== undefined ? { hashes: [{ alg: 'SHA-256' as const, content: p.sha256 }] } : {}),
    properties: props,
  };
}

/**
 * CycloneDX 1.6: one component per kept path (bom-ref = the store path); a seal's component nests
 * its erased paths (bom-ref `<seal>!<path>`, `nix-seal:verdict` when audited); `dependencies`
 * from the kept references. serialNumber is a UUID of the content, so it is deterministic too.
 */
export function cycloneDx(input: SbomInput): object {
  const sealOf = new Map(input.seals.map((s) => [s.path, s]));
  const components = input.kept.map((k) => {
    const seal = sealOf.get(k.path);
    const c = cdxComponent(k, k.path, seal ? [{ name: 'nix-seal:seal', value: 'true' }] : []);
    if (seal) {
      c.components = seal.erased.map((e) =>
        cdxComponent(e, erasedBomRef(seal.path, e.path), [
          { name: 'nix-seal:erasedBy', value: seal.path },
          ...(e.verdict !== undefined ? [{ name: 'nix-seal:verdict', value: e.verdict }] : []),
        ]),
      );
    }
    return c;
  });
  const bom = {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: '',
    version: 1,
    metadata: {
      ...(input.timestamp !== undefined ? { timestamp: input.timestamp } : {}),
      tools: { components: [{ type: 'application', name: input.tool.name, version: input.tool.version }] },
      properties: input.roots.map((r) => ({ name: 'nix-seal:root', value: r })),
    },
    components,
    dependencies: input.kept.map((k) => ({ ref: k.path, dependsOn: k.references })),
  };
  bom.serialNumber = `urn:uuid:${contentUuid(JSON.stringify(bom))}`;
  return bom;
}

// ---------------------------------------------------------------------------------------------
// SPDX 2.3

/** SPDX requires creationInfo.created: without a timestamp, the epoch stands in (deterministic output). */
export const SPDX_FIXED_CREATED = '1970-01-01T00:00:00Z';

/** An SPDX element id for a store path: unique through its hash part, only [A-Za-z0-9.-]. */
export function spdxId(p: string): string {
  return `SPDXRef-${hashPartOf(p as StorePath)}-${nameOf(p as StorePath).replace(/[^A-Za-z0-9.-]/g, '-')}`;
}

interface SpdxRelationship {
  spdxElementId: string;
  relationshipType: 'DESCRIBES' | 'DEPENDS_ON' | 'CONTAINS';
  relatedSpdxElement: string;
  comment?: string;
}

/**
 * SPDX 2.3: one package per kept or erased path (the store path as packageFileName, the narSize
 * in the comment), DESCRIBES for the roots, DEPENDS_ON for kept references, CONTAINS from a seal
 * to each path it erased (the audit verdict in the relationship's comment: it belongs to the pair,
 * as two seals may erase one path). documentNamespace is derived from the content.
 */
export function spdx(input: SbomInput): object {
  const all = new Map<string, { p: SbomPath; seal: boolean }>();
  const sealPaths = new Set(input.seals.map((s) => s.path));
  for (const k of input.kept) all.set(k.path, { p: k, seal: sealPaths.has(k.path) });
  for (const s of input.seals) for (const e of s.erased) if (!all.has(e.path)) all.set(e.path, { p: e, seal: false });
  const packages = [...all.keys()].sort(byString).map((path) => {
    const { p, seal } = all.get(path)!;
    const { name, version } = nameVersion(path);
    const notes = [...(p.narSize !== null ? [`nix:narSize=${p.narSize}`] : []), ...(seal ? ['nix-seal:seal=true'] : [])];
    return {
      SPDXID: spdxId(path),
      name,
      ...(version !== '' ? { versionInfo: version } : {}),
      packageFileName: path,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      ...(p.sha256 !== undefined ? { checksums: [{ algorithm: 'SHA256', checksumValue: p.sha256 }] } : {}),
      ...(notes.length > 0 ? { comment: notes.join('\n') } : {}),
    };
  });
  const relationships: SpdxRelationship[] = [
    ...input.roots.map((r): SpdxRelationship => ({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: spdxId(r) })),
    ...input.kept.flatMap((k) =>
      k.references.map((r): SpdxRelationship => ({ spdxElementId: spdxId(k.path), relationshipType: 'DEPENDS_ON', relatedSpdxElement: spdxId(r) })),
    ),
    ...input.seals.flatMap((s) =>
      s.erased.map(
        (e): SpdxRelationship => ({
          spdxElementId: spdxId(s.path),
          relationshipType: 'CONTAINS',
          relatedSpdxElement: spdxId(e.path),
          ...(e.verdict !== undefined ? { comment: `nix-seal:verdict=${e.verdict}` } : {}),
        }),
      ),
    ),
  ];
  const rootNames = input.roots.map((r) => nameOf(r as StorePath));
  const doc = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `nix-seal sbom of ${rootNames.join(' ')}`,
    documentNamespace: '',
    creationInfo: {
      created: input.timestamp ?? SPDX_FIXED_CREATED,
      creators: [`Tool: ${input.tool.name}-${input.tool.version}`],
    },
    packages,
    relationships,
  };
  const first = input.roots[0] !== undefined ? baseNameOf(input.roots[0] as StorePath) : 'empty';
  doc.documentNamespace = `https://nix-seal.invalid/spdx/${first}-${contentUuid(JSON.stringify(doc))}`;
  return doc;
}

/** The document as written: two-space JSON and a final newline. */
export function renderSbom(format: SbomFormat, input: SbomInput): string {
  return JSON.stringify(format === 'spdx' ? spdx(input) : cycloneDx(input), null, 2) + '\n';
}
