// The trace page: the waterfall (trace-model.js builds its rows), a minimap with drag-to-zoom,
// collapse/expand, find-in-trace, keyboard navigation, and the side panel (trace-panel.js).
import { api, el, fmtMs, fmtNs, param, showError } from './common.js';
import { buildRows, traceOutcome } from './trace-model.js';
import { drawMinimap } from './trace-minimap.js';
import { showPanel } from './trace-panel.js';
import { createWaterfall } from './trace-view.js';

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

/** The rows endpoint's tuples as span objects (times as BigInt ns); events and the rest come with the panel. */
function decode(t) {
  const f = Object.fromEntries(t.fields.map((k, i) => [k, i]));
  const t0 = BigInt(t.startNs);
  return t.spans.map((x) => {
    const start = t0 + BigInt(x[f.start]);
    return { traceId: t.traceId, spanId: x[f.spanId], parentSpanId: x[f.parentSpanId], name: x[f.name], kind: x[f.kind], service: x[f.service],
      startTimeUnixNano: start, endTimeUnixNano: start + BigInt(x[f.duration]), status: { code: x[f.status] }, attributes: x[f.attributes], links: x[f.links] };
  });
}

async function render() {
  const id = param('id');
  if (!id) {
    const input = el('input', { size: 40, placeholder: 'trace id (32 hex digits)', 'aria-label': 'trace id' });
    const form = el('form', { class: 'search' }, input, el('button', { type: 'submit', text: 'Open' }));
    form.addEventListener('submit', (e) => { e.preventDefault(); location.search = `?id=${encodeURIComponent(input.value.trim())}`; });
    return content.replaceChildren(form);
  }
  const [t, ob] = await Promise.all([api(`/api/traces/${encodeURIComponent(id)}/rows`), api(`/api/traces/${encodeURIComponent(id)}/outbox`).catch(() => ({ events: [] }))]);
  performance.mark('wf-fetched');
  const spans = decode(t);
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

  const find = el('input', { type: 'search', id: 'find', placeholder: 'find in trace (name, service, attribute)', 'aria-label': 'find in trace', size: 34 });
  const found = el('span', { class: 'muted', id: 'find-count', 'aria-live': 'polite' });
  const reset = el('button', { type: 'button', id: 'zoom-reset', text: 'Reset zoom' });
  const collapseAll = el('button', { type: 'button', id: 'collapse-all', text: 'Collapse attempts' });
  const expandAll = el('button', { type: 'button', id: 'expand-all', text: 'Expand all' });
  const tools = el('div', { class: 'wf-tools' }, find, found, collapseAll, expandAll, reset);
  const mini = el('canvas', { class: 'minimap', id: 'minimap', height: 48, 'aria-label': 'minimap: drag to zoom', role: 'img' });
  const sel = el('div', { class: 'minimap-sel' });
  const miniBox = el('div', { class: 'minimap-box' }, mini, sel);
  const box = el('aside', { class: 'detail', id: 'detail', 'aria-labelledby': 'panel-title' }, el('p', { class: 'muted', id: 'panel-title', text: 'Select a span (click, or Tab and Enter) for its outbox facts, attributes, events and links.' }));
  const wf = createWaterfall({ rows, t0, total, label: `waterfall of trace ${id}`, onSelect: (i) => showPanel(rows[i], box, ob.events) });
  performance.mark('wf-dom');
  content.replaceChildren(head, tools, miniBox, el('div', { class: 'trace-layout' }, wf.root, box));
  wf.render();
  drawMinimap(mini, rows, t0, total);

  // The zoom window, in nanoseconds from t0; the minimap drags it.
  function zoom(from, to) {
    wf.setView(from, to);
    sel.style.left = `${(from / total) * 100}%`;
    sel.style.width = `${Math.max(0.3, ((to - from) / total) * 100)}%`;
    reset.disabled = from === 0 && to === total;
  }
  collapseAll.addEventListener('click', () => wf.collapseGroups());
  expandAll.addEventListener('click', () => wf.expandAll());
  reset.addEventListener('click', () => zoom(0, total));

  // Find: every row whose name, service, heading or attribute value holds the text, over all
  // rows (made when first asked); Enter goes to the next match, scrolled into view.
  let hay = null;
  let list = [];
  let cur = -1;
  find.addEventListener('input', () => {
    hay ??= rows.map((r) => (r.span ? `${r.span.name}\u0000${r.span.service}\u0000${Object.values(r.span.attributes).join('\u0000')}` : `${r.name || ''}\u0000${r.text || ''}`).toLowerCase());
    const q = find.value.trim().toLowerCase();
    list = q ? hay.flatMap((h, i) => (h.includes(q) ? [i] : [])) : [];
    cur = -1;
    wf.setMatches(new Set(list));
    found.textContent = q ? `${list.length} match${list.length === 1 ? '' : 'es'}` : '';
  });
  find.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Enter' || list.length === 0) return;
    ev.preventDefault();
    cur = (cur + (ev.shiftKey ? list.length - 1 : 1)) % list.length;
    wf.select(list[cur], { focus: false, center: true });
    found.textContent = `${cur + 1} of ${list.length}`;
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
    if (b - a > total / 500) zoom(a, b);
    else { const v = wf.view; const w = v.to - v.from; const from = Math.max(0, Math.min(total - w, x - w / 2)); zoom(from, from + w); }
  });
  zoom(0, total);
  // For the render-time bound (apps/wordloom/test/explorer-waterfall-scale.test.ts).
  performance.mark('waterfall-rendered');
  wf.root.dataset.rendered = String(rows.length);
  const want = param('span');
  const wi = want ? rows.findIndex((r) => r.span && r.span.spanId === want) : -1;
  if (wi >= 0) wf.select(wi, { focus: false, center: true });
}

render().catch((err) => showError(content, err));
