import type { Queryable } from '../../db/pool.js';

/**
 * Puts events whose lease expired back in the queue, remembering who held them and for how
 * long, so that the next attempt's trace can tell the story. Returns how many were reclaimed.
 */
export async function reclaimExpired(db: Queryable, projection: string, limit: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>({
    name: 'loomtrace_reclaim',
    text: `with expired as (
             select id from loomtrace.outbox
              where state = 'claimed' and projection = $1 and lease_expires_at < clock_timestamp()
              order by lease_expires_at
              limit $2
                for update skip locked
           ), upd as (
             update loomtrace.outbox o
                set state = 'pending',
                    run_at = clock_timestamp(),
                    previous_owner = o.lease_owner,
                    previous_token = o.lease_token,
                    previous_lease_ms = (extract(epoch from clock_timestamp() - o.claimed_at) * 1000)::int,
                    reclaims = o.reclaims + 1,
                    last_reason = 'lease_expired',
                    last_error = null,
                    last_delay_ms = 0,
                    lease_token = null
               from expired
              where o.id = expired.id
             returning o.id, o.attempts, o.previous_token, o.previous_owner, o.claimed_at, o.previous_lease_ms
           ), rec as (
             insert into loomtrace.outbox_attempts
                    (event_id, attempt, lease_token, lease_owner, claimed_at, outcome, reason, delay_ms)
             select id, attempts, previous_token, previous_owner, claimed_at, 'lost', 'lease_expired', previous_lease_ms
               from upd
           )
           select count(*)::int as n from upd`,
    values: [projection, limit],
  });
  return rows[0]?.n ?? 0;
}
