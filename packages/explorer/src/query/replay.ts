/**
 * One outbox event's story across workers: the row, every attempt that did not end in an
 * ack (from outbox_attempts), the final state, and the spans of each attempt when stored.
 */
import type { OutboxEventKey, Queryable } from '@loomtrace/outbox';
import { parseTraceparent } from '@loomtrace/outbox';
import * as sc from '@loomtrace/outbox/semconv';
import { selectAttempts, selectEvent, type OutboxRow } from './sql/pipeline.js';
import { selectEventList } from './sql/eventsByState.js';
import { selectEventSpans } from './sql/traceSpans.js';

export interface TimelineEntry {
  at: string;
  what: 'enqueued' | 'claimed' | 'retry' | 'dead' | 'lost' | 'reclaimed' | 'released' | 'acked' | 'pending' | string;
  attempt: number | null;
  owner: string | null;
  reason: string | null;
  delayMs: number | null;
  ackRows: number | null;
  spanId: string | null;
  detail: string;
}

export interface Replay {
  event: ReturnType<typeof eventJson>;
  traceId: string | null;
  timeline: TimelineEntry[];
  spans: { spanId: string; name: string; attempt: number | null; startTimeUnixNano: string; endTimeUnixNano: string; owner: string | null; outcome: string | null }[];
}

/** What every event listing says first: the event's key, state and counts. */
function eventHead(e: OutboxEventKey & { state: string; attempts: number; reclaims: number; enqueued_at: Date }) {
  return {
    id: e.id,
    projection: e.projection,
    eventType: e.event_type,
    aggregateType: e.aggregate_type,
    aggregateId: e.aggregate_id,
    aggregateVersion: Number(e.aggregate_version),
    state: e.state,
    attempts: e.attempts,
    reclaims: e.reclaims,
    enqueuedAt: e.enqueued_at.toISOString(),
  };
}

export function eventJson(e: OutboxRow) {
  return {
    ...eventHead(e),
    runAt: e.run_at.toISOString(),
    claimedAt: e.claimed_at?.toISOString() ?? null,
    leaseOwner: e.lease_owner,
    leaseExpiresAt: e.lease_expires_at?.toISOString() ?? null,
    renewals: e.renewals,
    lastRenewedAt: e.last_renewed_at?.toISOString() ?? null,
    lastReason: e.last_reason,
    lastError: e.last_error,
    lastDelayMs: e.last_delay_ms,
    doneAt: e.done_at?.toISOString() ?? null,
    deadAt: e.dead_at?.toISOString() ?? null,
    traceparent: e.traceparent,
  };
}

/** The heartbeats of one attempt, as one entry at the last renewal. */
function renewedEntry(attempt: number, owner: string | null, renewals: number, at: Date, spanId: string | null): TimelineEntry {
  return { at: at.toISOString(), what: 'renewed', attempt, owner, reason: null, delayMs: null, ackRows: null, spanId, detail: `lease renewed ${renewals} time${renewals === 1 ? '' : 's'} (heartbeat); last renewal here` };
}

export async function replayEvent(db: Queryable, eventId: string): Promise<Replay | undefined> {
  const e = await selectEvent(db, eventId);
  if (!e) return undefined;
  const ctx = parseTraceparent(e.traceparent);
  const [attempts, spanRows] = await Promise.all([selectAttempts(db, eventId), ctx ? selectEventSpans(db, ctx.traceId, eventId) : Promise.resolve([])]);
  const processSpans = spanRows.filter((s) => s.name.startsWith('process '));
  const spanFor = (attempt: number) => processSpans.find((s) => Number(s.attributes[sc.ATTR_ATTEMPT]) === attempt)?.span_id ?? null;
  const timeline: TimelineEntry[] = [
    { at: e.enqueued_at.toISOString(), what: 'enqueued', attempt: null, owner: null, reason: null, delayMs: null, ackRows: null, spanId: null, detail: `${e.event_type} v${e.aggregate_version}` },
  ];
  for (const a of attempts) {
    if (a.claimed_at) timeline.push({ at: a.claimed_at.toISOString(), what: 'claimed', attempt: a.attempt, owner: a.lease_owner, reason: null, delayMs: null, ackRows: null, spanId: spanFor(a.attempt), detail: `lease ${a.lease_token?.slice(0, 8) ?? '?'}` });
    if (a.renewals && a.last_renewed_at) timeline.push(renewedEntry(a.attempt, a.lease_owner, a.renewals, a.last_renewed_at, spanFor(a.attempt)));
    const detail =
      a.outcome === 'retry'
        ? `retry in ${a.delay_ms ?? 0} ms`
        : a.outcome === 'lost'
          ? `${a.reason === 'worker_gone' ? 'worker gone (its session and presence lock ended)' : 'lease expired'}; lease held ${a.delay_ms ?? '?'} ms; reclaimed`
          : a.outcome === 'dead'
            ? a.reason === 'worker_gone' || a.reason === 'lease_expired'
              ? `dead-lettered by the reclaim sweep (${a.reason === 'worker_gone' ? 'worker gone' : 'lease expired'}, attempts used up)`
              : 'dead-lettered'
            : a.outcome;
    timeline.push({ at: a.finished_at.toISOString(), what: a.outcome, attempt: a.attempt, owner: a.lease_owner, reason: a.reason, delayMs: a.delay_ms, ackRows: a.ack_rows, spanId: spanFor(a.attempt), detail: `${detail}${a.error ? `: ${a.error.slice(0, 200)}` : ''}` });
  }
  const recorded = new Set(attempts.map((a) => a.attempt));
  if ((e.state === 'claimed' || e.state === 'done') && e.claimed_at && !recorded.has(e.attempts)) {
    timeline.push({ at: e.claimed_at.toISOString(), what: 'claimed', attempt: e.attempts, owner: e.lease_owner, reason: null, delayMs: null, ackRows: null, spanId: spanFor(e.attempts), detail: e.state === 'claimed' ? `lease until ${e.lease_expires_at?.toISOString() ?? '?'}` : '' });
  }
  if ((e.state === 'claimed' || e.state === 'done') && e.renewals > 0 && e.last_renewed_at && !recorded.has(e.attempts)) {
    timeline.push(renewedEntry(e.attempts, e.lease_owner, e.renewals, e.last_renewed_at, spanFor(e.attempts)));
  }
  if (e.state === 'done' && e.done_at) {
    timeline.push({ at: e.done_at.toISOString(), what: 'acked', attempt: e.attempts, owner: e.lease_owner, reason: null, delayMs: null, ackRows: 1, spanId: spanFor(e.attempts), detail: 'guarded ack, rows affected 1' });
  }
  if (e.state === 'pending' && e.attempts > 0) {
    timeline.push({ at: e.run_at.toISOString(), what: 'pending', attempt: e.attempts + 1, owner: null, reason: e.last_reason, delayMs: e.last_delay_ms, ackRows: null, spanId: null, detail: 'next try due' });
  }
  timeline.sort((a, b) => a.at.localeCompare(b.at));
  return {
    event: eventJson(e),
    traceId: ctx?.traceId ?? null,
    timeline,
    spans: processSpans.map((s) => ({
      spanId: s.span_id,
      name: s.name,
      attempt: typeof s.attributes[sc.ATTR_ATTEMPT] === 'number' ? (s.attributes[sc.ATTR_ATTEMPT] as number) : null,
      startTimeUnixNano: s.start_ns,
      endTimeUnixNano: s.end_ns,
      owner: typeof s.attributes[sc.ATTR_LEASE_OWNER] === 'string' ? (s.attributes[sc.ATTR_LEASE_OWNER] as string) : null,
      outcome: typeof s.attributes[sc.ATTR_OUTCOME] === 'string' ? (s.attributes[sc.ATTR_OUTCOME] as string) : null,
    })),
  };
}

export interface EventListEntry {
  id: string;
  projection: string;
  eventType: string;
  aggregateType: string;
  aggregateId: string;
  aggregateVersion: number;
  state: string;
  attempts: number;
  reclaims: number;
  enqueuedAt: string;
  deadAt: string | null;
  doneAt: string | null;
  lastReason: string | null;
  lastError: string | null;
  previousOwner: string | null;
  traceId: string | null;
  /** A later version of the aggregate reached the projection: replaying this one changes nothing. */
  superseded: boolean;
}

/** Events in one state, newest (highest id) first. */
export async function listEvents(db: Queryable, state: 'pending' | 'claimed' | 'done' | 'dead', limit: number): Promise<EventListEntry[]> {
  return (await selectEventList(db, state, limit)).map((e) => ({
    ...eventHead(e),
    deadAt: e.dead_at?.toISOString() ?? null,
    doneAt: e.done_at?.toISOString() ?? null,
    lastReason: e.last_reason,
    lastError: e.last_error,
    previousOwner: e.previous_owner,
    traceId: e.trace_id,
    superseded: e.superseded,
  }));
}
