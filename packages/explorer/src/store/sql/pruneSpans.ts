import type { Queryable } from '@loomtrace/outbox';

/** Retention by age: spans received before `olderThanMs` ago go, a bounded chunk at a time. */
export async function pruneByAge(db: Queryable, olderThanMs: number, chunk = 50_000): Promise<number> {
  const res = await db.query({
    name: 'explorer_prune_age',
    text: `delete from explorer.spans s
            using (select trace_id, span_id from explorer.spans
                    where received_at < now() - make_interval(secs => $1::float8 / 1000)
                    limit $2) old
            where s.trace_id = old.trace_id and s.span_id = old.span_id`,
    values: [olderThanMs, chunk],
  });
  return res.rowCount ?? 0;
}

/**
 * Retention by size, counted in spans: beyond `maxSpans`, the oldest spans (by start time) go.
 * The planner's row estimate decides whether to look at all, so the check is cheap when under.
 */
export async function pruneBySize(db: Queryable, maxSpans: number): Promise<number> {
  const est = await db.query<{ n: string }>({
    name: 'explorer_span_estimate',
    text: `select greatest(c.reltuples, 0)::bigint as n from pg_class c where c.oid = 'explorer.spans'::regclass`,
  });
  const estimate = Number(est.rows[0]?.n ?? 0);
  // reltuples lags behind inserts until (auto)analyze: also count exactly when the table is small.
  if (estimate <= maxSpans && estimate > 100_000) return 0;
  const res = await db.query({
    name: 'explorer_prune_size',
    text: `delete from explorer.spans
            where start_ns <= (select start_ns from explorer.spans order by start_ns desc offset $1 limit 1)`,
    values: [maxSpans],
  });
  return res.rowCount ?? 0;
}

/** Resources no span has used within the retention period. */
export async function pruneResources(db: Queryable, olderThanMs: number): Promise<number> {
  const res = await db.query({
    name: 'explorer_prune_resources',
    text: `delete from explorer.resources where last_seen < now() - make_interval(secs => $1::float8 / 1000)`,
    values: [olderThanMs],
  });
  return res.rowCount ?? 0;
}
