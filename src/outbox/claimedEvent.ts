import type { ClaimRow } from './sql/claimEvents.js';
import type { OutboxEvent } from './types.js';

/** A claimed row as the worker and its trace see it. */
export function toEvent(r: ClaimRow, projection: string): OutboxEvent {
  return {
    id: r.id,
    projection,
    eventType: r.event_type,
    aggregateType: r.aggregate_type,
    aggregateId: r.aggregate_id,
    aggregateVersion: Number(r.aggregate_version),
    libraryId: r.library_id,
    requestId: r.request_id,
    traceparent: r.traceparent,
    tracestate: r.tracestate,
    payload: r.payload,
    attempt: r.attempts,
    previousOwner: r.previous_owner,
    previousToken: r.previous_token,
    reclaimed: r.last_reason === 'lease_expired',
    previousLeaseMs: r.previous_lease_ms,
    lastReason: r.last_reason,
    lastDelayMs: r.last_delay_ms,
    lastAttemptSpan: r.last_attempt_span,
    readyAtMs: r.ready_at_ms,
    readySource: r.ready_source,
    claimedAtMs: r.claimed_at_ms,
  };
}
