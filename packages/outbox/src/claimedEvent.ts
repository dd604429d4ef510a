import type { ClaimRow } from './sql/claimEvents.js';
import type { OutboxEvent } from './types.js';

/** A claimed row as the worker and its trace see it. */
export function toEvent(r: ClaimRow, projection: string): OutboxEvent {
  const attempt = r[10];
  const lastReason = r[14];
  return {
    id: r[0],
    projection,
    eventType: r[1],
    aggregateType: r[2],
    aggregateId: r[3],
    aggregateVersion: r[4],
    requestId: r[5],
    attributes: r[6],
    traceparent: r[7],
    tracestate: r[8],
    payload: r[9],
    attempt,
    previousOwner: r[11],
    previousToken: r[12],
    reclaimed: lastReason === 'lease_expired' || lastReason === 'worker_gone',
    previousLeaseMs: r[13],
    lastReason,
    lastDelayMs: r[15],
    lastAttemptSpan: r[16],
    readyAtMs: r[17],
    readySource: attempt > 1 ? 'run_at' : r[18] ? 'commit_timestamp' : 'insert_time',
    claimedAtMs: r[19],
  };
}
