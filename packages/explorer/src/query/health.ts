import type { Queryable } from '@loomtrace/outbox';
import { selectHealthNow, selectHealthSeries, selectStepDurations } from './sql/health.js';

/** Pipeline health: the queue now, and per-minute series over the last `minutes`. */
export async function pipelineHealth(db: Queryable, minutes = 30) {
  const [now, series, steps] = await Promise.all([selectHealthNow(db), selectHealthSeries(db, minutes), selectStepDurations(db, minutes)]);
  return {
    now: { pending: now.pending, claimed: now.claimed, dead: now.dead, done: now.done, queueDepth: now.pending + now.claimed, oldestPendingSeconds: now.oldest_pending_s },
    series: series.map((b) => ({
      t: b.t.toISOString(),
      queueDepth: b.depth,
      oldestUnfinishedSeconds: b.oldest_s,
      done: b.done,
      enqueued: b.enqueued,
      lagP50Ms: b.lag_p50_ms,
      lagP95Ms: b.lag_p95_ms,
      lagP99Ms: b.lag_p99_ms,
      retries: b.retries,
      dead: b.dead,
      lost: b.lost,
    })),
    steps: steps.map((s) => ({ name: s.name, count: s.count, p95Ms: s.p95_ms })),
  };
}
