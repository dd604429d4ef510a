// The side panel of the waterfall: the outbox facts first (attempt, outcome, reason, lease
// owner, previous owner, lease age, rows affected), then the span's own fields, then the raw
// attributes, events, links and resource. Every value goes in as text.
import { api, el, fmtMs, fmtNs, kvTable, link, showError } from './common.js';
import { KINDS, reasonText } from './trace-model.js';

const STATUS = ['unset', 'ok', 'error'];

function facts(pairs) {
  const t = el('table', { class: 'facts' });
  for (const [k, v, cls] of pairs) {
    if (v === undefined || v === null || v === '') continue;
    t.append(el('tr', {}, el('th', { scope: 'row', text: k }), el('td', { class: cls || '', text: String(v) })));
  }
  return t.childElementCount ? t : null;
}

/** The outbox facts of a row: from its span's attributes, else from the attempt's record. */
function outboxPairs(row) {
  const a = row.span ? row.span.attributes : {};
  const f = row.facts || {};
  const ack = a['loomtrace.ack.rows_affected'];
  return [
    ['attempt', a['loomtrace.attempt'] ?? f.attempt],
    ['outcome', a['loomtrace.outcome'] ?? f.outcome],
    // Its own failure (the outbox's record, or the next attempt's "retried because"); then what
    // the attempt before it failed with, kept apart so a healed attempt never wears it.
    ['failed with', reasonText(f.reason || null)],
    ['retried after', reasonText(a['loomtrace.retry.reason'] || null)],
    ['error', f.error],
    ['lease owner', a['loomtrace.lease.owner'] ?? f.owner],
    ['previous owner', a['loomtrace.lease.previous_owner'] ?? f.previousOwner],
    ['lease age', (a['loomtrace.lease.age_ms'] ?? f.leaseAgeMs) != null ? fmtMs(Number(a['loomtrace.lease.age_ms'] ?? f.leaseAgeMs)) : null],
    ['rows affected (guarded ack)', ack !== undefined ? `${ack}${ack === 0 ? ' — stale ack: the lease was lost' : ''}` : null, ack === 0 ? 'err' : ''],
    ['write result', a['loomtrace.write.result']],
    ['retry delay', a['loomtrace.retry.delay_ms'] != null ? fmtMs(Number(a['loomtrace.retry.delay_ms'])) : f.delayMs != null && f.outcome === 'retry' ? fmtMs(f.delayMs) : null],
    ['queue wait', a['loomtrace.queue_wait_ms'] != null ? fmtMs(Number(a['loomtrace.queue_wait_ms'])) : null],
    ['event', a['messaging.message.id'] ?? row.event],
  ];
}

/**
 * "Why is this … not in …?" for the pipeline of the span's own event (the outbox row says its
 * aggregate type and projection), else of the trace's event for the same aggregate id.
 */
function whyLink(a, events) {
  const eventId = a['messaging.message.id'];
  const aggId = a['loomtrace.aggregate.id'] ?? a['loomtrace.block.id'];
  const ev = (eventId !== undefined && events.find((e) => e.id === String(eventId))) || (aggId !== undefined && events.find((e) => e.aggregateId === String(aggId))) || null;
  if (ev) return link('block', { type: ev.aggregateType, projection: ev.projection, id: ev.aggregateId }, `why is this ${ev.aggregateType} not in ${ev.projection}?`);
  if (a['loomtrace.block.id'] !== undefined) return link('block', { type: 'block', id: String(a['loomtrace.block.id']) }, 'why is this block not in search?');
  return null;
}

export function showPanel(row, box, events = []) {
  const s = row.span;
  const parts = [el('h2', { id: 'panel-title', text: s ? s.name : row.type === 'group' ? row.text : `${row.name} (${row.text})` })];
  if (row.facts?.reconstructed || row.lost) parts.push(el('p', { class: 'note', text: 'Reconstructed from loomtrace.outbox_attempts: no span was exported for it (the worker died, or the reclaim sweep wrote it).' }));
  const o = facts(outboxPairs(row));
  if (o) parts.push(el('h3', { text: 'Outbox' }), o);
  if (!s) {
    if (row.startNs !== undefined) parts.push(facts([['from', fmtNs(row.startNs.toString())], ['duration', fmtMs(Number(row.endNs - row.startNs) / 1e6)]]));
    return box.replaceChildren(...parts.filter(Boolean));
  }
  const dur = Number(BigInt(s.endTimeUnixNano) - BigInt(s.startTimeUnixNano)) / 1e6;
  const spanFacts = facts([
    ['service', s.service], ['duration', fmtMs(dur)], ['start', fmtNs(s.startTimeUnixNano)], ['kind', KINDS[s.kind] || s.kind],
    ['status', STATUS[s.status.code] || s.status.code, s.status.code === 2 ? 'err' : ''],
    ['span id', s.spanId, 'mono'], ['parent', s.parentSpanId || '(root)', 'mono'],
  ]);
  parts.push(el('h3', { text: 'Span' }), spanFacts);
  const more = el('p');
  const eventId = s.attributes['messaging.message.id'];
  if (eventId !== undefined) more.append(link('event', { id: String(eventId) }, `replay event ${eventId}`), ' · ');
  const why = whyLink(s.attributes, events);
  if (why) more.append(why);
  parts.push(more);
  const links = el('div');
  for (const l of s.links) {
    const role = l.attributes && l.attributes['loomtrace.link'] ? `${l.attributes['loomtrace.link']}: ` : '';
    const a = link('trace', { id: l.traceId, span: l.spanId }, `${role}${l.traceId} / ${l.spanId}`);
    a.className = 'mono span-link';
    links.append(el('div', {}, a));
  }
  if (s.links.length) parts.push(el('h3', { text: 'Links' }), links);
  parts.push(el('h3', { text: 'Attributes' }), kvTable(s.attributes));
  // The rest of the span (events, status message, dropped count, resource) is fetched for this one span.
  const rest = el('div', {}, el('p', { class: 'muted', text: 'loading…' }));
  parts.push(rest);
  box.replaceChildren(...parts.filter(Boolean));
  api(`/api/traces/${encodeURIComponent(s.traceId)}/spans/${encodeURIComponent(s.spanId)}`)
    .then((d) => {
      if (d.statusMessage) spanFacts.append(el('tr', {}, el('th', { scope: 'row', text: 'status message' }), el('td', { class: s.status.code === 2 ? 'err' : '', text: d.statusMessage })));
      if (d.dropped) spanFacts.append(el('tr', {}, el('th', { scope: 'row', text: 'dropped' }), el('td', { text: `${d.dropped} attribute(s)/event(s)/link(s) dropped or cut` })));
      const out = [];
      if (d.events.length) {
        out.push(el('h3', { text: 'Events' }));
        for (const e of d.events) out.push(el('h4', { text: `${fmtNs(e.timeUnixNano)}  ${e.name}` }), kvTable(e.attributes));
      }
      out.push(el('h3', { text: 'Resource' }), kvTable(d.resource));
      rest.replaceChildren(...out);
    })
    .catch((err) => showError(rest, err));
}
