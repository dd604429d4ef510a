// Pipeline health: cards for now, per-minute series drawn with uPlot (served from this origin),
// a range selector, a cursor tooltip (uPlot's live legend), and an empty state per chart.
import uPlot from './uPlot.esm.js';
import { api, el, fmtMs, showError } from './common.js';

const content = document.getElementById('content');
const RANGES = [[15, '15 min'], [30, '30 min'], [60, '1 h'], [360, '6 h'], [1440, '24 h']];
const css = (v) => getComputedStyle(document.documentElement).getPropertyValue(v).trim();
const msAxis = (v) => (v === 0 ? '0' : fmtMs(v));
const countAxis = (v) => (Number.isInteger(v) ? String(v) : '');

function chart(id, title, series, xs, fmt, minutes) {
  const box = el('section', { class: 'chart-box', id, 'aria-label': title });
  const has = series.some((s) => s.values.some((v) => v !== null && v !== 0));
  const head = el('h2', { text: title });
  if (!has) return el('div', {}, head, el('p', { class: 'empty', text: `No data in the last ${minutes} minutes.` }));
  const muted = css('--muted');
  const line = css('--line');
  const axis = { stroke: muted, grid: { stroke: line, width: 1 }, ticks: { stroke: line, width: 1 } };
  const opts = {
    width: 600,
    height: 180,
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: true } },
    axes: [{ ...axis }, { ...axis, size: 64, values: (u, vals) => vals.map(fmt) }],
    series: [{ value: (u, v) => (v === null ? '–' : new Date(v * 1000).toISOString().slice(11, 16)) },
      ...series.map((s) => ({ label: s.name, stroke: css(s.color), width: 1.8, points: { show: true, size: 4 }, value: (u, v) => (v === null ? '–' : fmt === msAxis ? fmtMs(v) : String(v)) }))],
  };
  const data = [xs, ...series.map((s) => s.values)];
  const plot = new uPlot(opts, data, box);
  const fit = () => plot.setSize({ width: Math.max(280, box.clientWidth - 12), height: 180 });
  new ResizeObserver(fit).observe(box);
  return el('div', {}, head, box);
}

async function render() {
  const minutes = Number(new URLSearchParams(location.search).get('minutes')) || 30;
  const h = await api(`/api/health?minutes=${encodeURIComponent(String(minutes))}`);
  const card = (label, value) => el('div', { class: 'card' }, el('b', { text: value }), label);
  const range = el('nav', { class: 'tabs', 'aria-label': 'time range' }, ...RANGES.flatMap(([m, label]) => {
    const a = el('a', { href: `/health?minutes=${m}`, text: label });
    if (m === minutes) a.setAttribute('aria-current', 'page');
    return [a, ' '];
  }));
  const cards = el('div', { class: 'cards' },
    card('queue depth (pending + claimed)', h.now.queueDepth),
    card('oldest pending', h.now.oldestPendingSeconds === null ? '–' : fmtMs(h.now.oldestPendingSeconds * 1000)),
    card('dead letters', h.now.dead),
    card('acked (all time)', h.now.done));
  const b = h.series;
  const xs = b.map((x) => Date.parse(x.t) / 1000);
  const steps = el('table', { id: 'steps' }, el('tr', {}, el('th', { scope: 'col', text: 'span' }), el('th', { scope: 'col', class: 'num', text: 'count' }), el('th', { scope: 'col', class: 'num', text: 'p95' })));
  for (const s of h.steps) steps.append(el('tr', {}, el('td', { text: s.name }), el('td', { class: 'num', text: s.count }), el('td', { class: 'num', text: fmtMs(s.p95Ms) })));
  const grid = el('div', { class: 'charts' });
  content.replaceChildren(range, cards, grid,
    el('h2', { text: `Per-step p95 (stored spans, last ${minutes} min)` }), h.steps.length ? steps : el('p', { class: 'empty', text: 'No spans stored in this range.' }));
  grid.append(
    chart('c-depth', 'Queue depth (pending + claimed, end of each minute)', [{ name: 'queue depth', color: '--k-server', values: b.map((x) => x.queueDepth) }], xs, countAxis, minutes),
    chart('c-age', 'Oldest unfinished event age', [{ name: 'age', color: '--warn', values: b.map((x) => (x.oldestUnfinishedSeconds === null ? null : x.oldestUnfinishedSeconds * 1000)) }], xs, msAxis, minutes),
    chart('c-lag', 'Commit → ack lag per minute', [
      { name: 'p50', color: '--k-server', values: b.map((x) => x.lagP50Ms) },
      { name: 'p95', color: '--k-producer', values: b.map((x) => x.lagP95Ms) },
      { name: 'p99', color: '--err', values: b.map((x) => x.lagP99Ms) }], xs, msAxis, minutes),
    chart('c-events', 'Events per minute', [
      { name: 'enqueued', color: '--queue', values: b.map((x) => x.enqueued) },
      { name: 'acked', color: '--ok', values: b.map((x) => x.done) }], xs, countAxis, minutes),
    chart('c-failures', 'Retries, lost leases and dead letters per minute', [
      { name: 'retries', color: '--warn', values: b.map((x) => x.retries) },
      { name: 'lost leases', color: '--k-consumer', values: b.map((x) => x.lost) },
      { name: 'dead', color: '--err', values: b.map((x) => x.dead) }], xs, countAxis, minutes));
}

render().catch((err) => showError(content, err));
