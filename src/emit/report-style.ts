/** The report page's style sheet (inlined into the HTML): light and dark schemes, no external fonts; 12 seal colours (st-s0…st-s11, reused from the 13th seal on). */
export const REPORT_STYLE = `
:root { color-scheme: light dark; --bg: #fdfdfc; --fg: #1b1d21; --muted: #5b616b; --line: #d6d9de; --panel: #f2f3f5;
  --kept: #8aa4c8; --several: #9c9c9c; --focus: #0b62d6; --sel: #dbe8fb; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #15171b; --fg: #e4e6ea; --muted: #a3a9b3; --line: #3a3f47; --panel: #1f2227;
    --kept: #4f6f9c; --several: #6d6d6d; --focus: #6aa8ff; --sel: #253a58; }
}
* { box-sizing: border-box; }
body { margin: 0; padding: 1rem 1.5rem 3rem; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
h1 { font-size: 1.5rem; margin: 0 0 .25rem; } h2 { font-size: 1.15rem; margin: 1.6rem 0 .5rem; }
h3 { font-size: 1rem; margin: 0 0 .4rem; word-break: break-all; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
.muted { color: var(--muted); }
table.summary { border-collapse: collapse; } .summary th, .summary td { padding: .2rem .8rem .2rem 0; text-align: left; }
.summary td.num { text-align: right; font-variant-numeric: tabular-nums; }
.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4rem 1.2rem; margin: .5rem 0; }
.sw { display: inline-block; width: .9em; height: .9em; border-radius: 2px; vertical-align: -.1em; margin-right: .35em;
  border: 1px solid rgba(0,0,0,.25); }
.st-k { fill: var(--kept); background: var(--kept); } .st-x { fill: var(--several); background: var(--several); }
.st-s0 { fill: #e07b39; background: #e07b39; } .st-s1 { fill: #4aa564; background: #4aa564; }
.st-s2 { fill: #c1549b; background: #c1549b; } .st-s3 { fill: #d4b13c; background: #d4b13c; }
.st-s4 { fill: #3fa7b5; background: #3fa7b5; } .st-s5 { fill: #8e6bd1; background: #8e6bd1; }
.st-s6 { fill: #b5653f; background: #b5653f; } .st-s7 { fill: #6c9a2e; background: #6c9a2e; }
.st-s8 { fill: #d9534f; background: #d9534f; } .st-s9 { fill: #2f8fd8; background: #2f8fd8; }
.st-s10 { fill: #a0a030; background: #a0a030; } .st-s11 { fill: #d47fc4; background: #d47fc4; }
svg.treemap { width: 100%; height: auto; display: block; border: 1px solid var(--line); background: var(--panel); }
svg.treemap rect { stroke: var(--bg); stroke-width: .6; cursor: pointer; }
svg.treemap rect.group { fill: none; stroke: var(--fg); stroke-opacity: .35; stroke-width: 1; pointer-events: none; }
svg.treemap rect:hover { fill-opacity: .75; }
svg.treemap rect.subtree { fill-opacity: .8; }
svg.treemap rect.rest { fill: var(--line); cursor: default; }
.rest-sw { background: var(--line); }
svg.treemap text { font: 11px system-ui, sans-serif; fill: var(--fg); pointer-events: none; }
.cards { display: grid; align-items: start; grid-template-columns: repeat(auto-fill, minmax(22rem, 1fr)); gap: .8rem; }
.card { border: 1px solid var(--line); border-left: 6px solid var(--line); border-radius: 4px; padding: .6rem .8rem; background: var(--panel); }
.card ul.erased { padding-left: 1.1rem; margin: .3rem 0; } .card li { margin: .15rem 0; word-break: break-all; }
.verdict { display: inline-block; min-width: 6.5em; font-size: 12px; font-weight: 600; padding: 0 .3em; border-radius: 3px; border: 1px solid var(--line); }
.v-contained { color: #1d7a3a; } .v-verified { color: #1d7a3a; } .v-mentioned, .v-differs { color: #b0501a; }
.v-unverified { color: #8a6d00; } .v-missing { color: #c0262d; }
@media (prefers-color-scheme: dark) { .v-contained, .v-verified { color: #6fd08e; } .v-mentioned, .v-differs { color: #f0a070; }
  .v-unverified { color: #e3c75a; } .v-missing { color: #ff7b80; } }
ul.evidence { font-size: 12px; color: var(--muted); padding-left: 1rem; }
.controls { display: flex; gap: .8rem; align-items: center; flex-wrap: wrap; margin-bottom: .4rem; }
input[type=search] { font: inherit; padding: .3rem .5rem; min-width: 20rem; background: var(--bg); color: var(--fg); border: 1px solid var(--line); border-radius: 3px; }
.paths-grid { display: grid; grid-template-columns: minmax(0, 3fr) minmax(18rem, 2fr); gap: 1rem; }
@media (max-width: 900px) { .paths-grid { grid-template-columns: 1fr; } }
.row, .head { display: grid; grid-template-columns: minmax(0, 1fr) 6.5em 6.5em 6.5em 9em; gap: .5rem; align-items: center; padding: 0 .4rem; }
.head { border-bottom: 1px solid var(--line); font-weight: 600; }
.head button { font: inherit; font-weight: 600; background: none; border: 0; color: inherit; padding: .3rem 0; cursor: pointer; text-align: left; }
.head button[data-sorted=asc]::after { content: ' ▲'; } .head button[data-sorted=desc]::after { content: ' ▼'; }
.head button.num, .row .num { text-align: right; font-variant-numeric: tabular-nums; }
#list { position: relative; height: 28rem; overflow-y: auto; border: 1px solid var(--line); border-top: 0; outline-offset: -2px; }
#list:focus-visible { outline: 2px solid var(--focus); }
.row { position: absolute; left: 0; right: 0; height: 24px; cursor: pointer; white-space: nowrap; }
.row > span { overflow: hidden; text-overflow: ellipsis; }
.row.active { background: var(--sel); box-shadow: inset 3px 0 0 var(--focus); }
.row:hover { background: var(--panel); }
#detail { border: 1px solid var(--line); border-radius: 4px; padding: .6rem .8rem; background: var(--panel); min-height: 10rem; word-break: break-all; }
ol.chain { padding-left: 1.3rem; } ol.chain li { margin: .15rem 0; }
a.go { color: var(--focus); cursor: pointer; text-decoration: underline; }
.tip { position: fixed; pointer-events: none; background: var(--fg); color: var(--bg); padding: .25rem .45rem; border-radius: 3px; font-size: 12px; max-width: 40rem; z-index: 3; word-break: break-all; }
details > summary { cursor: pointer; }
ol.hooks { font-family: ui-monospace, monospace; font-size: 12px; }
/* The hooks hold the path once, in data-path; the text shown is that attribute. */
ol.hooks li::before { content: attr(data-path); }
`;
