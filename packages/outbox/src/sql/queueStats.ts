import type { Queryable } from '../pool.js';

export interface QueueStatsRow {
  projection: string;
  pending: number;
  claimed: number;
  /** Age of the oldest pending event (since it was enqueued), milliseconds; 0 when none is pending. */
  oldest_pending_ms: number;
}

/**
 * Queue depth and oldest pending age by projection, for the gauges. Reads the queue table and
 * the batch leases only, so its cost follows the backlog, never the number of done events
 * kept for retention. `claimed` counts the events of the batches leased now. The oldest
 * pending event is the queue's lowest id (ids follow enqueue order).
 */
export async function queueStats(db: Queryable): Promise<QueueStatsRow[]> {
  const { rows } = await db.query<QueueStatsRow>({
    name: 'loomtrace_queue_stats',
    text: `with q as (
             select projection, count(*)::int as pending, min(id) as oldest_id
               from loomtrace.outbox_queue group by projection
           ), l as (
             select projection, sum(cardinality(event_ids))::int as claimed
               from loomtrace.outbox_leases group by projection
           )
           select coalesce(q.projection, l.projection) as projection,
                  coalesce(q.pending, 0) as pending,
                  coalesce(l.claimed, 0) as claimed,
                  coalesce(extract(epoch from clock_timestamp()
                             - (select o.enqueued_at from loomtrace.outbox o where o.id = q.oldest_id)) * 1000, 0)::float8
                    as oldest_pending_ms
             from q full join l on l.projection = q.projection`,
    values: [],
  });
  return rows;
}
