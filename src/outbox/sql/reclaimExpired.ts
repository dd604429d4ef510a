import type { Queryable } from '../../db/pool.js';

/**
 * Puts events whose lease expired back in the queue, remembering who held them and for how
 * long, so that the next attempt's trace can tell the story (and link to the abandoned
 * attempt's span when its heartbeat recorded one). An event that already used its
 * `maxAttempts` is dead-lettered instead: an event that kills every worker that touches it
 * must not be reclaimed forever. Returns how many were reclaimed and how many dead-lettered.
 */
export async function reclaimExpired(
  db: Queryable,
  projection: string,
  limit: number,
  maxAttempts: number,
): Promise<{ reclaimed: number; dead: number }> {
  const { rows } = await db.query<{ reclaimed: number; dead: number }>({
    name: 'loomtrace_reclaim',
    text: `with expired as (
             select id from loomtrace.outbox
              where state = 'claimed' and projection = $1 and lease_expires_at < clock_timestamp()
              order by lease_expires_at
              limit $2
                for update skip locked
           ), upd as (
             update loomtrace.outbox o
                set state = case when o.attempts >= $3 then 'dead' else 'pending' end,
                    dead_at = case when o.attempts >= $3 then clock_timestamp() end,
                    run_at = clock_timestamp(),
                    previous_owner = o.lease_owner,
                    previous_token = o.lease_token,
                    previous_lease_ms = (extract(epoch from clock_timestamp() - o.claimed_at) * 1000)::int,
                    reclaims = o.reclaims + 1,
                    last_reason = 'lease_expired',
                    last_error = null,
                    last_delay_ms = 0,
                    -- The abandoned attempt's span if its heartbeat recorded one; otherwise none
                    -- (an older attempt's span would be a wrong link).
                    last_attempt_span = o.lease_span,
                    lease_span = null,
                    lease_token = null
               from expired
              where o.id = expired.id
             returning o.id, o.attempts, o.state, o.previous_token, o.previous_owner, o.claimed_at,
                       o.previous_lease_ms, o.last_attempt_span, o.renewals, o.last_renewed_at
           ), rec as (
             insert into loomtrace.outbox_attempts
                    (event_id, attempt, lease_token, lease_owner, claimed_at, outcome, reason, delay_ms, traceparent,
                     renewals, last_renewed_at)
             select id, attempts, previous_token, previous_owner, claimed_at,
                    case when state = 'dead' then 'dead' else 'lost' end, 'lease_expired', previous_lease_ms,
                    last_attempt_span, renewals, last_renewed_at
               from upd
           )
           select count(*) filter (where state = 'pending')::int as reclaimed,
                  count(*) filter (where state = 'dead')::int as dead
             from upd`,
    values: [projection, limit, maxAttempts],
  });
  return { reclaimed: rows[0]?.reclaimed ?? 0, dead: rows[0]?.dead ?? 0 };
}
