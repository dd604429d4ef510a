import { api, el, fmtTime, link, param, showError } from './common.js';

const content = document.getElementById('content');
const GOOD = new Set(['visible', 'deleted_and_removed', 'superseded']);
const WAIT = new Set(['queued', 'in_progress', 'retrying', 'lease_expired']);

async function render() {
  const id = param('id');
  const input = el('input', { size: 40, placeholder: 'block id (UUID)', name: 'id' });
  input.value = id || '';
  const form = el('form', { class: 'search' }, input, el('button', { type: 'submit', text: 'Diagnose' }));
  form.addEventListener('submit', (e) => { e.preventDefault(); location.search = `?id=${encodeURIComponent(input.value.trim())}`; });
  if (!id) return content.replaceChildren(form);
  const d = await api(`/api/diagnosis/block/${encodeURIComponent(id)}`);
  const cls = GOOD.has(d.kind) ? 'good' : WAIT.has(d.kind) ? 'wait' : 'bad';
  const verdict = el('div', { class: `verdict ${cls}`, id: 'verdict', dataset: { kind: d.kind } }, d.verdict);
  const steps = el('ol', { class: 'steps', id: 'steps' });
  for (const s of d.steps) {
    steps.append(el('li', { dataset: { step: s.step, status: s.status } },
      el('span', {}, el('span', { class: `badge ${s.status}`, text: s.status })),
      el('span', { text: s.label }),
      el('span', { class: 'mono', text: fmtTime(s.at) }),
      el('span', { text: s.detail })));
  }
  const facts = el('p', { class: 'muted' });
  if (d.block) facts.append(`source: version ${d.block.version}${d.block.deleted ? ' (deleted)' : ''}. `);
  if (d.index) facts.append(`index: version ${d.index.version}${d.index.deleted ? ' (tombstone)' : ''}. `);
  if (d.queue) facts.append(`queue depth ${d.queue.depth}, ${d.queue.workers} worker connection(s). `);
  const links = el('p');
  if (d.trace) {
    if (d.trace.storedSpans > 0) links.append(link('trace', { id: d.trace.traceId }, `open the trace (${d.trace.storedSpans} spans)`), ' · ');
    else links.append(el('span', { class: 'muted', text: `trace ${d.trace.traceId} ${d.trace.sampled ? 'has no stored spans' : 'was sampled out'}` }), ' · ');
  }
  if (d.event) links.append(link('event', { id: d.event.id }, `replay event ${d.event.id}`));
  const attempts = el('div');
  if (d.attempts.length) {
    const t = el('table', {}, el('tr', {}, ...['attempt', 'outcome', 'reason', 'worker', 'claimed', 'finished', 'delay'].map((h) => el('th', { text: h }))));
    for (const a of d.attempts) t.append(el('tr', {}, el('td', { text: a.attempt }), el('td', { text: a.outcome }), el('td', { text: a.reason || '' }), el('td', { text: a.owner || '' }), el('td', { class: 'mono', text: fmtTime(a.claimedAt) }), el('td', { class: 'mono', text: fmtTime(a.finishedAt) }), el('td', { text: a.delayMs ?? '' })));
    attempts.append(el('h2', { text: 'Attempts that did not end in an ack' }), t);
  }
  content.replaceChildren(form, verdict, el('h2', { text: 'Declared steps' }), steps, facts, links, attempts);
}

render().catch((err) => showError(content, err));
