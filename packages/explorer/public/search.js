import { api, el, fmtMs, fmtNs, link, showError } from './common.js';

const content = document.getElementById('content');
const KEYS = ['loomtrace.block.id', 'loomtrace.aggregate.id', 'messaging.message.id', 'loomtrace.request.id', 'loomtrace.library.id'];

function field(label, input) {
  return el('label', {}, label, input);
}

async function render() {
  const q = new URLSearchParams(location.search);
  const service = el('select', { name: 'service' }, el('option', { value: '', text: 'any service' }));
  const name = el('input', { name: 'name', placeholder: 'e.g. PATCH /api/v1/blocks/:id', size: 28 });
  const key = el('select', { name: 'key' }, el('option', { value: '', text: 'no attribute' }), ...KEYS.map((k) => el('option', { value: k, text: k })));
  const value = el('input', { name: 'value', placeholder: 'value', size: 38 });
  const status = el('select', { name: 'status' }, ...['', 'error', 'ok', 'unset'].map((s) => el('option', { value: s, text: s || 'any status' })));
  const minMs = el('input', { name: 'min_ms', placeholder: 'ms', size: 6 });
  const from = el('input', { name: 'from', placeholder: '2026-01-01T00:00', size: 16 });
  const to = el('input', { name: 'to', placeholder: 'now', size: 16 });
  const attempts = el('select', { name: 'min_attempts' }, ...[['', 'any'], ['2', '2 or more (retried)'], ['3', '3 or more'], ['5', '5 or more']].map(([v, t]) => el('option', { value: v, text: t })));
  const outcome = el('select', { name: 'outcome' }, ...['', 'done', 'retry', 'lost', 'dead'].map((o) => el('option', { value: o, text: o || 'any outcome' })));
  const reclaimed = el('input', { type: 'checkbox', name: 'reclaimed' });
  const dead = el('input', { type: 'checkbox', name: 'dead' });
  const changes = el('input', { type: 'checkbox', name: 'changes' });
  attempts.value = q.get('min_attempts') || '';
  outcome.value = q.get('outcome') || '';
  reclaimed.checked = q.get('reclaimed') === '1';
  dead.checked = q.get('dead') === '1';
  changes.checked = q.get('changes') !== '0';
  name.value = q.get('name') || '';
  status.value = q.get('status') || '';
  minMs.value = q.get('min_ms') || '';
  from.value = q.get('from') || '';
  to.value = q.get('to') || '';
  const attr = q.get('attr');
  if (attr && attr.includes('=')) {
    key.value = attr.slice(0, attr.indexOf('='));
    value.value = attr.slice(attr.indexOf('=') + 1);
  }
  const form = el('form', { class: 'search' },
    field('service', service), field('span name', name), field('attribute', key), field('equals', value),
    field('status', status), field('min duration', minMs), field('from', from), field('to', to),
    field('attempts', attempts), field('attempt outcome', outcome),
    el('label', { class: 'check' }, reclaimed, 'reclaimed'), el('label', { class: 'check' }, dead, 'dead-lettered'),
    el('label', { class: 'check' }, changes, 'changes only (hide worker batches)'),
    el('button', { type: 'submit', text: 'Search' }));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of [['service', service.value], ['name', name.value], ['status', status.value], ['min_ms', minMs.value], ['from', from.value], ['to', to.value]]) if (v) p.set(k, v);
    if (key.value && value.value) p.set('attr', `${key.value}=${value.value}`);
    if (attempts.value) p.set('min_attempts', attempts.value);
    if (outcome.value) p.set('outcome', outcome.value);
    if (reclaimed.checked) p.set('reclaimed', '1');
    if (dead.checked) p.set('dead', '1');
    if (!changes.checked) p.set('changes', '0');
    history.replaceState(null, '', `/?${p}`);
    void list();
  });
  const results = el('div', { id: 'results' });
  content.replaceChildren(form, results);
  api('/api/services').then((r) => {
    for (const s of r.services) service.append(el('option', { value: s, text: s }));
    service.value = q.get('service') || '';
  }).catch(() => undefined);
  await list();
}

const COLS = [
  ['started', (t) => t.startTimeUnixNano.padStart(20, '0'), false],
  ['root span', (t) => t.rootName || '', false],
  ['service', (t) => t.services.join(', '), false],
  ['version', (t) => t.version ?? -1, true],
  ['spans', (t) => t.spans, true],
  ['attempts', (t) => t.maxAttempt ?? 0, true],
  ['retries', (t) => t.retries, true],
  ['errors', (t) => t.errors, true],
  ['duration', (t) => t.durationMs, true],
  ['trace id', (t) => t.traceId, false],
];
const sort = { col: 0, desc: true };

function table(traces) {
  const rows = traces.slice().sort((a, b) => {
    const f = COLS[sort.col][1];
    const x = f(a);
    const y = f(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (sort.desc ? -1 : 1);
  });
  const head = el('tr', {}, ...COLS.map(([name, , num], i) => {
    const b = el('button', { type: 'button', class: 'sort', text: `${name}${sort.col === i ? (sort.desc ? ' ▼' : ' ▲') : ''}` });
    b.addEventListener('click', () => {
      sort.desc = sort.col === i ? !sort.desc : true;
      sort.col = i;
      document.getElementById('results').replaceChildren(table(traces));
    });
    return el('th', { scope: 'col', class: num ? 'num' : '', 'aria-sort': sort.col === i ? (sort.desc ? 'descending' : 'ascending') : 'none' }, b);
  }));
  const t = el('table', { id: 'traces' }, head);
  for (const tr of rows) {
    t.append(el('tr', { class: 'trace-row', dataset: { traceId: tr.traceId } },
      el('td', { class: 'mono', text: fmtNs(tr.startTimeUnixNano) }),
      el('td', {}, link('trace', { id: tr.traceId }, tr.rootName || '(no name)')),
      el('td', { text: tr.services.join(', ') }),
      el('td', { class: 'num', text: tr.version ?? '' }),
      el('td', { class: 'num', text: tr.spans }),
      el('td', { class: 'num', text: tr.maxAttempt ?? '' }),
      el('td', { class: `num ${tr.retries ? 'warn' : ''}`, text: tr.retries }),
      el('td', { class: `num ${tr.errors ? 'err' : ''}`, text: tr.errors }),
      el('td', { class: 'num', text: fmtMs(tr.durationMs) }),
      el('td', { class: 'mono', text: tr.traceId })));
  }
  return t;
}

async function list() {
  const results = document.getElementById('results');
  try {
    const p = new URLSearchParams(location.search);
    if (!p.has('changes')) p.set('changes', '1');
    if (p.get('changes') === '0') p.delete('changes');
    const r = await api(`/api/traces?${p}`);
    if (r.traces.length === 0) return results.replaceChildren(el('p', { class: 'empty', text: 'No traces match.' }));
    results.replaceChildren(table(r.traces));
  } catch (err) {
    showError(results, err);
  }
}

render().catch((err) => showError(content, err));
