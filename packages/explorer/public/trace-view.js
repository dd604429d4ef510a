// The waterfall's rows, virtualised: only the rows in and near the scroll box's viewport are in
// the DOM (a spacer keeps the scroll height), so a 10,000-span trace opens as fast as a small one.
// Collapse, find, selection, keyboard navigation and the zoom window work on the model of ALL
// rows; a row is made (from one template, every value as text) when it scrolls into view.
import { el, fmtMs } from './common.js';

export const ROW_H = 25; // px, every row (app.css: .wf-body .wf-row, .wf-body .wf-group)
const OVERSCAN = 15;

/** Where each row's subtree ends: the first row after it that is not inside it. */
function ranges(rows) {
  const end = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    let j = i + 1;
    if (r.type === 'group') while (j < rows.length && rows[j].depth >= r.depth && !(rows[j].type === 'group' && rows[j].depth === r.depth)) j++;
    else if (r.type === 'span' && r.hasKids) while (j < rows.length && rows[j].depth > r.depth) j++;
    end[i] = j;
  }
  return end;
}

const expandable = (r) => r.type === 'group' || (r.type === 'span' && r.hasKids);

/**
 * The rows' view. `rows` from trace-model.js; `t0` (BigInt ns) and `total` (ns) the time axis;
 * `onSelect(i)` when a row is chosen (click, Enter, find).
 */
export function createWaterfall({ rows, t0, total, label, onSelect }) {
  const n = rows.length;
  const end = ranges(rows);
  const collapsed = new Set();
  const view = { from: 0, to: total };
  let vis = [];                       // indices of the rows not inside a collapsed one, in order
  const pos = new Int32Array(n);      // row index -> its place in vis, or -1
  let matches = new Set();
  let sel = -1;
  let focusIdx = -1;                  // the row holding the focus is kept in the DOM
  const made = new Map();             // row index -> its element, for the rows in the DOM

  const axis = el('div', { class: 'wf-axis' }, el('div', { text: 'span' }), el('div', { class: 'ticks' }));
  const spacer = el('div', { class: 'wf-spacer' });
  const body = el('div', { class: 'wf-body', id: 'wf-body' }, spacer);
  const root = el('div', { class: 'wf', id: 'waterfall', role: 'tree', 'aria-label': label }, axis, body);

  const tpl = el('div', { class: 'wf-row', role: 'treeitem', tabindex: '0' },
    el('div', { class: 'wf-label' }, el('span', { class: 'tog', 'aria-hidden': 'true' }), el('span', { class: 'name' }), el('span', { class: 'svc' })),
    el('div', { class: 'wf-track' }, el('div', { class: 'wf-bar' }), el('span', { class: 'wf-dur' })));

  function make(i) {
    const r = rows[i];
    const pad = `${6 + r.depth * 14}px`;
    let e;
    if (r.type === 'group') {
      e = el('div', { class: `wf-group${r.lost ? ' lost' : ''} o-${String(r.outcome || 'none').replace(/ /g, '-')}`, role: 'treeitem', tabindex: '0', 'aria-level': r.depth + 1 },
        el('span', { class: 'tog', 'aria-hidden': 'true' }), el('span', { class: 'gtext', text: r.text }));
      e.style.paddingLeft = pad;
    } else {
      const s = r.span;
      const name = s ? s.name : r.name;
      const durMs = Number(r.endNs - r.startNs) / 1e6;
      e = tpl.cloneNode(true);
      const lab = e.firstChild;
      const [, nameEl, svc] = lab.childNodes;
      const bar = e.lastChild.firstChild;
      const durText = e.lastChild.lastChild;
      nameEl.textContent = name;
      svc.textContent = s ? s.service : 'outbox';
      lab.style.paddingLeft = pad;
      bar.className = `wf-bar ${s ? r.cls : `syn ${r.kind}`}`;
      durText.textContent = s ? (s.name.startsWith('queue wait') ? `queue wait ${fmtMs(durMs)}` : fmtMs(durMs)) : `${r.kind === 'dead' ? '' : `${fmtMs(durMs)} · `}${r.text}`;
      if (s && s.name.startsWith('queue wait')) e.className = 'wf-row queue-row';
      else if (!s) e.className = `wf-row syn-row ${r.kind}-row`;
      e.setAttribute('aria-level', String(r.depth + 1));
      e.setAttribute('aria-label', `${name}, ${s ? s.service : 'reconstructed from the outbox'}, ${durText.textContent}`);
      if (s) e.dataset.spanId = s.spanId;
      else e.dataset.kind = r.kind;
      place(e, i);
    }
    e.dataset.i = String(i);
    return e;
  }

  /** A row's bar and duration label in the current zoom window. */
  function place(e, i) {
    const r = rows[i];
    const bar = e.lastChild.firstChild;
    const durText = e.lastChild.lastChild;
    const span = Math.max(1, view.to - view.from);
    const a = Number(r.startNs - t0);
    const b = Number(r.endNs - t0);
    const left = ((a - view.from) / span) * 100;
    const width = Math.max(((b - a) / span) * 100, 0);
    bar.style.left = `${left}%`;
    bar.style.width = `${width}%`;
    // Near the right edge the duration goes before the bar, so they never overlap; a wide bar
    // reaching the right edge (or wider than a third of the track) holds its duration inside.
    const inside = left + width > 70 && (left < 30 || width > 35);
    durText.classList.toggle('inside', inside);
    if (left + width > 70 && !inside) { durText.style.left = ''; durText.style.right = `${Math.min(100, Math.max(0, 100 - left + 0.5))}%`; }
    else { durText.style.right = ''; durText.style.left = `${Math.max(0, left + width > 70 ? left + 0.5 : left + width + 0.5)}%`; }
  }

  /** The state that changes after a row is made: collapsed, selected, matching, its place. */
  function state(e, i) {
    const r = rows[i];
    e.style.top = `${pos[i] * ROW_H}px`;
    if (expandable(r)) {
      e.setAttribute('aria-expanded', String(!collapsed.has(i)));
      e.querySelector('.tog').textContent = collapsed.has(i) ? '▸' : '▾';
    }
    e.classList.toggle('sel', i === sel);
    e.classList.toggle('match', matches.has(i));
  }

  function relist() {
    vis = [];
    pos.fill(-1);
    let i = 0;
    while (i < n) {
      pos[i] = vis.length;
      vis.push(i);
      i = collapsed.has(i) ? end[i] : i + 1;
    }
    spacer.style.height = `${vis.length * ROW_H}px`;
  }

  /** Puts the rows of the viewport (and the focused row) in the DOM, in order, and no others. */
  function render() {
    const top = body.scrollTop;
    const h = body.clientHeight || 800;
    const a = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const b = Math.min(vis.length, Math.ceil((top + h) / ROW_H) + OVERSCAN);
    const want = vis.slice(a, b);
    if (focusIdx >= 0 && pos[focusIdx] >= 0 && (pos[focusIdx] < a || pos[focusIdx] >= b)) {
      want.push(focusIdx);
      want.sort((x, y) => x - y);
    }
    // A merge of two sorted lists: elements are added and removed around the ones kept, so the
    // focused row is never detached (that would drop the focus) and the DOM order is the Tab order.
    let child = spacer.firstChild;
    for (const i of want) {
      while (child && Number(child.dataset.i) < i) {
        const next = child.nextSibling;
        made.delete(Number(child.dataset.i));
        child.remove();
        child = next;
      }
      if (child && Number(child.dataset.i) === i) {
        state(child, i);
        child = child.nextSibling;
      } else {
        const e = made.get(i) || make(i);
        made.set(i, e);
        state(e, i);
        spacer.insertBefore(e, child);
      }
    }
    while (child) {
      const next = child.nextSibling;
      made.delete(Number(child.dataset.i));
      child.remove();
      child = next;
    }
  }

  function ticks() {
    const span = Math.max(1, view.to - view.from);
    const box = axis.lastChild;
    box.replaceChildren();
    for (let k = 0; k <= 4; k++) {
      const at = (view.from + (span * k) / 4) / 1e6;
      const tick = el('span', { class: 'tick', text: at === 0 ? '0' : fmtMs(at) });
      tick.style.left = `${Math.min(k * 25, 93)}%`;
      box.append(tick);
    }
  }

  /** Scrolls row i into the box: `center`, or just enough ('nearest'). Then renders. */
  function reveal(i, how = 'nearest') {
    let opened = false;
    for (const c of [...collapsed]) if (c < i && end[c] > i) { collapsed.delete(c); opened = true; }
    if (opened) relist();
    const y = pos[i] * ROW_H;
    const h = body.clientHeight || 800;
    if (how === 'center') body.scrollTop = Math.max(0, y - h / 2 + ROW_H / 2);
    else if (y < body.scrollTop) body.scrollTop = y;
    else if (y + ROW_H > body.scrollTop + h) body.scrollTop = y + ROW_H - h;
    render();
    return made.get(i);
  }

  function focusRow(i) {
    focusIdx = i;
    const e = reveal(i);
    e?.focus({ preventScroll: true });
    e?.scrollIntoView({ block: 'nearest' });
  }

  const api = {
    root,
    rows,
    get visibleCount() { return vis.length; },
    get matches() { return matches; },
    setMatches(set) { matches = set; render(); },
    select(i, { focus = true, center = false } = {}) {
      sel = i;
      if (focus) focusRow(i);
      else { const e = reveal(i, center ? 'center' : 'nearest'); e?.scrollIntoView({ block: 'nearest' }); }
      render();
      onSelect(i);
    },
    toggle(i, open) {
      if (!expandable(rows[i])) return;
      if (open ?? collapsed.has(i)) collapsed.delete(i); else collapsed.add(i);
      relist();
      render();
    },
    collapseGroups() { rows.forEach((r, i) => { if (r.type === 'group') collapsed.add(i); }); relist(); render(); },
    expandAll() { collapsed.clear(); relist(); render(); },
    setView(from, to) {
      view.from = from;
      view.to = to;
      for (const [i, e] of made) if (rows[i].type !== 'group') place(e, i);
      ticks();
    },
    get view() { return { ...view }; },
    /** Renders the rows of the viewport: once the waterfall is in the page (it measures the box). */
    render,
  };

  root.addEventListener('click', (ev) => {
    const e = ev.target.closest('[data-i]');
    if (!e) return;
    const i = Number(e.dataset.i);
    if (ev.target.classList.contains('tog') || rows[i].type === 'group') api.toggle(i);
    api.select(i);
  });
  root.addEventListener('focusin', (ev) => {
    const e = ev.target.closest('[data-i]');
    if (e) focusIdx = Number(e.dataset.i);
  });
  // Keys move over all rows, not only the ones in the DOM: the next row is made and scrolled to.
  root.addEventListener('keydown', (ev) => {
    const e = ev.target.closest('[data-i]');
    if (!e) return;
    const i = Number(e.dataset.i);
    const p = pos[i];
    const page = Math.max(1, Math.floor((body.clientHeight || 800) / ROW_H) - 1);
    const go = (k) => { ev.preventDefault(); focusRow(vis[Math.max(0, Math.min(vis.length - 1, k))]); };
    if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); api.select(i); }
    else if (ev.key === 'ArrowDown') go(p + 1);
    else if (ev.key === 'ArrowUp') go(p - 1);
    else if (ev.key === 'Home') go(0);
    else if (ev.key === 'End') go(vis.length - 1);
    else if (ev.key === 'PageDown') go(p + page);
    else if (ev.key === 'PageUp') go(p - page);
    else if (ev.key === 'ArrowLeft') api.toggle(i, false);
    else if (ev.key === 'ArrowRight') api.toggle(i, true);
    // Tab goes through every row, as it would if all were in the DOM; past the last (or before
    // the first, with Shift) it leaves the waterfall as usual.
    else if (ev.key === 'Tab' && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
      const k = p + (ev.shiftKey ? -1 : 1);
      if (k >= 0 && k < vis.length) go(k);
    }
  });
  body.addEventListener('scroll', () => render(), { passive: true });

  relist();
  ticks();
  return api;
}
