import type { Queryable } from '@loomtrace/outbox';

/**
 * The outbox's own record of the events a trace carries: the row (state, owner, previous
 * owner, lease age, dead letter) and every attempt that did not end in an ack
 * (loomtrace.outbox_attempts). The waterfall draws from it what no span can say: an attempt
 * whose worker died before exporting, the backoff between attempts, a dead letter written by
 * the reclaim sweep. Events are found by the message ids of the trace's spans and kept only
 * when the row's own traceparent names this trace.
 */
export interface TraceOutboxAttempt {
  attempt: number;
  owner: string | null;
  claimedAt: string | null;
  finishedAt: string;
  outcome: string;
  reason: string | null;
  error: string | null;
  delayMs: number | null;
  runAt: string | null;
  ackRows: number | null;
}
export interface TraceOutboxEvent {
  id: string;
  projection: string;
  aggregateType: string;
  aggregateId: string;
  state: string;
  attempts: number;
  aggregateVersion: string;
  enqueuedAt: string;
  runAt: string;
  claimedAt: string | null;
  leaseOwner: string | null;
  leaseExpiresAt: string | null;
  previousOwner: string | null;
  previousLeaseMs: number | null;
  reclaims: number;
  lastReason: string | null;
  lastError: string | null;
  doneAt: string | null;
  deadAt: string | null;
  history: TraceOutboxAttempt[];
}

const ISO = (c: string) => `to_char(${c} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

export async function selectTraceOutbox(db: Queryable, traceId: string): Promise<TraceOutboxEvent[]> {
  const { rows } = await db.query<TraceOutboxEvent>({
    name: 'explorer_trace_outbox',
    text: `select o.id::text as "id", o.projection as "projection", o.aggregate_type as "aggregateType", o.aggregate_id as "aggregateId", o.state as "state", o.attempts as "attempts",
                  o.aggregate_version::text as "aggregateVersion", ${ISO('o.enqueued_at')} as "enqueuedAt", ${ISO('o.run_at')} as "runAt",
                  ${ISO('o.claimed_at')} as "claimedAt", o.lease_owner as "leaseOwner", ${ISO('o.lease_expires_at')} as "leaseExpiresAt",
                  o.previous_owner as "previousOwner", o.previous_lease_ms as "previousLeaseMs", o.reclaims as "reclaims",
                  o.last_reason as "lastReason", o.last_error as "lastError", ${ISO('o.done_at')} as "doneAt", ${ISO('o.dead_at')} as "deadAt",
                  coalesce((select json_agg(json_build_object(
                              'attempt', a.attempt, 'owner', a.lease_owner, 'claimedAt', ${ISO('a.claimed_at')},
                              'finishedAt', ${ISO('a.finished_at')}, 'outcome', a.outcome, 'reason', a.reason, 'error', left(a.error, 300),
                              'delayMs', a.delay_ms, 'runAt', ${ISO('a.run_at')}, 'ackRows', a.ack_rows) order by a.finished_at, a.attempt)
                              from loomtrace.outbox_attempts a where a.event_id = o.id), '[]'::json) as "history"
             from loomtrace.outbox_current o
            where o.id = any(array(select distinct message_id::bigint from explorer.spans
                                    where trace_id = $1 and message_id ~ '^[0-9]{1,18}$' limit 1000))
              and substr(o.traceparent, 4, 32) = $1
            order by o.id`,
    values: [traceId],
  });
  return rows;
}
