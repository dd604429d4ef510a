import type { Queryable } from '../pool.js';

export interface FailItem {
  id: string;
  /** `pending` to retry after `delayMs`, `dead` to dead-letter. */
  nextState: 'pending' | 'dead';
  delayMs: number;
  reason: string;
  error: string;
  /** traceparent of this attempt's process span, so the next attempt can link to it. */
  span: string | null;
}

/**
 * Guarded like the ack: schedules retries or dead-letters, and records the attempt in
 * `outbox_attempts` for the replay. A retried event re-enters `outbox_queue` at its run_at
 * (the `outbox_requeue` trigger). Runs after the batch's ack, so it ends the batch's lease.
 * Returns the ids that were still ours.
 */
export async function failEvents(db: Queryable, items: readonly FailItem[], leaseToken: string): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>({
    name: 'loomtrace_fail',
    text: `with lease as (
             -- The batch's lease row goes, locked before any outbox row (as the reclaim sweep
             -- does); it names the events this token still holds and the attempt's lease facts.
             delete from loomtrace.outbox_leases where token = $7
             returning event_ids, owner, claimed_at, expires_at, renewals, last_renewed_at
           ), v as (
             select * from unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[])
                      as v(id, next_state, delay_ms, reason, error, span)
           ), upd as (
             -- The attempt's one write into the outbox row (decision 0013).
             update loomtrace.outbox o
                set state = v.next_state,
                    attempts = o.attempts + 1,
                    run_at = case when v.next_state = 'pending'
                                  then clock_timestamp() + make_interval(secs => v.delay_ms::float8 / 1000)
                                  else o.run_at end,
                    dead_at = case when v.next_state = 'dead' then clock_timestamp() end,
                    last_reason = v.reason,
                    last_error = v.error,
                    last_delay_ms = v.delay_ms,
                    last_attempt_span = v.span,
                    lease_span = null,
                    lease_token = $7,
                    lease_owner = l.owner,
                    claimed_at = l.claimed_at,
                    lease_expires_at = l.expires_at,
                    renewals = l.renewals,
                    last_renewed_at = l.last_renewed_at,
                    previous_owner = l.owner,
                    previous_token = $7::uuid,
                    previous_lease_ms = null
               from v, lease l
              where o.id = v.id and o.id = any(l.event_ids) and o.state = 'pending'
             returning o.id, o.attempts, l.owner, l.claimed_at, o.run_at, l.renewals, l.last_renewed_at,
                       v.next_state, v.reason, v.error, v.delay_ms, v.span
           ), rec as (
             insert into loomtrace.outbox_attempts
                    (event_id, attempt, lease_token, lease_owner, claimed_at, outcome, reason, error, delay_ms, ack_rows, traceparent, run_at,
                     renewals, last_renewed_at)
             select id, attempts, $7, owner, claimed_at,
                    case when next_state = 'dead' then 'dead' else 'retry' end,
                    reason, error, delay_ms, 1, span, case when next_state = 'pending' then run_at end,
                    renewals, last_renewed_at
               from upd
           )
           select id from upd`,
    values: [
      items.map((i) => i.id),
      items.map((i) => i.nextState),
      items.map((i) => i.delayMs),
      items.map((i) => i.reason),
      items.map((i) => i.error),
      items.map((i) => i.span),
      leaseToken,
    ],
  });
  return new Set(rows.map((r) => r.id));
}
