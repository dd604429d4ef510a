import type { Queryable } from '../pool.js';

/**
 * Hands claimed events back at once (graceful shutdown), so that another worker picks them
 * up in milliseconds instead of after the lease expires. The attempt is not counted against
 * the event: `attempts` stays. The new `run_at` puts it back in the queue (the requeue trigger). Also used for the part of a batch still ours after
 * the heartbeat found the rest of it taken over (`lease_lost`). Wakes the other workers (the outbox trigger fires on
 * inserts only). Returns how many were released.
 */
export async function releaseEvents(
  db: Queryable,
  ids: readonly string[],
  leaseToken: string,
  owner: string,
  reason: 'shutdown' | 'lease_lost' = 'shutdown',
): Promise<number> {
  const { rows } = await db.query<{ n: number }>({
    name: 'loomtrace_release',
    text: `with lease as (
             -- The batch's lease row goes too, locked before any outbox row (as the reclaim sweep does).
             delete from loomtrace.outbox_leases where token = $2
             returning event_ids, owner, claimed_at, expires_at, renewals, last_renewed_at
           ), upd as (
             -- The attempt is not counted (attempts stays); its lease goes into the row (decision 0013).
             update loomtrace.outbox o
                set run_at = clock_timestamp(),
                    previous_owner = l.owner, previous_token = $2::uuid,
                    last_reason = $4, last_delay_ms = 0, lease_token = null, lease_span = null,
                    lease_owner = l.owner, claimed_at = l.claimed_at, lease_expires_at = l.expires_at,
                    renewals = l.renewals, last_renewed_at = l.last_renewed_at
               from lease l
              where o.id = any($1::bigint[]) and o.id = any(l.event_ids) and o.state = 'pending'
             returning o.id, o.attempts, o.claimed_at, o.renewals, o.last_renewed_at
           ), rec as (
             insert into loomtrace.outbox_attempts (event_id, attempt, lease_token, lease_owner, claimed_at, outcome, reason, renewals, last_renewed_at)
             select id, attempts + 1, $2, $3, claimed_at, 'released', $4, renewals, last_renewed_at from upd
           )
           select count(*)::int as n, case when count(*) > 0 then pg_notify('loomtrace_outbox', '') end as notified from upd`,
    values: [ids, leaseToken, owner, reason],
  });
  return rows[0]?.n ?? 0;
}
