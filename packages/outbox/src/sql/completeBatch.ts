import type { Queryable } from '../pool.js';
import { selectSettled } from './selectSettled.js';

/**
 * The guarded ack of a whole batch, when every event of it succeeded: the worker sends its
 * lease token, not the ids. The batch's lease row names the events; it is deleted, and each of
 * them still pending (not settled by an earlier statement) is acked, in one statement (lease row
 * first, the order the reclaim sweep uses). The ack is the outbox row's only update of the
 * attempt (decision 0013): state, attempt count and the lease's facts go in with `done_at`, the
 * statement's start, one time for the whole batch (decision 0019: a clock reading per row grew the
 * `done_at` BRIN index's range summary row after row, a WAL record each).
 * Postgres answers how many rows changed: all of them (the usual case) means each event's ack
 * changed 1 row; fewer means the lease was lost for some, and which ones is read back
 * (`selectSettled`), so every event still gets its own 0 or 1. A lease row already taken by the
 * sweep acks nothing: every event is a stale ack.
 */
export async function completeBatch(db: Queryable, ids: readonly string[], leaseToken: string): Promise<Set<string>> {
  const { rows } = await db.query<{ n: number }>({
    name: 'loomtrace_complete_batch',
    text: `with lease as (
             delete from loomtrace.outbox_leases where token = $1
             returning event_ids, owner, claimed_at, expires_at, renewals, last_renewed_at
           ), acked as (
             update loomtrace.outbox o
                set state = 'done', attempts = o.attempts + 1, done_at = statement_timestamp(),
                    lease_token = $1, lease_owner = l.owner, claimed_at = l.claimed_at, lease_expires_at = l.expires_at,
                    renewals = l.renewals, last_renewed_at = l.last_renewed_at
               from lease l
              where o.id = any(coalesce((select event_ids from lease), '{}'::bigint[])) and o.state = 'pending'
             returning 1
           )
           select count(*)::int as n from acked`,
    values: [leaseToken],
  });
  if ((rows[0]?.n ?? 0) === ids.length) return new Set(ids);
  return selectSettled(db, ids, leaseToken);
}
