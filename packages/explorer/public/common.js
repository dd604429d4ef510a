// Shared helpers. Every value from the server is rendered with textContent (never innerHTML),
// so a span named `<img src=x onerror=alert(1)>` stays text.

/** Makes an element; `text` goes through textContent, children are appended. */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'text') e.textContent = String(v);
    else if (k === 'class') e.className = v;
    else if (k === 'href') e.setAttribute('href', v);
    else if (k === 'onclick') e.addEventListener('click', v);
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else e.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

export async function api(path) {
  const r = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  let body;
  try { body = await r.json(); } catch { body = {}; }
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}

export const param = (name) => new URLSearchParams(location.search).get(name);

/** Link to one of our pages; the query values are encoded. */
export function link(page, params, text) {
  const q = new URLSearchParams(params).toString();
  return el('a', { href: `/${page}${q ? `?${q}` : ''}`, text });
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return '–';
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  if (ms < 120000) return `${(ms / 1000).toFixed(2)} s`;
  return `${(ms / 60000).toFixed(1)} min`;
}

export function fmtNs(ns) {
  const ms = Number(BigInt(ns) / 1000000n);
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

export function fmtTime(iso) {
  return iso ? iso.replace('T', ' ').replace('Z', '') : '–';
}

export function showError(container, err) {
  container.replaceChildren(el('p', { class: 'err', text: err.message || String(err) }));
}

export function valueText(v) {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** A two-column table of key/value pairs, as text. */
export function kvTable(obj) {
  const t = el('table');
  const keys = Object.keys(obj || {}).sort();
  if (keys.length === 0) return el('p', { class: 'muted', text: 'none' });
  for (const k of keys) t.append(el('tr', {}, el('td', { class: 'mono', text: k }), el('td', { class: 'mono', text: valueText(obj[k]) })));
  return t;
}
