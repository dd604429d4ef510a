import { api, el, fmtMs, showError } from './common.js';

const content = document.getElementById('content');
const NS = 'http://www.w3.org/2000/svg';

function svg(tag, attrs = {}) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

/** A small line chart of several series over the same per-minute buckets. */
function chart(title, series, buckets) {
  const W = 640, H = 160, L = 48, B = 20;
  const s = svg('svg', { class: 'chart', width: W, height: H, viewBox: `0 0 ${W} ${H}` });
  let max = 0;
  for (const x of series) for (const v of x.values) if (v !== null && v > max) max = v;
  if (max === 0) max = 1;
  const X = (i) => L + (i / Math.max(1, buckets.length - 1)) * (W - L - 10);
  const Y = (v) => H - B - (v / max) * (H - B - 10);
  for (let i = 0; i <= 2; i++) {
    const v = (max * i) / 2;
    const t = svg('text', { x: 4, y: Y(v) + 3 });
    t.textContent = series[0].fmt ? series[0].fmt(v) : String(Math.round(v));
    s.append(t, svg('line', { x1: L, x2: W - 10, y1: Y(v), y2: Y(v), stroke: '#eceef3' }));
  }
  for (const x of series) {
    let d = '';
    x.values.forEach((v, i) => { if (v !== null) d += `${d ? 'L' : 'M'}${X(i).toFixed(1)},${Y(v).toFixed(1)}`; });
    if (d) s.append(svg('path', { d, fill: 'none', stroke: x.color, 'stroke-width': 1.6 }));
    // Dots too, so a minute with data between empty ones still shows.
    x.values.forEach((v, i) => { if (v !== null && v > 0) s.append(svg('circle', { cx: X(i).toFixed(1), cy: Y(v).toFixed(1), r: 2.5, fill: x.color })); });
  }
  const first = svg('text', { x: L, y: H - 4 });
  first.textContent = buckets[0] ? buckets[0].t.slice(11, 16) : '';
  const last = svg('text', { x: W - 44, y: H - 4 });
  last.textContent = buckets.length ? buckets[buckets.length - 1].t.slice(11, 16) : '';
  s.append(first, last);
  const legend = el('p', { class: 'legend' }, ...series.map((x) => {
    const i = el('i');
    i.style.background = x.color;
    return el('span', {}, i, x.name);
  }));
  return el('div', {}, el('h2', { text: title }), legend, s);
}

async function render() {
  const h = await api('/api/health?minutes=30');
  const card = (label, value) => el('div', { class: 'card' }, el('b', { text: value }), label);
  const cards = el('div', { class: 'cards' },
    card('queue depth (pending + claimed)', h.now.queueDepth),
    card('oldest pending', h.now.oldestPendingSeconds === null ? '–' : fmtMs(h.now.oldestPendingSeconds * 1000)),
    card('dead letters', h.now.dead),
    card('acked (all time)', h.now.done));
  const b = h.series;
  const steps = el('table', {}, el('tr', {}, el('th', { text: 'span' }), el('th', { text: 'count' }), el('th', { text: 'p95' })));
  for (const s of h.steps) steps.append(el('tr', {}, el('td', { text: s.name }), el('td', { class: 'num', text: s.count }), el('td', { class: 'num', text: fmtMs(s.p95Ms) })));
  content.replaceChildren(
    cards,
    chart('Queue depth (pending + claimed, end of each minute)', [
      { name: 'queue depth', color: '#3557d4', values: b.map((x) => x.queueDepth) },
    ], b),
    chart('Oldest unfinished event age', [
      { name: 'age', color: '#b7791f', values: b.map((x) => (x.oldestUnfinishedSeconds === null ? null : x.oldestUnfinishedSeconds * 1000)), fmt: fmtMs },
    ], b),
    chart('Commit → ack lag per minute', [
      { name: 'p50', color: '#3557d4', values: b.map((x) => x.lagP50Ms), fmt: fmtMs },
      { name: 'p95', color: '#d17a22', values: b.map((x) => x.lagP95Ms) },
      { name: 'p99', color: '#c62f3d', values: b.map((x) => x.lagP99Ms) },
    ], b),
    chart('Events per minute', [
      { name: 'enqueued', color: '#9aa3b8', values: b.map((x) => x.enqueued) },
      { name: 'acked', color: '#1f8a4c', values: b.map((x) => x.done) },
    ], b),
    chart('Retries, lost leases and dead letters per minute', [
      { name: 'retries', color: '#b7791f', values: b.map((x) => x.retries) },
      { name: 'lost leases', color: '#6b4fd1', values: b.map((x) => x.lost) },
      { name: 'dead', color: '#c62f3d', values: b.map((x) => x.dead) },
    ], b),
    el('h2', { text: 'Per-step p95 (stored spans, last 30 min)' }), steps);
}

render().catch((err) => showError(content, err));
