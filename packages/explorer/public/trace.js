import { api, el, fmtMs, fmtNs, kvTable, link, param, showError } from './common.js';

const content = document.getElementById('content');
const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
const STATUS = ['unset', 'ok', 'error'];

/** Depth-first order of the spans, children by start time; spans whose parent is missing are roots. */
function order(spans) {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const kids = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parentSpanId && byId.has(s.parentSpanId)) {
      if (!kids.has(s.parentSpanId)) kids.set(s.parentSpanId, []);
      kids.get(s.parentSpanId).push(s);
    } else roots.push(s);
  }
  const out = [];
  const stack = roots.slice().reverse().map((s) => [s, 0]);
  while (stack.length) {
    const [s, d] = stack.pop();
    out.push([s, d]);
    const c = kids.get(s.spanId) || [];
    for (let i = c.length - 1; i >= 0; i--) stack.push([c[i], d + 1]);
  }
  return out;
}

function detail(span, box) {
  const dur = Number(BigInt(span.endTimeUnixNano) - BigInt(span.startTimeUnixNano)) / 1e6;
  const linkRows = el('div');
  if (span.links.length === 0) linkRows.append(el('p', { class: 'muted', text: 'none' }));
  for (const l of span.links) {
    const role = l.attributes && l.attributes['loomtrace.link'] ? `${l.attributes['loomtrace.link']}: ` : '';
    const a = link('trace', { id: l.traceId, span: l.spanId }, `${role}${l.traceId} / ${l.spanId}`);
    a.className = 'mono span-link';
    linkRows.append(el('div', {}, a));
  }
  const events = el('div');
  if (span.events.length === 0) events.append(el('p', { class: 'muted', text: 'none' }));
  for (const e of span.events) {
    events.append(el('h3', { text: `${fmtNs(e.timeUnixNano)}  ${e.name}` }), kvTable(e.attributes));
  }
  const statusText = `${STATUS[span.status.code] || span.status.code}${span.status.message ? `: ${span.status.message}` : ''}`;
  box.replaceChildren(
    el('h2', { text: span.name }),
    el('table', {},
      el('tr', {}, el('td', { text: 'service' }), el('td', { text: span.service })),
      el('tr', {}, el('td', { text: 'span id' }), el('td', { class: 'mono', text: span.spanId })),
      el('tr', {}, el('td', { text: 'parent' }), el('td', { class: 'mono', text: span.parentSpanId || '(root)' })),
      el('tr', {}, el('td', { text: 'kind' }), el('td', { text: KINDS[span.kind] || span.kind })),
      el('tr', {}, el('td', { text: 'start' }), el('td', { class: 'mono', text: fmtNs(span.startTimeUnixNano) })),
      el('tr', {}, el('td', { text: 'duration' }), el('td', { text: fmtMs(dur) })),
      el('tr', {}, el('td', { text: 'status' }), el('td', { class: span.status.code === 2 ? 'err' : '', text: statusText })),
      span.dropped ? el('tr', {}, el('td', { text: 'dropped' }), el('td', { text: `${span.dropped} attribute(s)/event(s)/link(s) dropped or cut` })) : null),
    el('h2', { text: 'Attributes' }), kvTable(span.attributes),
    el('h2', { text: 'Events' }), events,
    el('h2', { text: 'Links' }), linkRows);
  const resource = el('div', {}, el('p', { class: 'muted', text: 'loading…' }));
  box.append(el('h2', { text: 'Resource' }), resource);
  api(`/api/traces/${encodeURIComponent(span.traceId)}/spans/${encodeURIComponent(span.spanId)}`)
    .then((r) => resource.replaceChildren(kvTable(r.resource)))
    .catch((err) => showError(resource, err));
  const eventId = span.attributes['messaging.message.id'];
  const blockId = span.attributes['loomtrace.block.id'];
  const more = el('p');
  if (eventId) more.append(link('event', { id: String(eventId) }, `replay event ${eventId}`), ' · ');
  if (blockId) more.append(link('block', { id: String(blockId) }, `why is block ${blockId} not in search?`));
  box.append(more);
}

async function render() {
  const id = param('id');
  if (!id) {
    const input = el('input', { size: 40, placeholder: 'trace id (32 hex digits)' });
    const form = el('form', { class: 'search' }, input, el('button', { type: 'submit', text: 'Open' }));
    form.addEventListener('submit', (e) => { e.preventDefault(); location.search = `?id=${encodeURIComponent(input.value.trim())}`; });
    return content.replaceChildren(form);
  }
  const t = await api(`/api/traces/${encodeURIComponent(id)}`);
  const spans = t.spans;
  let t0 = BigInt(spans[0].startTimeUnixNano);
  let t1 = BigInt(spans[0].endTimeUnixNano);
  for (const s of spans) {
    const a = BigInt(s.startTimeUnixNano);
    const b = BigInt(s.endTimeUnixNano);
    if (a < t0) t0 = a;
    if (b > t1) t1 = b;
  }
  const total = Number(t1 - t0) || 1;
  const pct = (ns) => (Number(BigInt(ns) - t0) / total) * 100;
  const services = [...new Set(spans.map((s) => s.service))];
  const head = el('div', {},
    el('p', { class: 'mono', text: `trace ${id}` }),
    el('p', { class: 'muted', text: `${spans.length} span(s) · ${services.join(', ')} · ${fmtMs(total / 1e6)} · started ${fmtNs(t0.toString())}${t.truncated ? ' · truncated' : ''}` }),
    el('p', { class: 'legend' },
      el('span', {}, el('i', { class: 'wf-bar k-server' }), 'server'),
      el('span', {}, el('i', { class: 'wf-bar k-producer' }), 'producer (outbox send)'),
      el('span', {}, el('i', { class: 'wf-bar queue' }), 'queue wait (commit → claim)'),
      el('span', {}, el('i', { class: 'wf-bar k-consumer' }), 'consumer (process attempt)'),
      el('span', {}, el('i', { class: 'wf-bar k-client' }), 'client (db, write, ack)'),
      el('span', {}, el('i', { class: 'wf-bar error' }), 'error')));
  const axis = el('div', { class: 'wf-axis' }, el('div', { text: 'span' }), el('div', { class: 'ticks' }));
  for (let i = 0; i <= 4; i++) {
    const tick = el('span', { class: 'tick', text: fmtMs((total / 1e6) * (i / 4)) });
    tick.style.left = `${Math.min(i * 25, 94)}%`;
    axis.lastChild.append(tick);
  }
  const wf = el('div', { class: 'wf', id: 'waterfall' }, axis);
  const box = el('div', { class: 'detail', id: 'detail' }, el('p', { class: 'muted', text: 'Click a span for its attributes, events, status and links.' }));
  const want = param('span');
  let selected;
  // An attempt's heading goes above its first span (the queue wait, then the process span).
  const processOf = new Map();
  for (const s of spans) if (s.name.startsWith('process ') && s.attributes['loomtrace.attempt'] !== undefined) processOf.set(`${s.parentSpanId}/${s.attributes['loomtrace.attempt']}`, s);
  const headed = new Set();
  for (const [s, depth] of order(spans)) {
    const attempt = s.attributes['loomtrace.attempt'];
    const key = `${s.parentSpanId}/${attempt}`;
    if (attempt !== undefined && (s.name.startsWith('process ') || s.name.startsWith('queue wait')) && !headed.has(key)) {
      headed.add(key);
      const p = processOf.get(key) || s;
      const owner = p.attributes['loomtrace.lease.owner'];
      const outcome = p.attributes['loomtrace.outcome'];
      const reason = p.attributes['loomtrace.retry.reason'];
      const g = el('div', { class: 'wf-group', text: `attempt ${attempt}${owner ? ` · ${owner}` : ''}${outcome ? ` · ${outcome}` : ''}${reason ? ` · after ${reason}` : ''}${p.attributes['loomtrace.reclaimed'] === true ? ' · reclaimed' : ''}` });
      g.style.paddingLeft = `${6 + depth * 14}px`;
      wf.append(g);
    }
    const isQueue = s.name.startsWith('queue wait');
    const dur = Number(BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano)) / 1e6;
    const bar = el('div', { class: `wf-bar k-${KINDS[s.kind] || 'internal'}${isQueue ? ' queue' : ''}${s.status.code === 2 ? ' error' : ''}`, title: `${s.name} ${fmtMs(dur)}` });
    const left = pct(s.startTimeUnixNano);
    const width = Math.max(pct(s.endTimeUnixNano) - left, 0.15);
    bar.style.left = `${left}%`;
    bar.style.width = `${width}%`;
    const label = el('div', { class: 'wf-label' }, el('span', { class: 'name', text: s.name }), el('span', { class: 'svc', text: s.service }));
    label.style.paddingLeft = `${6 + depth * 14}px`;
    const durText = el('span', { class: 'wf-dur', text: isQueue ? `queue wait ${fmtMs(dur)}` : fmtMs(dur) });
    // Near the right edge the duration goes before the bar, so they never overlap.
    if (left + width > 85) durText.style.right = `${Math.max(0, 100 - left + 0.5)}%`;
    else durText.style.left = `${left + width + 0.5}%`;
    const row = el('div', { class: `wf-row${isQueue ? ' queue-row' : ''}`, dataset: { spanId: s.spanId } }, label, el('div', { class: 'wf-track' }, bar, durText));
    row.addEventListener('click', () => {
      for (const r of wf.querySelectorAll('.wf-row.sel')) r.classList.remove('sel');
      row.classList.add('sel');
      detail(s, box);
    });
    if (want && s.spanId === want) selected = row;
    wf.append(row);
  }
  content.replaceChildren(head, wf, box);
  if (selected) {
    selected.click();
    selected.scrollIntoView({ block: 'center' });
  }
}

render().catch((err) => showError(content, err));
