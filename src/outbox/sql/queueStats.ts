import type { Queryable } from '../../db/pool.js';

export interface QueueStatsRow {
  projection: string;
  pending: number;
  claimed: number;
  /** Age of the oldest pending event (since it was enqueued), milliseconds; 0 when none is pending. */
  oldest_pending_ms: number;
}

/**
 * Queue depth and oldest pending age by projection, for the gauges. Reads only pending and
 * claimed rows (both have partial indexes), so its cost follows the backlog, never the
 * number of done events kept for retention.
 */
export async function queueStats(db: Queryable): Promise<QueueStatsRow[]> {
  const { rows } = await db.query<QueueStatsRow>({
    name: 'loomtrace_queue_stats',
    text: `select projection,
                  (count(*) filter (where state = 'pending'))::int as pending,
                  (count(*) filter (where state = 'claimed'))::int as claimed,
                  coalesce(extract(epoch from clock_timestamp() - min(enqueued_at) filter (where state = 'pending')) * 1000, 0)::float8
                    as oldest_pending_ms
             from loomtrace.outbox
            where state in ('pending', 'claimed')
            group by projection`,
    values: [],
  });
  return rows;
}
