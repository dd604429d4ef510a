import type { Queryable } from '@loomtrace/outbox';

export interface HealthNow {
  pending: number;
  claimed: number;
  dead: number;
  done: number;
  oldest_pending_s: number | null;
}
export async function selectHealthNow(db: Queryable): Promise<HealthNow> {
  const { rows } = await db.query<HealthNow>({
    name: 'explorer_health_now',
    text: `select count(*) filter (where state = 'pending')::int as pending,
                  count(*) filter (where state = 'claimed')::int as claimed,
                  count(*) filter (where state = 'dead')::int as dead,
                  count(*) filter (where state = 'done')::int as done,
                  extract(epoch from clock_timestamp() - min(enqueued_at) filter (where state = 'pending'))::float8 as oldest_pending_s
             from loomtrace.outbox_current`,
  });
  return rows[0]!;
}

export interface HealthBucket {
  t: Date;
  depth: number;
  oldest_s: number | null;
  done: number;
  lag_p50_ms: number | null;
  lag_p95_ms: number | null;
  lag_p99_ms: number | null;
  retries: number;
  dead: number;
  lost: number;
  enqueued: number;
}
/**
 * Per-minute series over the last `minutes`: events acked and their commit-to-ack lag
 * percentiles (enqueued_at → done_at), retries / dead letters / lost leases from the attempt
 * log, and events enqueued. The outbox timestamps are the source: no spans needed.
 */
export async function selectHealthSeries(db: Queryable, minutes: number): Promise<HealthBucket[]> {
  const { rows } = await db.query<HealthBucket>({
    name: 'explorer_health_series',
    text: `with b as (
             select generate_series(date_trunc('minute', now()) - make_interval(mins => $1::int - 1),
                                    date_trunc('minute', now()), interval '1 minute') as t
           ), d as (
             select date_trunc('minute', done_at) as t, count(*)::int as done,
                    percentile_cont(0.5) within group (order by extract(epoch from done_at - enqueued_at) * 1000) as p50,
                    percentile_cont(0.95) within group (order by extract(epoch from done_at - enqueued_at) * 1000) as p95,
                    percentile_cont(0.99) within group (order by extract(epoch from done_at - enqueued_at) * 1000) as p99
               from loomtrace.outbox
              where state = 'done' and done_at >= date_trunc('minute', now()) - make_interval(mins => $1::int - 1)
              group by 1
           ), a as (
             select date_trunc('minute', finished_at) as t,
                    count(*) filter (where outcome = 'retry')::int as retries,
                    count(*) filter (where outcome = 'dead')::int as dead,
                    count(*) filter (where outcome = 'lost')::int as lost
               from loomtrace.outbox_attempts
              where finished_at >= date_trunc('minute', now()) - make_interval(mins => $1::int - 1)
              group by 1
           ), e as (
             select date_trunc('minute', enqueued_at) as t, count(*)::int as enqueued
               from loomtrace.outbox
              where enqueued_at >= date_trunc('minute', now()) - make_interval(mins => $1::int - 1)
              group by 1
           ), open_events as (
             -- Events not yet finished at some point of the window (one pass over the outbox).
             select enqueued_at, coalesce(done_at, dead_at) as end_at
               from loomtrace.outbox
              where coalesce(done_at, dead_at, 'infinity') >= date_trunc('minute', now()) - make_interval(mins => $1::int - 1)
           ), q as (
             -- Queue depth and the oldest unfinished event's age at the end of each minute.
             select b.t, count(o.enqueued_at)::int as depth,
                    extract(epoch from least(b.t + interval '1 minute', now()) - min(o.enqueued_at))::float8 as oldest_s
               from b left join open_events o
                 on o.enqueued_at <= least(b.t + interval '1 minute', now())
                and (o.end_at is null or o.end_at > least(b.t + interval '1 minute', now()))
              group by b.t
           )
           select b.t, q.depth, q.oldest_s, coalesce(d.done, 0) as done, d.p50 as lag_p50_ms, d.p95 as lag_p95_ms, d.p99 as lag_p99_ms,
                  coalesce(a.retries, 0) as retries, coalesce(a.dead, 0) as dead, coalesce(a.lost, 0) as lost,
                  coalesce(e.enqueued, 0) as enqueued
             from b join q using (t) left join d using (t) left join a using (t) left join e using (t)
            order by b.t`,
    values: [minutes],
  });
  return rows;
}

/** p95 durations of the pipeline's spans by name over the last `minutes` (from stored spans). */
export async function selectStepDurations(db: Queryable, minutes: number): Promise<{ name: string; count: number; p95_ms: number }[]> {
  const { rows } = await db.query<{ name: string; count: number; p95_ms: number }>({
    name: 'explorer_step_p95',
    text: `select name, count(*)::int as count,
                  percentile_cont(0.95) within group (order by (end_ns - start_ns) / 1e6) as p95_ms
             from explorer.spans
            where start_ns >= (extract(epoch from now() - make_interval(mins => $1::int)) * 1e9)::bigint
              and (name like 'process %' or name like 'queue wait %' or name like 'write %' or name like 'ack %'
                   or name like 'claim %' or name like 'send %' or name = 'db transaction')
            group by name order by name`,
    values: [minutes],
  });
  return rows;
}
