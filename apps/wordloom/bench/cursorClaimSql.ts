/**
 * The SQL of cursorClaimAb.ts's `cursor` variant (measurement only; nothing here is in the
 * outbox package): a first attempt is claimed by a per-projection cursor over the outbox rows in
 * an index range scan, not from a queue row per event.
 *
 * Each event stores its producer's top-level transaction id (`txid xid8 default
 * pg_current_xact_id()`), indexed as (projection, txid, id). The cursor row holds two snapshots,
 * s1 and s2, and a position (txid, id): every event visible in s1 was claimed; the events visible
 * in s2 and not in s1 (the delta) are claimed in (txid, id) order, and those up to the position
 * already were. The delta is fixed (s1 and s2 are stored snapshots, and an event visible in s2
 * is committed, so every later snapshot sees it), so paging it by position never skips an
 * event, whenever it commits. When a claim exhausts the delta it takes the next one in the same
 * statement: s1 := s2, s2 := the statement's own snapshot, position reset.
 *
 * The delta is read in two ordered index scans, never a scan of the range from s1's xmin: (a)
 * the transactions in progress in s1 that s2 sees committed, one index probe each, and (b) the
 * transaction ids that started between s1's xmax and s2's xmax. A transaction that stays open
 * for an hour is in every s1's in-progress list and costs nothing until it commits (its events
 * are then in the next delta); it never holds back other events.
 *
 * Concurrent claimers take the cursor row FOR UPDATE (they queue for it, one claim at a time per
 * projection). A statement whose snapshot is older than the s2 the previous holder stored could
 * page past events it cannot see yet: the plain statement (CURSOR_CLAIM, the `cursor` variant)
 * checks that and then claims from the queue only; the plpgsql function (`cursor-fn`) takes the
 * lock in one statement and its snapshot in the next, so it is never older. Due rows of
 * `outbox_queue` (retries, reclaims, releases) go first, as now. Decision 0021 has the figures.
 */

export const CURSOR_SCHEMA = `
alter table loomtrace.outbox add column if not exists txid xid8 not null default pg_current_xact_id();
create index if not exists outbox_txid_idx on loomtrace.outbox (projection, txid, id);
create table if not exists bench_cursor (
  projection text primary key,
  s1 pg_snapshot not null,
  s2 pg_snapshot not null,
  pos_txid xid8 not null,
  pos_id bigint not null
);`;

/** The cursor starts at "now": events committed before it are the queue's. */
export const CURSOR_RESET = `
delete from bench_cursor;
insert into bench_cursor values ('search', pg_current_snapshot(), pg_current_snapshot(), '0', 0);`;

/** The enqueue trigger of the cursor variant: no queue row for a new event, the wake-up only. */
export const ENQUEUE_NOTIFY_ONLY = `
create or replace function loomtrace.outbox_enqueue_inserted() returns trigger language plpgsql as $$
begin
  if current_setting('loomtrace.enqueue_notify', true) is distinct from 'off' then
    perform pg_notify('loomtrace_outbox', '');
  end if;
  return null;
end $$;`;

const COLS = `o.id, o.event_type, o.aggregate_type, o.aggregate_id, o.aggregate_version, o.request_id, o.attributes, o.traceparent,
  o.tracestate, o.payload, o.attempts, o.previous_owner, o.previous_token, o.previous_lease_ms, o.last_reason, o.last_delay_ms,
  o.last_attempt_span, o.run_at, o.enqueued_at, o.xmin as row_xmin, o.txid`;

/**
 * One page of the delta (lo, hi) after position (pt, pi), at most `lim` rows, in (txid, id) order.
 * Every bound is a row comparison on the index's leading columns (no separate `projection = $1`:
 * with it, the btree starts at the projection's first entry and filters its way to the position,
 * a scan that grows with every page).
 */
export function deltaPage(lo: string, hi: string, pt: string, pi: string, lim: string, cols = COLS): string {
  return `(select u.* from (select x from pg_snapshot_xip(${lo}) x where pg_visible_in_snapshot(x, ${hi}) and x >= ${pt} order by x) xs
            cross join lateral (
              select ${cols} from loomtrace.outbox o
               where (o.projection, o.txid, o.id) > ($1, xs.x, case when xs.x = ${pt} then ${pi} else 0 end)
                 and (o.projection, o.txid) <= ($1, xs.x) and o.state = 'pending'
               order by o.projection, o.txid, o.id limit ${lim}) u
           limit ${lim})
          union all
          (select ${cols} from loomtrace.outbox o
            where (o.projection, o.txid, o.id) > ($1, greatest(${pt}, pg_snapshot_xmax(${lo})), case when ${pt} >= pg_snapshot_xmax(${lo}) then ${pi} else 0 end)
              and (o.projection, o.txid) < ($1, pg_snapshot_xmax(${hi})) and pg_visible_in_snapshot(o.txid, ${hi}) and o.state = 'pending'
            order by o.projection, o.txid, o.id limit ${lim})`;
}

export const CURSOR_CLAIM_FUNCTION = `
create or replace function bench_cursor_claim(p_projection text, p_limit int, p_token uuid, p_owner text, p_lease_ms float8, p_presence int)
returns table (id text, event_type text, aggregate_type text, aggregate_id text, aggregate_version float8, request_id text,
  attributes jsonb, traceparent text, tracestate text, payload jsonb, attempts int, previous_owner text, previous_token uuid,
  previous_lease_ms int, last_reason text, last_delay_ms int, last_attempt_span text, ready_at_ms float8, from_commit boolean,
  claimed_at_ms float8)
language plpgsql as $fn$
#variable_conflict use_column
declare
  c bench_cursor;
begin
  -- One claimer at a time per projection; the next statement's snapshot is taken after this lock.
  select * into c from bench_cursor k where k.projection = $1 for update;
  return query
  with s as (select pg_current_snapshot() as s3, clock_timestamp() as t),
  queued as (
    delete from loomtrace.outbox_queue q
     where q.ctid = any(array(select ctid from loomtrace.outbox_queue where projection = $1 and run_at <= clock_timestamp()
                              order by run_at, id limit p_limit for update skip locked))
    returning q.id, q.xmin as q_xmin
  ),
  nq as (select count(*)::int as n from queued),
  old_page as (
    select * from (${deltaPage('c.s1', 'c.s2', 'c.pos_txid', 'c.pos_id', 'p_limit')}) u
     limit greatest(p_limit - (select n from nq), 0)
  ),
  nold as (select count(*)::int as n, (select n from nq) as nq from old_page),
  new_page as (
    select * from (${deltaPage('c.s2', '(select s3 from s)', "'0'::xid8", '0', 'p_limit')}) u
     where (select n + nq from nold) < p_limit
     limit greatest(p_limit - (select n + nq from nold), 0)
  ),
  page as (
    select *, false as fresh from old_page union all select *, true from new_page
  ),
  advanced as (select (select n + nq from nold) < p_limit as yes),
  cur as (
    update bench_cursor k
       set s1 = case when a.yes then c.s2 else c.s1 end,
           s2 = case when a.yes then (select s3 from s) else c.s2 end,
           pos_txid = coalesce((select p.txid from page p where p.fresh = a.yes order by p.txid desc, p.id desc limit 1),
                               case when a.yes then '0'::xid8 else c.pos_txid end),
           pos_id = coalesce((select p.id from page p where p.fresh = a.yes order by p.txid desc, p.id desc limit 1),
                             case when a.yes then 0 else c.pos_id end)
      from advanced a
     where k.projection = $1
  ),
  claimed as (
    select o.id, o.event_type, o.aggregate_type, o.aggregate_id, o.aggregate_version, o.request_id, o.attributes, o.traceparent,
           o.tracestate, o.payload, o.attempts, o.previous_owner, o.previous_token, o.previous_lease_ms, o.last_reason,
           o.last_delay_ms, o.last_attempt_span, o.run_at, o.enqueued_at, q.q_xmin as row_xmin
      from loomtrace.outbox o join queued q on q.id = o.id where o.state = 'pending'
    union all
    select p.id, p.event_type, p.aggregate_type, p.aggregate_id, p.aggregate_version, p.request_id, p.attributes, p.traceparent,
           p.tracestate, p.payload, p.attempts, p.previous_owner, p.previous_token, p.previous_lease_ms, p.last_reason,
           p.last_delay_ms, p.last_attempt_span, p.run_at, p.enqueued_at, p.row_xmin
      from page p
  ),
  lease as (
    insert into loomtrace.outbox_leases (token, projection, owner, claimed_at, expires_at, event_ids, presence)
    select p_token, $1, p_owner, s.t, s.t + make_interval(secs => p_lease_ms / 1000), array_agg(cl.id order by cl.id), p_presence
      from claimed cl, s group by s.t
  )
  select cl.id::text, cl.event_type, cl.aggregate_type, cl.aggregate_id, cl.aggregate_version::float8, cl.request_id, cl.attributes,
         cl.traceparent, cl.tracestate, cl.payload, cl.attempts + 1, cl.previous_owner, cl.previous_token, cl.previous_lease_ms,
         cl.last_reason, cl.last_delay_ms, cl.last_attempt_span,
         extract(epoch from case when cl.attempts > 0 then cl.run_at
                                 else coalesce(pg_xact_commit_timestamp(cl.row_xmin), cl.enqueued_at) end)::float8 * 1000,
         cl.attempts = 0 and pg_xact_commit_timestamp(cl.row_xmin) is not null,
         extract(epoch from s.t)::float8 * 1000
    from claimed cl, s
   order by cl.id;
end $fn$;`;

export const CURSOR_CLAIM_PLPGSQL = 'select * from bench_cursor_claim($1, $2, $3, $4, $5, $6)';

const NARROW = 'o.id, o.txid, o.ctid';
const OUT_COLS = `o.id, o.event_type, o.aggregate_type, o.aggregate_id, o.aggregate_version, o.request_id, o.attributes, o.traceparent,
  o.tracestate, o.payload, o.attempts, o.previous_owner, o.previous_token, o.previous_lease_ms, o.last_reason, o.last_delay_ms,
  o.last_attempt_span, o.run_at, o.enqueued_at`;

/**
 * The same claim as one plain statement (no plpgsql, no tuplestore; the delta's pages carry
 * (id, txid, ctid) only and the rows are read once, by ctid). Its snapshot is taken before it
 * waits for the cursor row, so a claimer whose snapshot is older than the s2 the previous holder
 * stored (\`fresh\` false: an xid s2 sees committed is in progress in this one, or s2's xmax is
 * beyond this one's) claims from the queue only and leaves the cursor as it is: it must not page
 * a delta it cannot fully see.
 */
export const CURSOR_CLAIM = `
with c as (
  select k.s1, k.s2, k.pos_txid, k.pos_id, s.s3, s.t,
         pg_snapshot_xmax(k.s2) <= pg_snapshot_xmax(s.s3)
           and not exists (select 1 from pg_snapshot_xip(s.s3) x where x < pg_snapshot_xmax(k.s2) and pg_visible_in_snapshot(x, k.s2)) as fresh
    from bench_cursor k, (select pg_current_snapshot() as s3, clock_timestamp() as t) s
   where k.projection = $1
     for update of k
), queued as (
  delete from loomtrace.outbox_queue q
   where q.ctid = any(array(select ctid from loomtrace.outbox_queue where projection = $1 and run_at <= clock_timestamp()
                            order by run_at, id limit $2 for update skip locked))
  returning q.id, q.xmin as q_xmin
), nq as (
  select count(*)::int as n from queued
), old_page as (
  select * from (${deltaPage('(select s1 from c)', '(select s2 from c)', '(select pos_txid from c)', '(select pos_id from c)', '$2', NARROW)}) u
   where (select fresh from c)
   limit greatest($2 - (select n from nq), 0)
), nold as (
  select count(*)::int as n from old_page
), new_page as (
  select * from (${deltaPage('(select s2 from c)', '(select s3 from c)', "'0'::xid8", '0', '$2', NARROW)}) u
   where (select fresh from c) and (select n from nold) + (select n from nq) < $2
   limit greatest($2 - (select n from nq) - (select n from nold), 0)
), page as (
  select id, txid, ctid, false as fresh from old_page union all select id, txid, ctid, true from new_page
), adv as (
  select (select n from nold) + (select n from nq) < $2 as yes
), cur as (
  update bench_cursor k
     set s1 = case when a.yes then c.s2 else c.s1 end,
         s2 = case when a.yes then c.s3 else c.s2 end,
         pos_txid = coalesce((select p.txid from page p where p.fresh = a.yes order by p.txid desc, p.id desc limit 1),
                             case when a.yes then '0'::xid8 else c.pos_txid end),
         pos_id = coalesce((select p.id from page p where p.fresh = a.yes order by p.txid desc, p.id desc limit 1),
                           case when a.yes then 0 else c.pos_id end)
    from adv a, c
   where k.projection = $1 and c.fresh
), claimed as (
  select ${OUT_COLS}, o.xmin as row_xmin from loomtrace.outbox o where o.ctid = any(array(select ctid from page))
  union all
  select ${OUT_COLS}, q.q_xmin from loomtrace.outbox o join queued q on q.id = o.id where o.state = 'pending'
), lease as (
  insert into loomtrace.outbox_leases (token, projection, owner, claimed_at, expires_at, event_ids, presence)
  select $3, $1, $4, c.t, c.t + make_interval(secs => $5::float8 / 1000), array_agg(cl.id order by cl.id), $6::int
    from claimed cl, c group by c.t
)
select cl.id::text, cl.event_type, cl.aggregate_type, cl.aggregate_id, cl.aggregate_version::float8, cl.request_id, cl.attributes,
       cl.traceparent, cl.tracestate, cl.payload, cl.attempts + 1, cl.previous_owner, cl.previous_token, cl.previous_lease_ms,
       cl.last_reason, cl.last_delay_ms, cl.last_attempt_span,
       extract(epoch from case when cl.attempts > 0 then cl.run_at else coalesce(ct.at, cl.enqueued_at) end)::float8 * 1000,
       cl.attempts = 0 and ct.at is not null,
       extract(epoch from c.t)::float8 * 1000
  from claimed cl cross join c cross join lateral (select pg_xact_commit_timestamp(cl.row_xmin) as at) ct
 order by cl.id`;
