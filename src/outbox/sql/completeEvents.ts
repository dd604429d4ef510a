import type { Queryable } from '../../db/pool.js';

/**
 * The guarded ack: only rows still claimed under this lease token change. The ids returned
 * are the events acked (1 row each); an id missing from the answer is a stale ack (0 rows):
 * the lease was lost and another attempt owns the event.
 *
 * With `endLease` (no other settle statement follows for this batch) the batch's lease row
 * goes in the same transaction; otherwise the last settle statement removes it, and if the
 * worker dies in between, the reclaim sweep finds the lease and hands back what is left.
 */
export async function completeEvents(db: Queryable, ids: readonly string[], leaseToken: string, endLease: boolean): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>({
    name: 'loomtrace_complete',
    // The lease row is locked before any outbox row (the sub-select runs first), the order the
    // reclaim sweep uses too, so the two never deadlock.
    text: `with lease as (
             delete from loomtrace.outbox_leases where $3::boolean and token = $2 returning 1
           ), acked as (
             update loomtrace.outbox
                set state = 'done', done_at = clock_timestamp()
              where id = any($1::bigint[]) and lease_token = $2 and state = 'claimed'
                and (select count(*) from lease) >= 0
             returning id
           )
           select id from acked`,
    values: [ids, leaseToken, endLease],
  });
  return new Set(rows.map((r) => r.id));
}
