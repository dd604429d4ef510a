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
    field('status', status), field('min duration', minMs), field('from', from), field('to', to), el('button', { type: 'submit', text: 'Search' }));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const p = new URLSearchParams();
    for (const [k, v] of [['service', service.value], ['name', name.value], ['status', status.value], ['min_ms', minMs.value], ['from', from.value], ['to', to.value]]) if (v) p.set(k, v);
    if (key.value && value.value) p.set('attr', `${key.value}=${value.value}`);
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

async function list() {
  const results = document.getElementById('results');
  try {
    const p = new URLSearchParams(location.search);
    const r = await api(`/api/traces?${p}`);
    if (r.traces.length === 0) return results.replaceChildren(el('p', { class: 'empty', text: 'No traces match.' }));
    const t = el('table', {}, el('tr', {}, ...['started', 'root span', 'service', 'spans', 'errors', 'duration', 'trace id'].map((h) => el('th', { text: h }))));
    for (const tr of r.traces) {
      t.append(el('tr', { class: 'trace-row' },
        el('td', { class: 'mono', text: fmtNs(tr.startTimeUnixNano) }),
        el('td', {}, link('trace', { id: tr.traceId }, tr.rootName || '(no name)')),
        el('td', { text: tr.services.join(', ') }),
        el('td', { class: 'num', text: tr.spans }),
        el('td', { class: `num ${tr.errors ? 'err' : ''}`, text: tr.errors }),
        el('td', { class: 'num', text: fmtMs(tr.durationMs) }),
        el('td', { class: 'mono', text: tr.traceId })));
    }
    results.replaceChildren(t);
  } catch (err) {
    showError(results, err);
  }
}

render().catch((err) => showError(content, err));
