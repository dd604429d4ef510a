import { api, el, fmtTime, link, param, showError } from './common.js';

const content = document.getElementById('content');

async function render() {
  const id = param('id');
  const input = el('input', { size: 12, placeholder: 'event id' });
  input.value = id || '';
  const form = el('form', { class: 'search' }, input, el('button', { type: 'submit', text: 'Replay' }));
  form.addEventListener('submit', (e) => { e.preventDefault(); location.search = `?id=${encodeURIComponent(input.value.trim())}`; });
  if (!id) return content.replaceChildren(form);
  const r = await api(`/api/events/${encodeURIComponent(id)}`);
  const e = r.event;
  const head = el('p', {}, `event ${e.id} · ${e.eventType} · ${e.aggregateType} `, link('block', { id: e.aggregateId }, e.aggregateId), ` v${e.aggregateVersion} · state `, el('b', { text: e.state }), ` · ${e.attempts} attempt(s)${e.reclaims ? ` · ${e.reclaims} reclaim(s)` : ''}`);
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
  content.replaceChildren(form, head, t, e.lastError ? el('p', { class: 'err', text: `last error: ${e.lastError}` }) : '');
}

render().catch((err) => showError(content, err));
