import type { Queryable } from '../pool.js';

/**
 * After a settle statement failed on a dropped connection, it may or may not have committed.
 * The settle statements are guarded (the token's lease row must name the event, still
 * `pending` in its row), so running one again cannot apply twice, but its answer then misses
 * what the first run did (the settle wrote the token into the row). This reads which of
 * `ids` this lease token already settled (acked, scheduled for retry, or dead-lettered), so the
 * worker reports those as settled rather than as stale acks.
 */
export async function selectSettled(db: Queryable, ids: readonly string[], leaseToken: string): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>({
    name: 'loomtrace_select_settled',
    text: `select id from loomtrace.outbox
            where id = any($1::bigint[]) and lease_token = $2 and state in ('done', 'pending', 'dead')`,
    values: [ids, leaseToken],
  });
  return new Set(rows.map((r) => r.id));
}
