// The trace page: the waterfall (trace-model.js builds its rows), a minimap with drag-to-zoom,
// collapse/expand, find-in-trace, keyboard navigation, and the side panel (trace-panel.js).
import { api, el, fmtMs, fmtNs, param, showError } from './common.js';
import { buildRows, traceOutcome } from './trace-model.js';
import { drawMinimap } from './trace-minimap.js';
import { showPanel } from './trace-panel.js';

const content = document.getElementById('content');

function legend() {
  const item = (cls, text) => el('span', {}, el('i', { class: `wf-bar ${cls}` }), text);
  return el('p', { class: 'legend' },
    item('k-server', 'server'), item('k-producer', 'producer (outbox send)'),
    item('queue', 'queue wait (commit, or a retry\'s run_at → claim: polling and notification)'),
    item('backoff', 'backoff (scheduled wait before a retry)'), item('k-consumer', 'consumer (process attempt)'),
    item('k-client', 'client (db, write, ack)'), item('retried', 'failed, retried later'),
    item('lease', 'lease of a lost attempt (from the outbox)'), item('error', 'error'));
}

/** Where each row's subtree ends: the first row after it that is not inside it. */
function ranges(rows) {
  const end = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    let j = i + 1;
    if (r.type === 'group') while (j < rows.length && rows[j].depth >= r.depth && !(rows[j].type === 'group' && rows[j].depth === r.depth)) j++;
    else if (r.type === 'span' && r.hasKids) while (j < rows.length && rows[j].depth > r.depth) j++;
    end[i] = j;
  }
  return end;
}

async function render() {
  const id = param('id');
  if (!id) {
    const input = el('input', { size: 40, placeholder: 'trace id (32 hex digits)', 'aria-label': 'trace id' });
    const form = el('form', { class: 'search' }, input, el('button', { type: 'submit', text: 'Open' }));
    form.addEventListener('submit', (e) => { e.preventDefault(); location.search = `?id=${encodeURIComponent(input.value.trim())}`; });
    return content.replaceChildren(form);
  }
  const [t, ob] = await Promise.all([api(`/api/traces/${encodeURIComponent(id)}`), api(`/api/traces/${encodeURIComponent(id)}/outbox`).catch(() => ({ events: [] }))]);
  performance.mark('wf-fetched');
  const spans = t.spans;
  const rows = buildRows(spans, ob.events);
  performance.mark('wf-rows');
  let t0 = rows[0].startNs ?? BigInt(spans[0].startTimeUnixNano);
  let t1 = t0;
  for (const r of rows) {
    if (r.startNs === undefined) continue;
    if (r.startNs < t0) t0 = r.startNs;
    if (r.endNs > t1) t1 = r.endNs;
  }
  const total = Number(t1 - t0) || 1;
  const root = spans.find((s) => !s.parentSpanId) || spans[0];
  const verdict = traceOutcome(ob.events);
  document.title = `${root.name} · trace ${id.slice(0, 8)} · loomtrace explorer`;
  document.querySelector('h1').textContent = `Trace ${id.slice(0, 8)} · ${root.name}`;
  const services = [...new Set(spans.map((s) => s.service))];
  const batchLinks = new Map();
  for (const s of spans) for (const l of s.links) if (l.attributes && l.attributes['loomtrace.link'] === 'batch' && l.traceId !== id) batchLinks.set(l.traceId, l.spanId);
  const head = el('div', { class: 'trace-head' },
    el('p', { class: 'mono', text: `trace ${id}` }),
    el('p', { class: 'muted' }, `${spans.length} span(s) · ${services.join(', ')} · ${fmtMs(total / 1e6)} · started ${fmtNs(t0.toString())}${t.truncated ? ' · truncated' : ''}`,
      verdict ? ' · ' : '', verdict ? el('span', { class: `badge o-${verdict.replace(/ /g, '-')}`, id: 'trace-outcome', text: verdict }) : ''),
    root.name.startsWith('batch ') ? el('p', { id: 'batch-events' }) : null,
    batchLinks.size ? el('p', {}, 'batch: ', ...[...batchLinks].flatMap(([tid, sid], i) => [i ? ', ' : '', el('a', { href: `/trace?id=${encodeURIComponent(tid)}&span=${encodeURIComponent(sid)}`, text: `batch trace ${tid.slice(0, 8)}` })])) : null,
    legend());

  // The view window, in nanoseconds from t0; the minimap drags it.
  const view = { from: 0, to: total };
  const find = el('input', { type: 'search', id: 'find', placeholder: 'find in trace (name, service, attribute)', 'aria-label': 'find in trace', size: 34 });
  const found = el('span', { class: 'muted', id: 'find-count', 'aria-live': 'polite' });
  const reset = el('button', { type: 'button', id: 'zoom-reset', text: 'Reset zoom' });
  const collapseAll = el('button', { type: 'button', id: 'collapse-all', text: 'Collapse attempts' });
  const expandAll = el('button', { type: 'button', id: 'expand-all', text: 'Expand all' });
  const tools = el('div', { class: 'wf-tools' }, find, found, collapseAll, expandAll, reset);
  const mini = el('canvas', { class: 'minimap', id: 'minimap', height: 48, 'aria-label': 'minimap: drag to zoom', role: 'img' });
  const sel = el('div', { class: 'minimap-sel' });
  const miniBox = el('div', { class: 'minimap-box' }, mini, sel);
  const axis = el('div', { class: 'wf-axis' }, el('div', { text: 'span' }), el('div', { class: 'ticks' }));
  const wf = el('div', { class: 'wf', id: 'waterfall', role: 'tree', 'aria-label': `waterfall of trace ${id}` }, axis);
  const box = el('aside', { class: 'detail', id: 'detail', 'aria-labelledby': 'panel-title' }, el('p', { class: 'muted', id: 'panel-title', text: 'Select a span (click, or Tab and Enter) for its outbox facts, attributes, events and links.' }));

  const end = ranges(rows);
  const collapsed = new Set();
  const els = new Array(rows.length);
  const bars = [];
  const frag = document.createDocumentFragment();
  // Span rows are cloned from one template (much cheaper than building each node): 10,000 spans.
  const tpl = el('div', { class: 'wf-row', role: 'treeitem', tabindex: '0' },
    el('div', { class: 'wf-label' }, el('span', { class: 'tog', 'aria-hidden': 'true' }), el('span', { class: 'name' }), el('span', { class: 'svc' })),
    el('div', { class: 'wf-track' }, el('div', { class: 'wf-bar' }), el('span', { class: 'wf-dur' })));
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    const pad = `${6 + r.depth * 14}px`;
    let e;
    if (r.type === 'group') {
      e = el('div', { class: `wf-group${r.lost ? ' lost' : ''} o-${String(r.outcome || 'none').replace(/ /g, '-')}`, role: 'treeitem', tabindex: '0', 'aria-level': r.depth + 1, 'aria-expanded': 'true' },
        el('span', { class: 'tog', 'aria-hidden': 'true', text: '▾' }), el('span', { class: 'gtext', text: r.text }));
      e.style.paddingLeft = pad;
    } else {
      const s = r.span;
      const name = s ? s.name : r.name;
      const durMs = Number(r.endNs - r.startNs) / 1e6;
      e = tpl.cloneNode(true);
      const label = e.firstChild;
      const [tog, nameEl, svc] = label.childNodes;
      const bar = e.lastChild.firstChild;
      const durText = e.lastChild.lastChild;
      if (r.hasKids) tog.textContent = '▾';
      nameEl.textContent = name;
      svc.textContent = s ? s.service : 'outbox';
      label.style.paddingLeft = pad;
      bar.className = `wf-bar ${s ? r.cls : `syn ${r.kind}`}`;
      durText.textContent = s ? (s.name.startsWith('queue wait') ? `queue wait ${fmtMs(durMs)}` : fmtMs(durMs)) : `${r.kind === 'dead' ? '' : `${fmtMs(durMs)} · `}${r.text}`;
      if (s && s.name.startsWith('queue wait')) e.className = 'wf-row queue-row';
      else if (!s) e.className = `wf-row syn-row ${r.kind}-row`;
      e.setAttribute('aria-level', String(r.depth + 1));
      e.setAttribute('aria-label', `${name}, ${s ? s.service : 'reconstructed from the outbox'}, ${durText.textContent}`);
      if (s) e.dataset.spanId = s.spanId;
      else e.dataset.kind = r.kind;
      if (r.hasKids) e.setAttribute('aria-expanded', 'true');
      bars.push([bar, durText, Number(r.startNs - t0), Number(r.endNs - t0)]);
    }
    e.dataset.i = String(i);
    els[i] = e;
    frag.append(e);
  }
  performance.mark('wf-dom');
  // The frame first (the minimap measures its width before 10,000 rows need a layout), then the rows.
  const layout = el('div', { class: 'trace-layout' }, wf, box);
  content.replaceChildren(head, tools, miniBox, layout);
  drawMinimap(mini, rows, t0, total);
  wf.append(frag);

  function place() {
    const span = Math.max(1, view.to - view.from);
    for (const [bar, durText, a, b] of bars) {
      const left = ((a - view.from) / span) * 100;
      const width = Math.max(((b - a) / span) * 100, 0);
      bar.style.left = `${left}%`;
      bar.style.width = `${width}%`;
      // Near the right edge the duration goes before the bar, so they never overlap.
      // A wide bar reaching the right edge holds its duration inside.
      durText.classList.toggle('inside', left + width > 70 && left < 30);
      if (left + width > 70 && left >= 30) { durText.style.left = ''; durText.style.right = `${Math.min(100, Math.max(0, 100 - left + 0.5))}%`; }
      else { durText.style.right = ''; durText.style.left = `${Math.max(0, left + width > 70 ? left + 0.5 : left + width + 0.5)}%`; }
    }
    const ticks = axis.lastChild;
    ticks.replaceChildren();
    for (let k = 0; k <= 4; k++) {
      const at = (view.from + (span * k) / 4) / 1e6;
      const tick = el('span', { class: 'tick', text: at === 0 ? '0' : fmtMs(at) });
      tick.style.left = `${Math.min(k * 25, 93)}%`;
      ticks.append(tick);
    }
    sel.style.left = `${(view.from / total) * 100}%`;
    sel.style.width = `${Math.max(0.3, ((view.to - view.from) / total) * 100)}%`;
    reset.disabled = view.from === 0 && view.to === total;
  }

  function applyCollapse() {
    let i = 0;
    while (i < rows.length) {
      els[i].hidden = false;
      if (collapsed.has(i)) {
        for (let j = i + 1; j < end[i]; j++) els[j].hidden = true;
        i = end[i];
      } else i++;
    }
    for (let k = 0; k < rows.length; k++) {
      if (!els[k].hasAttribute('aria-expanded')) continue;
      els[k].setAttribute('aria-expanded', String(!collapsed.has(k)));
      els[k].querySelector('.tog').textContent = collapsed.has(k) ? '▸' : '▾';
    }
  }
  const toggle = (i, open) => {
    if (!els[i].hasAttribute('aria-expanded')) return;
    if (open ?? collapsed.has(i)) collapsed.delete(i); else collapsed.add(i);
    applyCollapse();
  };

  function select(i, focus = true) {
    for (const r of wf.querySelectorAll('.sel')) r.classList.remove('sel');
    els[i].classList.add('sel');
    if (focus) els[i].focus();
    showPanel(rows[i], box);
  }
  wf.addEventListener('click', (ev) => {
    const e = ev.target.closest('[data-i]');
    if (!e) return;
    const i = Number(e.dataset.i);
    if (ev.target.classList.contains('tog') || rows[i].type === 'group') toggle(i);
    select(i);
  });
  const visible = () => els.filter((e) => !e.hidden);
  wf.addEventListener('keydown', (ev) => {
    const e = ev.target.closest('[data-i]');
    if (!e) return;
    const i = Number(e.dataset.i);
    if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); select(i); }
    else if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      const v = visible();
      const k = v.indexOf(e) + (ev.key === 'ArrowDown' ? 1 : -1);
      if (v[k]) v[k].focus();
    } else if (ev.key === 'ArrowLeft') toggle(i, false);
    else if (ev.key === 'ArrowRight') toggle(i, true);
  });
  collapseAll.addEventListener('click', () => { rows.forEach((r, i) => { if (r.type === 'group') collapsed.add(i); }); applyCollapse(); });
  expandAll.addEventListener('click', () => { collapsed.clear(); applyCollapse(); });
  reset.addEventListener('click', () => { view.from = 0; view.to = total; place(); });

  // Find: every row whose name, service, heading or attribute value holds the text.
  const hay = rows.map((r) => (r.span ? `${r.span.name}\u0000${r.span.service}\u0000${Object.values(r.span.attributes).join('\u0000')}` : `${r.name || ''}\u0000${r.text || ''}`).toLowerCase());
  let matches = [];
  let cur = -1;
  find.addEventListener('input', () => {
    for (const i of matches) els[i].classList.remove('match');
    const q = find.value.trim().toLowerCase();
    matches = q ? hay.flatMap((h, i) => (h.includes(q) ? [i] : [])) : [];
    cur = -1;
    for (const i of matches) els[i].classList.add('match');
    found.textContent = q ? `${matches.length} match${matches.length === 1 ? '' : 'es'}` : '';
  });
  find.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' || matches.length === 0) return;
    ev.preventDefault();
    cur = (cur + (ev.shiftKey ? matches.length - 1 : 1)) % matches.length;
    const i = matches[cur];
    for (const c of [...collapsed]) if (c < i && end[c] > i) collapsed.delete(c);
    applyCollapse();
    select(i, false);
    els[i].scrollIntoView({ block: 'center' });
    found.textContent = `${cur + 1} of ${matches.length}`;
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === '/' && document.activeElement !== find) { ev.preventDefault(); find.focus(); }
  });

  performance.mark('wf-appended');
  // A batch trace links back to the event traces it served.
  const back = head.querySelector('#batch-events');
  if (back) {
    api(`/api/traces/${encodeURIComponent(id)}/events`).then((r) => {
      if (r.events.length === 0) return back.replaceChildren(el('span', { class: 'muted', text: 'no event traces stored for this batch' }));
      back.replaceChildren(`events of this batch (${r.events.length}): `, ...r.events.flatMap((e, i) => [i ? ', ' : '',
        el('a', { href: `/trace?id=${encodeURIComponent(e.traceId)}&span=${encodeURIComponent(e.spanId)}`, text: `${e.eventId ? `event ${e.eventId}` : e.traceId.slice(0, 8)}${e.outcome ? ` (${e.outcome})` : ''}` })]));
    }).catch((err) => showError(back, err));
  }
  // Drag on the minimap to zoom; a click without a drag re-centres the window.
  let drag = null;
  const at = (ev) => Math.min(1, Math.max(0, (ev.clientX - mini.getBoundingClientRect().left) / mini.clientWidth)) * total;
  miniBox.addEventListener('pointerdown', (ev) => { drag = at(ev); miniBox.setPointerCapture(ev.pointerId); });
  miniBox.addEventListener('pointermove', (ev) => {
    if (drag === null) return;
    const x = at(ev);
    sel.style.left = `${(Math.min(drag, x) / total) * 100}%`;
    sel.style.width = `${(Math.abs(x - drag) / total) * 100}%`;
  });
  miniBox.addEventListener('pointerup', (ev) => {
    if (drag === null) return;
    const x = at(ev);
    const a = Math.min(drag, x);
    const b = Math.max(drag, x);
    drag = null;
    if (b - a > total / 500) { view.from = a; view.to = b; }
    else { const w = view.to - view.from; view.from = Math.max(0, Math.min(total - w, x - w / 2)); view.to = view.from + w; }
    place();
  });
  place();
  // For the render-time bound (apps/wordloom/test/explorer-waterfall-scale.test.ts).
  performance.mark('waterfall-rendered');
  wf.dataset.rendered = String(rows.length);
  const want = param('span');
  const wi = want ? rows.findIndex((r) => r.span && r.span.spanId === want) : -1;
  if (wi >= 0) {
    select(wi, false);
    els[wi].scrollIntoView({ block: 'center' });
  }
}

render().catch((err) => showError(content, err));
