import { api, el, fmtTime, link, showError } from './common.js';

const content = document.getElementById('content');
const state = new URLSearchParams(location.search).get('state') || 'dead';

async function render() {
  const r = await api(`/api/events?state=${encodeURIComponent(state)}`);
  const tabs = el('p', {}, ...['dead', 'pending', 'claimed', 'done'].flatMap((s) => [link('events', { state: s }, s), ' ']));
  if (r.events.length === 0) return content.replaceChildren(tabs, el('p', { class: 'empty', text: `No ${state} events.` }));
  const t = el('table', {}, el('tr', {}, ...['event', 'type', 'block', 'version', 'attempts', 'last reason', 'enqueued', 'dead at'].map((h) => el('th', { text: h }))));
  for (const e of r.events) {
    t.append(el('tr', {},
      el('td', {}, link('event', { id: e.id }, e.id)),
      el('td', { text: e.eventType }),
      el('td', {}, link('block', { type: e.aggregateType, projection: e.projection, id: e.aggregateId }, e.aggregateId)),
      el('td', { text: e.aggregateVersion }),
      el('td', { text: e.attempts }),
      el('td', { text: e.lastReason || '' }),
      el('td', { class: 'mono', text: fmtTime(e.enqueuedAt) }),
      el('td', { class: 'mono', text: fmtTime(e.deadAt) })));
  }
  content.replaceChildren(tabs, t);
}

render().catch((err) => showError(content, err));
