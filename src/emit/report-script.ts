/**
 * The report page's script (inlined into the HTML after the data). Plain DOM, no framework: a
 * virtual list (only the visible rows exist, so 200,000 paths stay interactive), search, sort,
 * keyboard navigation, and the why-chain of the selected path computed by `shortestChain`, whose
 * source the HTML writer inlines from src/graph/why.ts (the code `nix-seal why` runs).
 * Written without template literals: it lives inside one.
 */
export const REPORT_SCRIPT = String.raw`
(function () {
  'use strict';
  performance.mark('report-script-start');
  var D = JSON.parse(document.getElementById('report-data').textContent);
  var n = D.names.length, S = D.storeDir + '/';
  var g = { paths: D.names, refStart: Uint32Array.from(D.refStart), refs: Uint32Array.from(D.refs) };
  var sealMark = new Uint8Array(n); D.sealMarks.forEach(function (i) { sealMark[i] = 1; });
  var erasedBy = {}; // path index -> seal indices
  D.seals.forEach(function (s, si) { s.erased.forEach(function (e) { (erasedBy[e] = erasedBy[e] || []).push(si); }); });
  var verdictOf = {}; // si + ':' + path -> audit entry
  if (D.audit) D.audit.seals.forEach(function (s, si) { s.erased.forEach(function (e) { verdictOf[si + ':' + e.path] = e; }); });
  var byPath = new Map(); D.names.forEach(function (nm, i) { byPath.set(S + nm, i); });
  var lower = D.names.map(function (s) { return s.toLowerCase(); });
  var members = []; for (var i = 0; i < n; i++) if (D.status[i] !== -3) members.push(i);

  function human(b) {
    if (b === null || b === undefined) return 'unknown';
    if (b < 1024) return b + ' B';
    var u = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], e = Math.min(Math.floor(Math.log(b) / Math.log(1024)), 5);
    return Number((b / Math.pow(1024, e)).toPrecision(3)) + ' ' + u[e];
  }
  function el(tag, attrs, kids) {
    var x = document.createElement(tag);
    if (attrs) for (var k in attrs) { if (k === 'text') x.textContent = attrs[k]; else if (k === 'cls') x.className = attrs[k]; else x.setAttribute(k, attrs[k]); }
    (kids || []).forEach(function (c) { x.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return x;
  }
  function statusText(i) {
    var s = D.status[i];
    if (s === -1) return 'kept';
    var by = erasedBy[i] || [];
    return 'erased by ' + by.map(function (si) { return shortName(D.seals[si].id); }).join(', ');
  }
  function statusClass(i) { var s = D.status[i]; return s === -1 ? 'st-k' : s === -2 ? 'st-x' : 'st-s' + (s % 12); }
  function shortName(i) { var s = D.names[i]; var d = s.indexOf('-'); return d === 32 ? s.slice(33) : s; }
  function closureSizeOf(i) {
    if (D.closureSize[i] !== null) return D.closureSize[i];
    var seen = new Uint8Array(n), st = [i], sum = 0; seen[i] = 1;
    while (st.length) { var v = st.pop(); sum += D.narSize[v] === null ? NaN : D.narSize[v];
      for (var k = g.refStart[v]; k < g.refStart[v + 1]; k++) { var w = g.refs[k]; if (!seen[w]) { seen[w] = 1; st.push(w); } } }
    D.closureSize[i] = isNaN(sum) ? null : sum; return D.closureSize[i];
  }

  // shortestChain (from src/graph/why.ts) is inlined before this script.
  function chainsFor(t) {
    if (D.status[t] === -1) {
      for (var r = 0; r < D.roots.length; r++) {
        var c = shortestChain(g, D.roots[r], t, sealMark);
        if (c) return [{ seal: -1, chain: c }];
      }
      return [];
    }
    // As nix-seal why: root to the seal inside the sealed closure, then the seal to the path.
    var out = (erasedBy[t] || []).map(function (si) {
      var s = D.seals[si].id, toSeal;
      for (var r = 0; r < D.roots.length && !toSeal; r++) toSeal = shortestChain(g, D.roots[r], s, sealMark);
      var fromSeal = shortestChain(g, s, t, undefined);
      return { seal: si, chain: (toSeal || [s]).concat(fromSeal.slice(1)) };
    });
    out.sort(function (a, b) { return a.chain.length - b.chain.length; });
    return out;
  }

  // ---- the list -------------------------------------------------------------------------------
  var ROW = 24, list = document.getElementById('list'), inner = document.getElementById('list-inner');
  var search = document.getElementById('search'), count = document.getElementById('count');
  var rows = members.slice(), active = -1, sortKey = 'added', sortDir = -1;
  var keyOf = {
    name: function (i) { return lower[i].slice(33) || lower[i]; },
    nar: function (i) { return D.narSize[i] === null ? -1 : D.narSize[i]; },
    closure: function (i) { return D.closureSize[i] === null ? -1 : D.closureSize[i]; },
    added: function (i) { return D.added[i]; },
    status: function (i) { return D.status[i] === -1 ? -10 : D.status[i]; },
  };
  function applySort() {
    var f = keyOf[sortKey], keys = new Array(n);
    rows.forEach(function (i) { keys[i] = f(i); });
    rows.sort(function (a, b) { var x = keys[a], y = keys[b]; return (x < y ? -1 : x > y ? 1 : a - b) * sortDir; });
    document.querySelectorAll('.head button').forEach(function (b) {
      var on = b.dataset.key === sortKey;
      b.setAttribute('aria-pressed', on ? 'true' : 'false');
      b.setAttribute('data-sorted', on ? (sortDir > 0 ? 'asc' : 'desc') : '');
      b.setAttribute('aria-label', 'sort by ' + b.dataset.key + (on ? (sortDir > 0 ? ', ascending' : ', descending') : ''));
    });
  }
  function applyFilter() {
    var q = search.value.trim().toLowerCase();
    rows = q === '' ? members.slice() : members.filter(function (i) { return lower[i].indexOf(q) >= 0; });
    applySort();
    active = rows.length ? 0 : -1;
    list.scrollTop = 0;
    render();
  }
  function render() {
    inner.style.height = rows.length * ROW + 'px';
    count.textContent = rows.length + ' of ' + members.length + ' paths';
    var first = Math.max(0, Math.floor(list.scrollTop / ROW) - 5), last = Math.min(rows.length, first + Math.ceil(list.clientHeight / ROW) + 10);
    var frag = document.createDocumentFragment();
    for (var r = first; r < last; r++) {
      var i = rows[r];
      var row = el('div', { cls: 'row' + (r === active ? ' active' : ''), role: 'option', id: 'row-' + r, 'data-i': i, 'aria-selected': r === active ? 'true' : 'false' }, [
        el('span', { cls: 'mono', title: S + D.names[i], text: shortName(i) }),
        el('span', { cls: 'num', text: human(D.narSize[i]) }),
        el('span', { cls: 'num', text: D.closureSize[i] === null ? '…' : human(D.closureSize[i]) }),
        el('span', { cls: 'num', text: human(D.added[i]) }),
        el('span', {}, [el('span', { cls: 'sw ' + statusClass(i), 'aria-hidden': 'true' }), D.status[i] === -1 ? 'kept' : 'erased']),
      ]);
      row.style.top = r * ROW + 'px';
      frag.appendChild(row);
    }
    inner.replaceChildren(frag);
    if (active >= 0) list.setAttribute('aria-activedescendant', 'row-' + active); else list.removeAttribute('aria-activedescendant');
  }
  function moveTo(r, show) {
    if (!rows.length) return;
    active = Math.max(0, Math.min(rows.length - 1, r));
    var top = active * ROW;
    if (top < list.scrollTop) list.scrollTop = top;
    else if (top + ROW > list.scrollTop + list.clientHeight) list.scrollTop = top + ROW - list.clientHeight;
    render();
    if (show) showDetail(rows[active]);
  }
  function select(i) {
    var r = rows.indexOf(i);
    if (r < 0) { search.value = ''; applyFilter(); r = rows.indexOf(i); }
    moveTo(r, true);
  }
  list.addEventListener('scroll', render);
  list.addEventListener('click', function (e) {
    var row = e.target.closest('.row'); if (!row) return;
    moveTo(Number(row.id.slice(4)), true); list.focus();
  });
  list.addEventListener('keydown', function (e) {
    var page = Math.max(1, Math.floor(list.clientHeight / ROW) - 1), k = e.key;
    if (k === 'ArrowDown') moveTo(active + 1, true);
    else if (k === 'ArrowUp') moveTo(active - 1, true);
    else if (k === 'PageDown') moveTo(active + page, true);
    else if (k === 'PageUp') moveTo(active - page, true);
    else if (k === 'Home') moveTo(0, true);
    else if (k === 'End') moveTo(rows.length - 1, true);
    else if (k === 'Enter' || k === ' ') { if (active >= 0) showDetail(rows[active]); }
    else return;
    e.preventDefault();
  });
  search.addEventListener('input', applyFilter);
  search.addEventListener('keydown', function (e) { if (e.key === 'ArrowDown') { e.preventDefault(); list.focus(); moveTo(Math.max(active, 0), true); } });
  document.querySelectorAll('.head button').forEach(function (b) {
    b.addEventListener('click', function () {
      if (sortKey === b.dataset.key) sortDir = -sortDir; else { sortKey = b.dataset.key; sortDir = sortKey === 'name' ? 1 : -1; }
      applySort(); render();
    });
  });

  // ---- details --------------------------------------------------------------------------------
  var detail = document.getElementById('detail');
  function link(i) {
    var a = el('a', { cls: 'go mono', href: '#', 'data-go': i, text: S + D.names[i] });
    return a;
  }
  function showDetail(i) {
    var p = S + D.names[i];
    var kids = [el('h3', { cls: 'mono', text: p }), el('p', {}, [el('span', { cls: 'sw ' + statusClass(i), 'aria-hidden': 'true' }), statusText(i)])];
    kids.push(el('p', { text: 'NAR size ' + human(D.narSize[i]) + (D.narSize[i] !== null ? ' (' + D.narSize[i] + ' bytes)' : '') +
      ' · closure ' + human(closureSizeOf(i)) + ' · added ' + human(D.added[i]) +
      (sealMark[i] ? ' · a seal' : '') }));
    var cs = chainsFor(i);
    if (D.status[i] === -1) {
      kids.push(el('p', { text: cs.length && cs[0].chain.length > 1 ? 'Why it is in the sealed closure (shortest chain from the root):' : 'A root of the closure.' }));
    } else {
      kids.push(el('p', { text: 'Erased: only reachable through ' + (cs.length === 1 ? 'this seal' : 'these seals') + '; the chain through each:' }));
    }
    cs.forEach(function (c) {
      if (c.seal >= 0) {
        var sealPath = S + D.names[D.seals[c.seal].id];
        var line = el('p', {}, ['cut off by seal ', link(D.seals[c.seal].id)]);
        var v = verdictOf[c.seal + ':' + p];
        if (v) {
          line.appendChild(document.createTextNode(' — audit: '));
          line.appendChild(el('span', { cls: 'verdict v-' + v.verdict, 'data-detail-verdict': v.verdict, text: v.verdict }));
        }
        kids.push(line);
        if (v && v.evidence.length) kids.push(el('ul', { cls: 'evidence' }, v.evidence.map(function (ev) { return el('li', { text: evidenceText(ev) }); })));
        if (v && v.via && v.via.length) kids.push(el('p', { cls: 'muted', text: 'erased because ' + v.via.join(', ') + ' refers to it' }));
        void sealPath;
      }
      kids.push(el('ol', { cls: 'chain', 'data-chain-for': p, 'data-chain-seal': c.seal >= 0 ? S + D.names[D.seals[c.seal].id] : '' },
        c.chain.map(function (x) { return el('li', { 'data-chain-path': S + D.names[x] }, [link(x), sealMark[x] ? ' [seal]' : '']); })));
    });
    detail.replaceChildren.apply(detail, kids);
    detail.setAttribute('data-shown', p);
  }
  function evidenceText(ev) {
    return ev.file + (ev.offset !== null ? ' @' + ev.offset : '') + ': ' + ev.what + (ev.context ? ' — ' + ev.context : '');
  }
  document.addEventListener('click', function (e) {
    var t = e.target.closest('[data-go], rect[data-i], [data-path], [data-erased]');
    if (!t) return;
    var i = t.hasAttribute('data-go') ? Number(t.getAttribute('data-go')) : t.hasAttribute('data-i') ? Number(t.getAttribute('data-i')) : byPath.get(t.getAttribute('data-path') || t.getAttribute('data-erased'));
    if (i === undefined) return;
    e.preventDefault();
    select(i);
    if (!t.closest('#detail')) document.getElementById('paths').scrollIntoView();
  });

  // ---- treemap tooltip --------------------------------------------------------------------------
  var tip = el('div', { cls: 'tip', role: 'tooltip' }); tip.hidden = true; document.body.appendChild(tip);
  var svg = document.querySelector('svg.treemap');
  if (svg) {
    svg.addEventListener('mousemove', function (e) {
      var r = e.target.closest('rect[data-i], rect[data-rest]'); if (!r) { tip.hidden = true; return; }
      var i = Number(r.getAttribute('data-i'));
      if (r.hasAttribute('data-rest')) {
        var of = Number(r.getAttribute('data-rest-of'));
        tip.textContent = r.getAttribute('data-rest') + ' smaller paths ' + (of >= 0 ? 'kept by ' + D.names[of] : 'kept by the roots');
      } else tip.textContent = D.names[i] + ' — ' + (r.getAttribute('data-kind') === 'own' ? 'own ' + human(D.narSize[i]) : 'with what it dominates ' + human(D.added[i])) + ' — ' + statusText(i);
      tip.hidden = false; tip.style.left = Math.min(e.clientX + 12, innerWidth - 320) + 'px'; tip.style.top = e.clientY + 14 + 'px';
    });
    svg.addEventListener('mouseleave', function () { tip.hidden = true; });
  }

  applyFilter();
  document.body.setAttribute('data-ready', 'true');
  performance.mark('report-ready');
})();
`;
