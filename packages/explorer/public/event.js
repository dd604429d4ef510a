import { api, el, fmtTime, link, param, showError } from './common.js';

const content = document.getElementById('content');

/** The attempts on one time axis, one lane per worker: each attempt from its claim to its end. */
function lanes(timeline) {
  const times = timeline.map((x) => Date.parse(x.at));
  const t0 = Math.min(...times);
  const total = Math.max(1, Math.max(...times) - t0);
  const pct = (iso) => ((Date.parse(iso) - t0) / total) * 100;
  const attempts = new Map();
  for (const x of timeline) {
    if (x.attempt === null || x.what === 'pending') continue;
    const a = attempts.get(x.attempt) || { attempt: x.attempt, owner: x.owner, from: null, to: null, end: null };
    if (x.what === 'claimed') a.from = x.at;
    else { a.to = x.at; a.end = x.what; a.reason = x.reason; }
    if (x.owner) a.owner = x.owner;
    attempts.set(x.attempt, a);
  }
  const owners = [...new Set([...attempts.values()].map((a) => a.owner || '?'))];
  const box = el('div', { class: 'wf', id: 'lanes' });
  const enq = timeline.find((x) => x.what === 'enqueued');
  for (const owner of owners) {
    const track = el('div', { class: 'wf-track' });
    for (const a of attempts.values()) {
      if ((a.owner || '?') !== owner) continue;
      const from = a.from || a.to;
      const to = a.to || a.from;
      if (!from) continue;
      const bar = el('div', { class: `wf-bar ${a.end === 'acked' ? 'k-client' : a.end === 'dead' || a.end === 'lost' ? 'error' : 'k-producer'}`, title: `attempt ${a.attempt}: ${a.end || 'in progress'}` });
      bar.style.left = `${pct(from)}%`;
      bar.style.width = `${Math.max(pct(to) - pct(from), 0.4)}%`;
      const label = el('span', { class: 'wf-dur', text: `#${a.attempt} ${a.end || 'in progress'}${a.reason ? ` (${a.reason})` : ''}` });
      if (pct(from) > 70) label.style.right = `${100 - pct(from) + 0.5}%`;
      else label.style.left = `${pct(to) + 0.6}%`;
      track.append(bar, label);
    }
    box.append(el('div', { class: 'wf-row' }, el('div', { class: 'wf-label', text: owner }), track));
  }
  return el('div', {}, el('h2', { text: 'Attempts across workers' }),
    el('p', { class: 'muted', text: `from enqueue (${enq ? fmtTime(enq.at) : '?'}) to the last step; orange = retried, blue = acked, red = dead or lease lost` }), box, el('h2', { text: 'Timeline' }));
}

async function render() {
  const id = param('id');
  const input = el('input', { size: 12, placeholder: 'event id' });
  input.value = id || '';
  const form = el('form', { class: 'search' }, input, el('button', { type: 'submit', text: 'Replay' }));
  form.addEventListener('submit', (e) => { e.preventDefault(); location.search = `?id=${encodeURIComponent(input.value.trim())}`; });
  if (!id) return content.replaceChildren(form);
  const r = await api(`/api/events/${encodeURIComponent(id)}`);
  const e = r.event;
  document.title = `Event ${e.id} · ${e.state} · loomtrace explorer`;
  document.querySelector('h1').textContent = `Event ${e.id} · ${e.eventType} v${e.aggregateVersion} · ${e.state}`;
  const head = el('p', {}, `event ${e.id} · ${e.eventType} · ${e.aggregateType} `, link('block', { type: e.aggregateType, projection: e.projection, id: e.aggregateId }, e.aggregateId), ` v${e.aggregateVersion} · state `, el('b', { text: e.state }), ` · ${e.attempts} attempt(s)${e.reclaims ? ` · ${e.reclaims} reclaim(s)` : ''}`);
  if (r.traceId) head.append(' · ', link('trace', { id: r.traceId }, 'open the trace'));
  const t = el('table', { id: 'timeline' }, el('tr', {}, ...['time', 'step', 'attempt', 'worker', 'reason', 'delay', 'detail', 'span'].map((h) => el('th', { text: h }))));
  for (const x of r.timeline) {
    t.append(el('tr', {},
      el('td', { class: 'mono', text: fmtTime(x.at) }),
      el('td', { class: x.what === 'dead' || x.what === 'lost' ? 'err' : x.what === 'acked' ? 'ok' : '', text: x.what }),
      el('td', { text: x.attempt ?? '' }),
      el('td', { text: x.owner ?? '' }),
      el('td', { text: x.reason ?? '' }),
      el('td', { text: x.delayMs ?? '' }),
      el('td', { text: x.detail }),
      el('td', {}, x.spanId && r.traceId ? link('trace', { id: r.traceId, span: x.spanId }, x.spanId) : '')));
  }
  content.replaceChildren(form, head, lanes(r.timeline), t, e.lastError ? el('p', { class: e.state === 'done' ? 'muted' : 'err', text: `${e.state === 'done' ? 'error of an earlier attempt' : 'last error'}: ${e.lastError}` }) : '');
}

render().catch((err) => showError(content, err));
