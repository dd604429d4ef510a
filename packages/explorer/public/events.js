import { api, el, fmtTime, link, showError } from './common.js';

const content = document.getElementById('content');
const state = new URLSearchParams(location.search).get('state') || 'dead';

async function render() {
  document.title = `${state === 'dead' ? 'Dead letters' : `${state} events`} · loomtrace explorer`;
  const r = await api(`/api/events?state=${encodeURIComponent(state)}`);
  const tabs = el('nav', { class: 'tabs', 'aria-label': 'event state' }, ...['dead', 'pending', 'claimed', 'done'].flatMap((s) => {
    const a = link('events', { state: s }, s);
    if (s === state) a.setAttribute('aria-current', 'page');
    return [a, ' '];
  }));
  if (r.events.length === 0) return content.replaceChildren(tabs, el('p', { class: 'empty', text: `No ${state} events.` }));
  const when = state === 'dead' ? 'dead at' : state === 'done' ? 'done at' : 'enqueued';
  // The aggregate column is named by the events' aggregate type (one type listed), else "aggregate".
  const types = new Set(r.events.map((e) => e.aggregateType));
  const aggregate = types.size === 1 ? [...types][0] : 'aggregate';
  const t = el('table', { id: 'events' }, el('tr', {}, ...['event', 'type', aggregate, 'version', 'attempts', 'reason', 'error', when, 'trace'].map((h) => el('th', { scope: 'col', class: h === 'event' || h === 'version' || h === 'attempts' ? 'num' : '', text: h }))));
  for (const e of r.events) {
    const reason = el('td', {}, e.lastReason || '');
    if (e.superseded) reason.append(' ', el('span', { class: 'badge superseded', title: `a later version of this ${e.aggregateType} reached ${e.projection}: replaying this event changes nothing`, text: 'superseded' }));
    t.append(el('tr', { dataset: { id: e.id } },
      el('td', { class: 'num' }, link('event', { id: e.id }, e.id)),
      el('td', { text: e.eventType }),
      el('td', { class: 'mono' }, link('block', { type: e.aggregateType, projection: e.projection, id: e.aggregateId }, e.aggregateId)),
      el('td', { class: 'num', text: e.aggregateVersion }),
      el('td', { class: 'num', text: e.attempts }),
      reason,
      el('td', { class: 'mono err-text', text: e.lastError || '' }),
      el('td', { class: 'mono', text: fmtTime(state === 'dead' ? e.deadAt : state === 'done' ? e.doneAt : e.enqueuedAt) }),
      el('td', {}, e.traceId ? link('trace', { id: e.traceId }, e.traceId.slice(0, 8)) : el('span', { class: 'muted', text: 'none' }))));
  }
  content.replaceChildren(tabs, t);
}

render().catch((err) => showError(content, err));
