import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Analysis } from '../analysis.js';
import { sealedClosure } from '../graph/closure.js';
import { asPathId, buildRefGraph } from '../graph/ref-graph.js';
import { reportData } from './report-data.js';
import { VERDICTS } from '../seal/audit.js';
import type { StorePath } from '../store/store-path.js';
import { reportHtml } from './report-html.js';

const P = (h: string, name: string): StorePath => `/nix/store/${h.repeat(32)}-${name}` as StorePath;

/** The seed scenario's shape: launcher → qemu, iso; iso → system → bash, linux; glibc shared. */
function seedAnalysis(): Analysis {
  const paths = [P('a', 'start-vm'), P('b', 'qemu'), P('c', 'glibc'), P('d', 'nixos.iso'), P('f', 'system'), P('g', 'bash'), P('h', 'linux')];
  const e: [number, number][] = [[0, 1], [0, 3], [1, 2], [3, 4], [3, 5], [3, 6], [3, 2], [4, 5], [4, 6], [5, 2]];
  const g = buildRefGraph({ storeDir: '/nix/store', paths, narSize: [1, 2, 3, 4, 5, 6, 7], edgeFrom: e.map((x) => x[0]), edgeTo: e.map((x) => x[1]), edgeCount: e.length });
  const seals = new Uint8Array(7);
  seals[3] = 1;
  const source = { description: 'registration file </script><b>x', storeDir: g.storeDir, realStoreDir: g.storeDir, loadClosure: () => g };
  return { source, graph: g, roots: [asPathId(0)], seals, closure: sealedClosure(g, [asPathId(0)], seals), warnings: [{ code: 'WSEALNOTHING' as const, message: 'a <warning> & "quote"' }], detected: [] };
}

test('the page: hooks, seal cards with verdicts, data that survives </script>, nothing external, deterministic', () => {
  const a = seedAnalysis();
  const g = a.graph;
  const erased = a.closure.seals[0]!.erased.map((i) => g.paths[i]!);
  const audit = {
    roots: [g.paths[0]!],
    quick: false,
    seals: [{ path: g.paths[3]!, images: [], problems: [], counts: { verified: 0, contained: 2, differs: 0, mentioned: 0, unverified: 0, missing: 1 },
      erased: erased.map((p, k) => ({ path: p, verdict: k === 0 ? ('missing' as const) : ('contained' as const), evidence: [], hits: 0, ...(k === 0 ? { via: [g.paths[3]!] } : {}) })) }],
    summary: { verified: 0, contained: 2, differs: 0, mentioned: 0, unverified: 0, missing: 1 },
  };
  const d = reportData(a, { audit, verdicts: VERDICTS });
  const html = reportHtml(d);
  assert.equal(reportHtml(reportData(a, { audit, verdicts: VERDICTS })), html, 'deterministic');
  const hooks = [...html.matchAll(/data-path="([^"]*)"/g)].map((m) => m[1]);
  assert.deepEqual(hooks, d.keptOrder.map((i) => g.paths[i]));
  const card = html.slice(html.indexOf('data-seal='), html.indexOf('</article>'));
  assert.ok(card.startsWith(`data-seal="${g.paths[3]}"`));
  assert.deepEqual([...card.matchAll(/data-erased="([^"]*)" data-verdict="([^"]*)"/g)].map((m) => [m[1], m[2]]), erased.map((p, k) => [p, k === 0 ? 'missing' : 'contained']));
  // The data is one JSON inside a script element that no string in it can close.
  const start = html.indexOf('<script type="application/json" id="report-data">') + '<script type="application/json" id="report-data">'.length;
  const body = html.slice(start, html.indexOf('</script>', start));
  assert.deepEqual(JSON.parse(body), d);
  assert.ok(!html.includes('<b>x'), 'escaped');
  assert.ok(html.includes('a &lt;warning&gt; &amp; &quot;quote&quot;'));
  // Nothing that would make the browser fetch anything.
  assert.doesNotMatch(html, /\b(src|href)="(?!#|data:)/);
  assert.doesNotMatch(html, /https?:\/\//);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
  // The why-chain code is the library's own.
  assert.match(html, /function shortestChain\(g, from, to, blocked\)/);
});
