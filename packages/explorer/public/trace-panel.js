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

export function showPanel(row, box) {
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
  parts.push(el('h3', { text: 'Span' }), facts([
    ['service', s.service], ['duration', fmtMs(dur)], ['start', fmtNs(s.startTimeUnixNano)], ['kind', KINDS[s.kind] || s.kind],
    ['status', `${STATUS[s.status.code] || s.status.code}${s.status.message ? `: ${s.status.message}` : ''}`, s.status.code === 2 ? 'err' : ''],
    ['span id', s.spanId, 'mono'], ['parent', s.parentSpanId || '(root)', 'mono'],
    ['dropped', s.dropped ? `${s.dropped} attribute(s)/event(s)/link(s) dropped or cut` : null],
  ]));
  const more = el('p');
  const eventId = s.attributes['messaging.message.id'];
  const blockId = s.attributes['loomtrace.block.id'];
  if (eventId !== undefined) more.append(link('event', { id: String(eventId) }, `replay event ${eventId}`), ' · ');
  if (blockId) more.append(link('block', { id: String(blockId) }, 'why is this block not in search?'));
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
  if (s.events.length) {
    parts.push(el('h3', { text: 'Events' }));
    for (const e of s.events) parts.push(el('h4', { text: `${fmtNs(e.timeUnixNano)}  ${e.name}` }), kvTable(e.attributes));
  }
  const resource = el('div', {}, el('p', { class: 'muted', text: 'loading…' }));
  parts.push(el('h3', { text: 'Resource' }), resource);
  box.replaceChildren(...parts.filter(Boolean));
  api(`/api/traces/${encodeURIComponent(s.traceId)}/spans/${encodeURIComponent(s.spanId)}`)
    .then((r) => resource.replaceChildren(kvTable(r.resource)))
    .catch((err) => showError(resource, err));
}
