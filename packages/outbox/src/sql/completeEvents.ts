import type { Queryable } from '../pool.js';

/**
 * The guarded ack of some events of a batch (the others failed): only rows still claimed under
 * this lease token change. The ids returned are the events acked (1 row each); an id missing
 * from the answer is a stale ack (0 rows): the lease was lost and another attempt owns the
 * event. The batch's lease row stays for the retry/dead-letter statement that follows, which
 * removes it; if the worker dies in between, the reclaim sweep finds the lease and hands back
 * what is left. (A batch that fully succeeded is acked by its token: `completeBatch`.)
 */
export async function completeEvents(db: Queryable, ids: readonly string[], leaseToken: string): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>({
    name: 'loomtrace_complete',
    text: `update loomtrace.outbox
              set state = 'done', done_at = clock_timestamp()
            where id = any($1::bigint[]) and lease_token = $2 and state = 'claimed'
           returning id`,
    values: [ids, leaseToken],
  });
  return new Set(rows.map((r) => r.id));
}
