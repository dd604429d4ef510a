import type { Queryable } from '../../db/pool.js';

/**
 * Hands claimed events back at once (graceful shutdown), so that another worker picks them
 * up in milliseconds instead of after the lease expires. The attempt is not counted against
 * the event: `attempts` goes back down.
 */
export async function releaseEvents(db: Queryable, ids: readonly string[], leaseToken: string, owner: string): Promise<number> {
  const { rowCount } = await db.query({
    name: 'loomtrace_release',
    text: `with upd as (
             update loomtrace.outbox o
                set state = 'pending', run_at = clock_timestamp(), attempts = o.attempts - 1,
                    previous_owner = o.lease_owner, previous_token = o.lease_token,
                    last_reason = 'shutdown', lease_token = null
              where o.id = any($1::bigint[]) and o.lease_token = $2 and o.state = 'claimed'
             returning o.id, o.attempts, o.claimed_at
           )
           insert into loomtrace.outbox_attempts (event_id, attempt, lease_token, lease_owner, claimed_at, outcome, reason)
           select id, attempts + 1, $2, $3, claimed_at, 'released', 'shutdown' from upd`,
    values: [ids, leaseToken, owner],
  });
  return rowCount ?? 0;
}
