/**
 * Writes `nix-seal report`'s page: one self-contained HTML file (style, script and data inline; a
 * Content-Security-Policy that allows no request at all), so it works from file://, attached to
 * a CI run or an e-mail. The hooks for scripts are static HTML (they need no JavaScript): every
 * kept path has an element with data-path, every seal an element with data-seal holding one
 * data-erased element per path it erased (with data-verdict after an audit).
 */
import prettyBytes from 'pretty-bytes';
import { shortestChain } from '../graph/why.js';
import { KEPT, SEVERAL_SEALS, type ReportData } from './report-data.js';
import { layoutTreemap, type TreemapCell } from './treemap.js';
import { REPORT_SCRIPT } from './report-script.js';
import { REPORT_STYLE } from './report-style.js';
import { f64At, itemAt } from '../checked-index.js';

const W = 1200;
const H = 640;

const ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
const human = (n: number | null): string => (n === null ? 'size unknown' : prettyBytes(n, { binary: true }));
const bytes = (n: number | null): string => (n === null ? 'unknown' : `${n.toLocaleString('en-US')} bytes`);
const plural = (n: number, w: string): string => `${n.toLocaleString('en-US')} ${w}${n === 1 ? '' : 's'}`;

function statusClass(status: number): string {
  return status === KEPT ? 'st-k' : status === SEVERAL_SEALS ? 'st-x' : `st-s${status % 12}`;
}

/** Text inside a block of width w, cut to what fits (about 6.2 units a character at 11px). */
function fit(text: string, w: number): string | undefined {
  const max = Math.floor((w - 6) / 6.2);
  if (max < 4) return undefined;
  return text.length <= max ? text : text.slice(0, max - 1) + '…';
}

function shortName(name: string): string {
  return /^[0-9a-z]{32}-/.test(name) ? name.slice(33) : name;
}

function treemapSvg(d: ReportData, cells: TreemapCell[]): string {
  const r = (x: number): string => (Math.round(x * 10) / 10).toString();
  const out: string[] = [];
  for (const c of cells) {
    const at = `x="${r(c.x)}" y="${r(c.y)}" width="${r(c.w)}" height="${r(c.h)}"`;
    if (c.kind === 'rest') out.push(`<rect class="rest" ${at} data-rest="${c.count}" data-rest-of="${c.id}"/>`);
    else if (c.kind === 'group') out.push(`<rect class="group" ${at}/>`);
    else out.push(`<rect class="${statusClass(itemAt(d.status, c.id))}${c.kind === 'subtree' ? ' subtree' : ''}" ${at} data-i="${c.id}" data-kind="${c.kind}"/>`);
  }
  for (const c of cells) {
    if (c.kind === 'group' || c.kind === 'rest' || c.h < 14) continue;
    const label = fit(shortName(itemAt(d.names, c.id)), c.w);
    if (label !== undefined) out.push(`<text x="${r(c.x + 3)}" y="${r(c.y + 12)}">${esc(label)}</text>`);
  }
  return out.join('');
}

function legend(d: ReportData, hasRest: boolean): string {
  const items: string[] = [];
  items.push(`<li><span class="sw st-k" aria-hidden="true"></span>kept: ${plural(d.info.sealed.count, 'path')}, ${human(d.info.sealed.narSize)} <span class="muted">(${bytes(d.info.sealed.narSize)})</span></li>`);
  let exclusive = 0;
  let exclusiveCount = 0;
  d.info.seals.forEach((s, si) => {
    exclusive += s.exclusive.narSize ?? NaN;
    exclusiveCount += s.exclusive.count;
    items.push(
      `<li><span class="sw st-s${si % 12}" aria-hidden="true"></span>erased only by <code>${esc(shortName(s.path.slice(d.storeDir.length + 1)))}</code>: ` +
        `${plural(s.exclusive.count, 'path')}, ${human(s.exclusive.narSize)} <span class="muted">(${bytes(s.exclusive.narSize)}; ${human(s.erased.narSize)} erased in total)</span></li>`,
    );
  });
  const severalCount = d.info.erased.count - exclusiveCount;
  if (severalCount > 0) {
    const several = d.info.erased.narSize === null || Number.isNaN(exclusive) ? null : d.info.erased.narSize - exclusive;
    items.push(`<li><span class="sw st-x" aria-hidden="true"></span>erased by several seals: ${plural(severalCount, 'path')}, ${human(several)} <span class="muted">(${bytes(several)})</span></li>`);
  }
  if (hasRest) items.push('<li><span class="sw rest-sw" aria-hidden="true"></span>paths too small to draw one by one, together</li>');
  return `<ul class="legend" id="legend">${items.join('')}</ul>`;
}

/** The treemap's text alternative: the biggest blocks, as a table. */
function treemapText(d: ReportData): string {
  // A typed copy for f64At: itemAt (fed every kind of array) in this 190k-path sort was measurably
  // slower on the whole page (BENCHMARKS.md, "Figures behind code choices").
  const added = Float64Array.from(d.added);
  const top = d.idom
    .map((dom, i) => ({ dom, i }))
    .filter((x) => x.dom !== -2)
    .sort((a, b) => f64At(added, b.i) - f64At(added, a.i) || a.i - b.i)
    .slice(0, 30);
  const rows = top
    .map(({ dom, i }) => {
      return `<tr><td><code>${esc(itemAt(d.names, i))}</code></td><td class="num">${human(itemAt(d.added, i))}</td><td class="num">${human(itemAt(d.narSize, i))}</td><td>${dom >= 0 ? `<code>${esc(shortName(itemAt(d.names, dom)))}</code>` : 'the roots'}</td><td>${statusWords(d, i)}</td></tr>`;
    })
    .join('');
  return `<details><summary>The treemap as text: the ${top.length} biggest blocks</summary><table class="summary"><thead><tr><th>path</th><th>with what it dominates</th><th>own NAR size</th><th>kept in place by</th><th>status</th></tr></thead><tbody>${rows}</tbody></table></details>`;
}

function statusWords(d: ReportData, i: number): string {
  const s = itemAt(d.status, i);
  if (s === KEPT) return 'kept';
  const by = d.seals.filter((x) => x.erased.includes(i));
  return `erased by ${by.map((x) => esc(shortName(itemAt(d.names, x.id)))).join(', ')}`;
}

function sealCards(d: ReportData): string {
  if (d.seals.length === 0) return '<p>No seal was reached from the roots: nothing is erased.</p>';
  const path = (i: number): string => `${d.storeDir}/${itemAt(d.names, i)}`;
  return `<div class="cards">${d.seals
    .map((s, si) => {
      const info = itemAt(d.info.seals, si);
      const audit = d.audit?.seals.find((a) => a.path === info.path);
      const byPath = new Map(audit?.erased.map((e) => [e.path, e]) ?? []);
      const counts = audit ? `<p>audit: ${d.verdicts.map((v) => `<span class="verdict v-${esc(v)}">${esc(v)}</span> ${audit.counts[v as keyof typeof audit.counts] ?? 0}`).join(' ')}</p>` : '';
      const images = audit ? audit.images.map((im) => `<li>${esc(im.nature)}: <code>${esc(im.file)}</code> ${esc(im.description ?? '')}</li>`).join('') : '';
      const problems = audit ? audit.problems.map((p) => `<li>could not read <code>${esc(p.file)}</code>: ${esc(p.why)}</li>`).join('') : '';
      const items = s.erased
        .map((e) => {
          const p = path(e);
          const a = byPath.get(p);
          if (a === undefined) return `<li data-erased="${esc(p)}"><code>${esc(itemAt(d.names, e))}</code></li>`;
          const ev = a.evidence
            .map((x) => `<li>${esc(x.file)}${x.offset !== null ? ` @${x.offset}` : ''}: ${esc(x.what)}${x.context ? ` — <code>${esc(x.context)}</code>` : ''}</li>`)
            .join('');
          const via = a.via && a.via.length > 0 ? `<li>erased because ${a.via.map((v) => `<code>${esc(v)}</code>`).join(', ')} refers to it</li>` : '';
          const hits = a.hits > 0 ? ` <span class="muted">(${plural(a.hits, 'occurrence')} of its hash)</span>` : '';
          return `<li data-erased="${esc(p)}" data-verdict="${esc(a.verdict)}"><span class="verdict v-${esc(a.verdict)}">${esc(a.verdict)}</span> <code>${esc(itemAt(d.names, e))}</code>${hits}${ev || via ? `<ul class="evidence">${ev}${via}</ul>` : ''}</li>`;
        })
        .join('');
      return (
        `<article class="card" data-seal="${esc(info.path)}"><h3><span class="sw st-s${si % 12}" aria-hidden="true"></span><code>${esc(info.path)}</code></h3>` +
        `<p>NAR size ${human(info.narSize)}. Erases <strong>${plural(info.erased.count, 'path')}, ${human(info.erased.narSize)}</strong> in total ` +
        `(<span data-bytes="erased">${bytes(info.erased.narSize)}</span>); <strong>${plural(info.exclusive.count, 'path')}, ${human(info.exclusive.narSize)}</strong> only through it (<span data-bytes="exclusive">${bytes(info.exclusive.narSize)}</span>).</p>` +
        counts +
        (images || problems ? `<ul class="muted">${images}${problems}</ul>` : '') +
        `<details${s.erased.length <= 12 ? ' open' : ''}><summary>${plural(s.erased.length, 'erased path')}</summary><ul class="erased">${items}</ul></details></article>`
      );
    })
    .join('')}</div>`;
}

function summary(d: ReportData): string {
  const i = d.info;
  const row = (label: string, key: string, a: { count: number; narSize: number | null }): string =>
    `<tr data-total="${key}" data-count="${a.count}" data-nar-size="${a.narSize ?? ''}"><th>${label}</th><td class="num">${plural(a.count, 'path')}</td><td class="num">${human(a.narSize)}</td><td class="num muted">${bytes(a.narSize)}</td></tr>`;
  return `<table class="summary"><tbody>${row('full closure', 'full', i.full)}${row('sealed closure', 'sealed', i.sealed)}${row('erased', 'erased', i.erased)}</tbody></table>`;
}

/** The whole page. Deterministic: the same data gives the same bytes (no dates, no random ids). */
export function reportHtml(d: ReportData): string {
  const cells = layoutTreemap({ idom: d.idom, own: d.narSize.map((x) => x ?? NaN), dominated: d.added }, { x: 0, y: 0, w: W, h: H }, { minArea: 150, maxCells: 2000, pad: 2, minCellArea: 60 });
  const title = d.info.roots.length === 1 ? shortName(itemAt(d.info.roots, 0).slice(d.storeDir.length + 1)) : `${d.info.roots.length} roots`;
  // `<` cannot end the script element when escaped; JSON.parse reads \u003c back.
  const json = JSON.stringify(d).replace(/</g, '\\u003c');
  const warnings = d.info.warnings.length ? `<ul class="muted">${d.info.warnings.map((w) => `<li>warning: ${esc(w.message)}</li>`).join('')}</ul>` : '';
  const keptHooks = d.keptOrder.map((i) => `<li data-path="${esc(d.storeDir + '/' + itemAt(d.names, i))}"></li>`).join('\n');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<link rel="icon" href="data:,">
<meta name="generator" content="nix-seal report">
<title>nix-seal report: ${esc(title)}</title>
<style>${REPORT_STYLE}</style>
</head>
<body>
<header>
<h1>nix-seal report: ${esc(title)}</h1>
<p class="muted">Roots: ${d.info.roots.map((r) => `<code data-root="${esc(r)}">${esc(r)}</code>`).join(', ')}<br>
Store: <code id="source">${esc(d.source)}</code> (paths under <code>${esc(d.storeDir)}</code>)${d.audit ? '; with the containment audit' : ''}</p>
${warnings}
</header>
<main>
<section id="summary" aria-labelledby="h-summary"><h2 id="h-summary">Summary</h2>${summary(d)}
<p class="muted">Numbers as <code>nix-seal info --json</code> gives them. The <em>full closure</em> is everything the roots reach (<code>nix-store -qR</code>); the <em>sealed closure</em> stops at seals (a reached seal is kept, its references are followed only if something unsealed needs them); what is in the first and not the second is <em>erased</em>.</p></section>
<section id="map" aria-labelledby="h-map"><h2 id="h-map">Treemap of the full closure by NAR size</h2>
<p>Each block is a store path; its area is its NAR size plus the blocks nested in it. A path is nested under its <strong>immediate dominator</strong>: the closest path that every reference chain from the roots to it passes through. So a path needed from several places appears once, under the path that keeps it in the closure (the roots themselves when no single path does), and a block's area is what would leave the closure with that path. Colour: kept, or erased by one seal (its colour) or by several.${cells.some((c) => c.kind === 'rest') ? ' Paths too small to draw one by one share a grey block.' : ''}</p>
${legend(d, cells.some((c) => c.kind === 'rest'))}
<svg class="treemap" viewBox="0 0 ${W} ${H}" role="img" aria-labelledby="map-title map-desc" preserveAspectRatio="xMidYMid meet"><title id="map-title">Treemap of ${plural(d.info.full.count, 'path')}, ${human(d.info.full.narSize)}</title><desc id="map-desc">Kept: ${human(d.info.sealed.narSize)}; erased: ${human(d.info.erased.narSize)}. The table below lists the biggest blocks as text.</desc>${treemapSvg(d, cells)}</svg>
${treemapText(d)}
</section>
<section id="seals" aria-labelledby="h-seals"><h2 id="h-seals">Seals</h2>
${d.audit ? `<p class="muted">Audit verdicts: ${d.verdicts.map((v) => `<span class="verdict v-${esc(v)}">${esc(v)}</span>`).join(' ')} (see <code>nix-seal audit</code> in the README).</p>` : ''}
${sealCards(d)}</section>
<section id="paths" aria-labelledby="h-paths"><h2 id="h-paths">All paths</h2>
<div class="controls"><label>Search <input type="search" id="search" placeholder="name or hash" aria-controls="list" autocomplete="off"></label><span id="count" aria-live="polite"></span>
<span class="muted">↑ ↓ PgUp PgDn Home End move in the list; Enter shows why. <em>Closure</em>: NAR size of the path's full closure; <em>added</em>: what only it keeps (its block in the treemap).${d.closureSizesPartial ? ` Closure sizes shown as … were not computed when the page was written (too many paths): selecting a path computes its own.` : ''}</span></div>
<div class="paths-grid"><div>
<div class="head" role="toolbar" aria-label="sort the list" aria-controls="list"><button data-key="name">name</button><button class="num" data-key="nar">NAR size</button><button class="num" data-key="closure">closure</button><button class="num" data-key="added">added</button><button data-key="status">status</button></div>
<div id="list" role="listbox" tabindex="0" aria-label="Store paths of the full closure"><div id="list-inner"></div></div></div>
<aside id="detail" aria-live="polite"><p class="muted">Select a path to see why it is in the closure, or which seal cut it off.</p></aside></div>
</section>
<section id="kept" aria-labelledby="h-kept"><h2 id="h-kept">Kept paths</h2>
<details><summary>${plural(d.keptOrder.length, 'path')} of the sealed closure, dependencies first (as <code>nix-seal closure</code> prints them)</summary>
<ol class="hooks" aria-label="kept store paths">
${keptHooks}
</ol></details></section>
</main>
<script type="application/json" id="report-data">${json}</script>
<script>${shortestChain.toString()}
${REPORT_SCRIPT}</script>
</body>
</html>
`;
}
