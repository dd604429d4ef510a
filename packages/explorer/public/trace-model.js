// The waterfall's rows, from the spans and the outbox's own record of the trace's events.
// Pure data (no DOM): spans nested by parent; each attempt of an event a labelled group with its
// own outcome and its own failure; the backoff before a retry as a segment; an attempt whose
// worker died before exporting its spans reconstructed from loomtrace.outbox_attempts and
// marked as such; a dead letter written by the reclaim sweep as a final row.

export const KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'];
const A = {
  attempt: 'loomtrace.attempt', outcome: 'loomtrace.outcome', reason: 'loomtrace.retry.reason', owner: 'loomtrace.lease.owner',
  reclaimed: 'loomtrace.reclaimed', prevOwner: 'loomtrace.lease.previous_owner', leaseAge: 'loomtrace.lease.age_ms',
  ackRows: 'loomtrace.ack.rows_affected', write: 'loomtrace.write.result', msg: 'messaging.message.id',
};

/** ISO timestamp with microseconds (as the outbox query writes them) to Unix nanoseconds. */
export function isoNs(iso) {
  const ms = Date.parse(`${iso.slice(0, 23)}Z`);
  const us = /^\d{3}/.test(iso.slice(23, 26)) ? BigInt(iso.slice(23, 26)) : 0n;
  return BigInt(ms) * 1000000n + us * 1000n;
}

/** Why an attempt ended, in words: a lost lease says whether the worker died or the lease ran out. */
export function reasonText(reason) {
  if (reason === 'worker_gone') return 'worker gone';
  if (reason === 'lease_expired') return 'lease expired';
  return reason;
}

/** Depth-first order, children by start time; spans whose parent is missing are roots. */
export function order(spans) {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const kids = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parentSpanId && byId.has(s.parentSpanId)) {
      if (!kids.has(s.parentSpanId)) kids.set(s.parentSpanId, []);
      kids.get(s.parentSpanId).push(s);
    } else roots.push(s);
  }
  const out = [];
  const stack = roots.slice().reverse().map((s) => [s, 0, null]);
  while (stack.length) {
    const [s, d, parent] = stack.pop();
    const c = kids.get(s.spanId) || [];
    out.push({ span: s, depth: d, parent, hasKids: c.length > 0 });
    for (let i = c.length - 1; i >= 0; i--) stack.push([c[i], d + 1, s.spanId]);
  }
  return out;
}

const isQueue = (s) => s.name.startsWith('queue wait');
const isProcess = (s) => s.name.startsWith('process ');
const attemptOf = (s) => (typeof s.attributes[A.attempt] === 'number' ? s.attributes[A.attempt] : undefined);

/** Per event and attempt: its spans and its row of outbox_attempts. */
function attemptIndex(spans, outbox) {
  const idx = new Map();
  const get = (ev, n) => {
    const k = `${ev}/${n}`;
    if (!idx.has(k)) idx.set(k, { event: ev, attempt: n, queue: null, process: null, history: null });
    return idx.get(k);
  };
  for (const s of spans) {
    const n = attemptOf(s);
    const ev = s.attributes[A.msg];
    if (n === undefined || ev === undefined) continue;
    if (isQueue(s)) get(String(ev), n).queue = s;
    else if (isProcess(s)) get(String(ev), n).process = s;
  }
  for (const e of outbox) for (const h of e.history) {
    // A replayed event starts its attempts again: the newest record of a number wins.
    get(e.id, h.attempt).history = h;
  }
  return idx;
}

/** The facts of one attempt: owner, outcome, its own failure, reclaim. */
export function attemptFacts(idx, ev, n, event) {
  const a = idx.get(`${ev}/${n}`) || { process: null, history: null, queue: null };
  const p = a.process ? a.process.attributes : {};
  const next = idx.get(`${ev}/${n + 1}`);
  const h = a.history;
  let outcome = p[A.outcome] || (h && h.outcome) || null;
  if (!outcome && event && event.attempts === n) {
    outcome = event.state === 'done' ? 'done' : event.state === 'dead' ? 'dead' : event.state === 'claimed' ? 'in progress' : null;
  }
  // Its own failure: the outbox's record, else the next attempt's "retried because".
  const reason = (h && h.reason) || (outcome && outcome !== 'done' && next && next.process ? next.process.attributes[A.reason] : null) || (outcome === 'dead' && event ? event.lastReason : null) || null;
  return {
    attempt: n,
    owner: p[A.owner] || (h && h.owner) || (n === (event && event.attempts) ? event.leaseOwner : null) || null,
    outcome,
    reason,
    error: (h && h.error) || (outcome === 'dead' && event ? event.lastError : null) || null,
    reclaimed: p[A.reclaimed] === true,
    previousOwner: p[A.prevOwner] || null,
    leaseAgeMs: p[A.leaseAge] ?? null,
    lost: !a.process && h !== null && (h.outcome === 'lost' || ((h.outcome === 'dead' || h.outcome === 'released') && (h.reason === 'worker_gone' || h.reason === 'lease_expired'))),
    history: h,
  };
}

export function headingText(f) {
  const bits = [`attempt ${f.attempt}`];
  if (f.owner) bits.push(f.owner);
  if (f.lost) bits.push(f.outcome === 'dead' ? 'dead' : 'lost');
  else if (f.outcome) bits.push(f.outcome);
  if (f.reason) bits.push(reasonText(f.reason));
  if (f.reclaimed) bits.push(`reclaimed${f.previousOwner ? ` from ${f.previousOwner}` : ''}`);
  if (f.lost) bits.push('reconstructed from the outbox');
  return bits.join(' · ');
}

/** Classes of a span's bar: kind, queue wait, error, or a failure that a later attempt healed. */
function spanClass(s, facts) {
  const cls = [`k-${KINDS[s.kind] || 'internal'}`];
  if (isQueue(s)) cls.push('queue');
  if (s.status.code === 2) cls.push('error');
  else if (facts && (facts.outcome === 'retry' || facts.outcome === 'lost') && (isProcess(s) || s.attributes[A.write] === 'failed')) cls.push('retried');
  return cls.join(' ');
}

/**
 * The rows, in order. Each: { type: 'span'|'group'|'synthetic', depth, startNs, endNs, ... }.
 * Synthetic rows (backoff, lost lease, dead letter) carry `facts` for the side panel.
 */
export function buildRows(spans, outbox) {
  const idx = attemptIndex(spans, outbox);
  const events = new Map(outbox.map((e) => [e.id, e]));
  const rows = [];
  const headed = new Set();
  const lastRowOf = new Map(); // event id -> index after its last attempt's rows
  const ordered = order(spans);
  const factsOf = (ev, n) => attemptFacts(idx, ev, n, events.get(ev));
  // The claim, write and ack under a process span carry no attempt of their own: they inherit it.
  const inherited = new Map();
  for (let i = 0; i < ordered.length; i++) {
    const { span: s, depth, parent, hasKids } = ordered[i];
    const n = attemptOf(s);
    const ev = s.attributes[A.msg] !== undefined ? String(s.attributes[A.msg]) : null;
    const inAttempt = n !== undefined && ev !== null && (isQueue(s) || isProcess(s));
    if (inAttempt && !headed.has(`${ev}/${n}`)) {
      // Attempts no span tells of, before this one: reconstructed.
      for (let m = 1; m < n; m++) if (!headed.has(`${ev}/${m}`) && idx.get(`${ev}/${m}`)?.history) pushLost(rows, factsOf(ev, m), ev, depth, headed);
      headed.add(`${ev}/${n}`);
      pushBackoff(rows, factsOf(ev, n - 1), ev, n, depth);
      const f = factsOf(ev, n);
      rows.push({ type: 'group', depth, text: headingText(f), facts: f, event: ev, outcome: f.outcome, lost: f.lost, collapsible: true });
    }
    const f = n !== undefined && ev !== null ? factsOf(ev, n) : (parent && inherited.get(parent)) || null;
    if (f && hasKids) inherited.set(s.spanId, f);
    rows.push({ type: 'span', span: s, depth, parent, hasKids, cls: spanClass(s, f), startNs: BigInt(s.startTimeUnixNano), endNs: BigInt(s.endTimeUnixNano), facts: f });
    if (inAttempt && isQueue(s) && f && f.lost) pushLease(rows, f, ev, depth);
    if (inAttempt) lastRowOf.set(ev, { at: rows.length, depth });
  }
  // Attempts after the last one with spans, and the dead letter, at the end of the event's rows.
  const inserts = [];
  for (const e of outbox) {
    const pos = lastRowOf.get(e.id);
    if (!pos) continue;
    const extra = [];
    for (let m = 1; m <= e.attempts; m++) if (!headed.has(`${e.id}/${m}`) && idx.get(`${e.id}/${m}`)?.history) pushLost(extra, factsOf(e.id, m), e.id, pos.depth, headed);
    if (e.state === 'dead' && e.deadAt) {
      const at = isoNs(e.deadAt);
      extra.push({ type: 'synthetic', kind: 'dead', depth: pos.depth, name: 'dead-lettered', startNs: at, endNs: at, event: e.id,
        text: `dead after ${e.attempts} attempt(s)${e.lastReason ? ` · ${reasonText(e.lastReason)}` : ''}`,
        facts: { outcome: 'dead', attempt: e.attempts, reason: e.lastReason, error: e.lastError, owner: e.previousOwner || e.leaseOwner, deadAt: e.deadAt, reconstructed: true } });
    }
    if (extra.length) inserts.push([pos.at, extra]);
  }
  inserts.sort((a, b) => b[0] - a[0]);
  for (const [at, extra] of inserts) rows.splice(at, 0, ...extra);
  return rows;
}

function pushBackoff(rows, prev, ev, n, depth) {
  const h = prev.history;
  if (!h || h.outcome !== 'retry' || !h.runAt) return;
  const from = isoNs(h.finishedAt);
  const to = isoNs(h.runAt);
  if (to <= from) return;
  rows.push({ type: 'synthetic', kind: 'backoff', depth, name: 'backoff', startNs: from, endNs: to, event: ev,
    text: `backoff before attempt ${n}${h.reason ? ` · after ${reasonText(h.reason)}` : ''}`,
    facts: { attempt: prev.attempt, outcome: 'retry', reason: h.reason, error: h.error, delayMs: h.delayMs, runAt: h.runAt, reconstructed: true } });
}

function pushLease(rows, f, ev, depth) {
  const h = f.history;
  if (!h.claimedAt) return;
  rows.push({ type: 'synthetic', kind: 'lease', depth, name: `lease held by ${f.owner || '?'}`, startNs: isoNs(h.claimedAt), endNs: isoNs(h.finishedAt), event: ev,
    text: `${reasonText(h.reason) || 'lost'}; no span exported`,
    facts: { ...f, leaseAgeMs: h.delayMs, reconstructed: true } });
}

function pushLost(rows, f, ev, depth, headed) {
  headed.add(`${ev}/${f.attempt}`);
  rows.push({ type: 'group', depth, text: headingText(f), facts: f, event: ev, outcome: f.outcome, lost: f.lost, collapsible: true });
  pushLease(rows, f, ev, depth);
}

/** The trace's verdict from its events: dead, retried, done, in progress. */
export function traceOutcome(outbox) {
  if (outbox.length === 0) return null;
  if (outbox.some((e) => e.state === 'dead')) return 'dead';
  if (outbox.some((e) => e.state === 'pending' || e.state === 'claimed')) return 'in progress';
  if (outbox.some((e) => e.attempts > 1)) return 'done after retries';
  return 'done';
}
