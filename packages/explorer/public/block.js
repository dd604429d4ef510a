import { api, el, fmtTime, link, param, showError } from './common.js';

// "Why is this <aggregate> not in <projection>?" for any pipeline the application declared.
const content = document.getElementById('content');
const title = document.getElementById('title');
const GOOD = new Set(['visible', 'deleted_and_removed', 'superseded']);
const WAIT = new Set(['queued', 'in_progress', 'retrying', 'lease_expired']);

const question = (p) => `Why is this ${p.labels.aggregate} not in ${p.labels.projection}?`;

async function render() {
  const { pipelines } = await api('/api/pipelines');
  if (!pipelines.length) {
    title.textContent = 'Why is this change not in its projection?';
    return content.replaceChildren(el('p', { class: 'muted', text: 'No pipeline is declared: the application passes its pipelines to startExplorer (see docs/pipelines.md). Traces, events and health work without them.' }));
  }
  const id = param('id');
  const type = param('type') || pipelines[0].aggregateType;
  const projection = param('projection') || pipelines.find((p) => p.aggregateType === type)?.projection || '';
  const current = pipelines.find((p) => p.aggregateType === type && p.projection === projection) || pipelines[0];
  title.textContent = question(current);
  document.title = `${question(current)} · loomtrace explorer`;

  const select = el('select', { name: 'pipeline' });
  pipelines.forEach((p, i) => {
    const o = el('option', { value: String(i), text: `${p.labels.aggregate} → ${p.labels.projection} (${p.system})` });
    if (p === current || (p.aggregateType === current.aggregateType && p.projection === current.projection)) o.selected = true;
    select.append(o);
  });
  const input = el('input', { size: 40, placeholder: `${current.labels.aggregate} id`, name: 'id' });
  input.value = id || '';
  const form = el('form', { class: 'search' }, select, input, el('button', { type: 'submit', text: 'Diagnose' }));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const p = pipelines[Number(select.value)] || current;
    location.search = `?${new URLSearchParams({ type: p.aggregateType, projection: p.projection, id: input.value.trim() })}`;
  });
  if (!id) return content.replaceChildren(form);
  const d = await api(`/api/diagnosis/${encodeURIComponent(current.aggregateType)}/${encodeURIComponent(id)}?${new URLSearchParams({ projection: current.projection })}`);
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
  if (d.source) facts.append(`source: version ${d.source.version}${d.source.deleted ? ' (deleted)' : ''}. `);
  if (d.projected) facts.append(`${current.labels.projection} (${d.system}): ${d.projected.version === null ? 'removed' : `version ${d.projected.version}`}${d.projected.deleted ? ' (tombstone)' : ''}. `);
  else if (d.projectionError) facts.append(`${current.labels.projection} (${d.system}) did not answer: ${d.projectionError}. `);
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
