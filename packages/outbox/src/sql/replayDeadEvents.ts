import type { Queryable } from '../pool.js';
import { DEAD_WHERE, deadFilterValues, type DeadFilter } from './listDeadEvents.js';

/**
 * Puts dead-lettered events back in the queue, recording who replayed them, when and why
 * (`outbox_replays`, plus an `outbox_attempts` row with outcome `replayed`).
 *
 * The attempt count starts again (the event gets its full `maxAttempts`); the history stays
 * in `outbox_attempts` and `attempts_before`. The row keeps its traceparent, so the replayed
 * attempt continues the original trace, and its `last_attempt_span`, so it links to the
 * attempt that was dead-lettered. `last_reason = 'replayed'` marks the next attempt's span.
 * Rows locked by another replay are skipped: two operators cannot replay an event twice.
 */
export async function replayDeadEvents(db: Queryable, f: DeadFilter, by: string, why: string): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>({
    text: `with picked as (
             select o.id, o.attempts, o.last_reason, o.last_error, o.dead_at, o.last_attempt_span
               from loomtrace.outbox o
              where ${DEAD_WHERE}
              order by o.dead_at, o.id
              limit $5
                for update skip locked
           ), upd as (
             update loomtrace.outbox o
                set state = 'pending', run_at = clock_timestamp(), attempts = 0, dead_at = null,
                    last_reason = 'replayed', last_error = null, last_delay_ms = 0,
                    lease_token = null, lease_span = null, replays = o.replays + 1
               from picked
              where o.id = picked.id and o.state = 'dead'
             returning o.id
           ), rec as (
             insert into loomtrace.outbox_replays (event_id, replayed_by, why, dead_reason, dead_error, dead_at, attempts_before)
             select p.id, $6, $7, p.last_reason, p.last_error, p.dead_at, p.attempts
               from picked p join upd using (id)
           ), att as (
             insert into loomtrace.outbox_attempts (event_id, attempt, lease_owner, outcome, reason, traceparent)
             select p.id, p.attempts, $6, 'replayed', 'replayed', p.last_attempt_span
               from picked p join upd using (id)
           )
           select id, case when true then pg_notify('loomtrace_outbox', '') end as notified from upd order by id`,
    values: [...deadFilterValues(f), f.limit, by, why],
  });
  return rows.map((r) => r.id);
}
