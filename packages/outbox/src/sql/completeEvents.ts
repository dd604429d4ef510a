import type { Queryable } from '../pool.js';

/**
 * The guarded ack of some events of a batch (the others failed): only events still pending and
 * named by this lease token's lease row change (the row is locked first, the order the reclaim
 * sweep uses, and stays). The ids returned are the events acked (1 row each); an id missing
 * from the answer is a stale ack (0 rows): the lease was lost and another attempt owns the
 * event. The retry/dead-letter statement that follows removes the lease row; if the worker dies
 * in between, the reclaim sweep finds the lease and hands back what is left (the acked events
 * are no longer pending). (A batch that fully succeeded is acked by its token: `completeBatch`.)
 * `done_at` is the statement's start, one time for all (as in `completeBatch`, decision 0019).
 */
export async function completeEvents(db: Queryable, ids: readonly string[], leaseToken: string): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>({
    name: 'loomtrace_complete',
    text: `with lease as (
             select owner, claimed_at, expires_at, renewals, last_renewed_at, event_ids
               from loomtrace.outbox_leases where token = $2 for share
           )
           update loomtrace.outbox o
              set state = 'done', attempts = o.attempts + 1, done_at = statement_timestamp(),
                  lease_token = $2, lease_owner = l.owner, claimed_at = l.claimed_at, lease_expires_at = l.expires_at,
                  renewals = l.renewals, last_renewed_at = l.last_renewed_at
             from lease l
            where o.id = any($1::bigint[]) and o.id = any(l.event_ids) and o.state = 'pending'
           returning o.id`,
    values: [ids, leaseToken],
  });
  return new Set(rows.map((r) => r.id));
}
