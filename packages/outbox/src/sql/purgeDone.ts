import type { Queryable } from '../pool.js';

/**
 * Deletes up to `limit` done events acked more than `retentionMs` ago (found through the BRIN
 * index on done_at, in no particular order: every one of them is past retention), with the
 * attempts recorded for them; returns how many events went. Dead letters are never purged:
 * they wait for a human. Rows another session holds are skipped, so several workers may run
 * the upkeep at once.
 */
export async function purgeDone(db: Queryable, retentionMs: number, limit: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>({
    name: 'loomtrace_purge_done',
    text: `with doomed as (
             select id from loomtrace.outbox
              where done_at < clock_timestamp() - make_interval(secs => $1::float8 / 1000) and state = 'done'
              limit $2
                for update skip locked
           ), attempts as (
             delete from loomtrace.outbox_attempts a using doomed where a.event_id = doomed.id
           ), gone as (
             delete from loomtrace.outbox o using doomed where o.id = doomed.id returning 1
           )
           select count(*)::int as n from gone`,
    values: [retentionMs, limit],
  });
  return rows[0]?.n ?? 0;
}
