/**
 * The evidence for decision 0008 (docs/decisions/0008-queue-table-and-hot-updates.md): the claim →
 * ack cycle alone, at the SQL level, on scratch copies of the outbox table in five layouts,
 * alternated, on one Postgres. Two connections cycle claim(batch) → ack until the 20,000-event
 * backlog is gone (no worker, no handler). `node dist/bench/queueLayout.js` (BENCH_BATCH,
 * default 200; BENCH_RUNS, default 3; BENCH_ONLY=old,queue50,… to pick layouts).
 *
 * Layouts:
 * - old:      state in the row with partial indexes on it (migrations before 000040): both updates non-HOT
 * - queue50:  the queue table the claim deletes from, batch lease rows, fillfactor 50 (what 000040 does)
 * - queue70:  the same with fillfactor 70
 * - delete:   old claim, ack deletes the row (graphile-worker's way; loses the acked row)
 * - history:  old claim, ack deletes the row and copies it to an indexed history table
 */
import pg from 'pg';
import { fmt, median, startBenchPostgres } from './env.js';

const N = 20_000;
const B = Number(process.env['BENCH_BATCH'] ?? 200);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);

const columns = `id bigint generated always as identity primary key, projection text not null, event_type text not null,
  aggregate_type text not null, aggregate_id text not null, aggregate_version bigint not null, library_id text, request_id text,
  traceparent text, tracestate text, payload jsonb not null default '{}', state text not null default 'pending',
  attempts int not null default 0, enqueued_at timestamptz not null default clock_timestamp(),
  run_at timestamptz not null default clock_timestamp(), lease_token uuid, lease_owner text, claimed_at timestamptz,
  lease_expires_at timestamptz, previous_owner text, previous_token uuid, reclaims int not null default 0,
  previous_lease_ms int, last_reason text, last_error text, last_delay_ms int, last_attempt_span text,
  done_at timestamptz, dead_at timestamptz, renewals int not null default 0, last_renewed_at timestamptz, lease_span text`;
const OLD_INDEXES = `create index on lb_outbox (projection, run_at, id) where state = 'pending';
  create index on lb_outbox (lease_expires_at) where state = 'claimed';
  create index on lb_outbox (done_at) where state = 'done';
  create index on lb_outbox (projection, dead_at) where state = 'dead';`;
const QUEUE_INDEXES = `create index on lb_outbox (dead_at, id) where dead_at is not null;
  create index on lb_outbox using brin (done_at);`;

const OLD_CLAIM = `with picked as (
    select id from lb_outbox where state = 'pending' and projection = 'search' and run_at <= clock_timestamp()
     order by run_at, id limit ${B} for update skip locked)
  update lb_outbox o set state = 'claimed', attempts = o.attempts + 1, lease_token = gen_random_uuid(), lease_owner = 'w',
         claimed_at = clock_timestamp(), lease_expires_at = clock_timestamp() + interval '30s', renewals = 0, last_renewed_at = null
   where o.id = any(array(select id from picked))
  returning o.id, o.lease_token, o.payload, o.traceparent`;
const QUEUE_CLAIM = `with q as (
    delete from lb_queue where id = any(array(
      select id from lb_queue where projection = 'search' and run_at <= clock_timestamp()
       order by run_at, id limit ${B} for update skip locked))
    returning id
  ), c as (
    update lb_outbox o set state = 'claimed', attempts = o.attempts + 1, lease_token = t.token, lease_owner = 'w',
           claimed_at = clock_timestamp(), lease_expires_at = clock_timestamp() + interval '30s', renewals = 0, last_renewed_at = null
      from (select gen_random_uuid() as token) t
     where o.id = any(array(select id from q)) and o.state = 'pending'
    returning o.id, o.lease_token, o.payload, o.traceparent
  ), l as (
    insert into lb_leases (token, owner, expires_at, ids)
    select min(lease_token::text)::uuid, 'w', clock_timestamp() + interval '30s', array_agg(id) from c having count(*) > 0
  )
  select * from c`;

interface Layout {
  fillfactor: number;
  indexes: string;
  queue: boolean;
  claim: string;
  ack: string;
}
const LAYOUTS: Record<string, Layout> = {
  old: {
    fillfactor: 90,
    indexes: OLD_INDEXES,
    queue: false,
    claim: OLD_CLAIM,
    ack: `update lb_outbox set state = 'done', done_at = clock_timestamp() where id = any($1::bigint[]) and lease_token = $2 and state = 'claimed' returning id`,
  },
  queue50: {
    fillfactor: 50,
    indexes: QUEUE_INDEXES,
    queue: true,
    claim: QUEUE_CLAIM,
    ack: `with l as (delete from lb_leases where token = $2 returning 1)
          update lb_outbox set state = 'done', done_at = clock_timestamp()
           where id = any($1::bigint[]) and lease_token = $2 and state = 'claimed' and (select count(*) from l) >= 0 returning id`,
  },
  delete: {
    fillfactor: 90,
    indexes: OLD_INDEXES,
    queue: false,
    claim: OLD_CLAIM,
    ack: `delete from lb_outbox where id = any($1::bigint[]) and lease_token = $2 and state = 'claimed' returning id`,
  },
  history: {
    fillfactor: 90,
    indexes: OLD_INDEXES,
    queue: false,
    claim: OLD_CLAIM,
    ack: `with d as (delete from lb_outbox where id = any($1::bigint[]) and lease_token = $2 and state = 'claimed'
                  returning id, projection, aggregate_id, aggregate_version, attempts, enqueued_at, claimed_at, lease_owner, lease_token, traceparent, request_id)
          insert into lb_history select id, projection, aggregate_id, aggregate_version, attempts, enqueued_at, claimed_at, clock_timestamp(),
                 lease_owner, lease_token, traceparent, request_id from d returning id`,
  },
};
LAYOUTS['queue70'] = { ...LAYOUTS['queue50']!, fillfactor: 70 };
const ORDER = ['old', 'queue50', 'queue70', 'delete', 'history'];

async function prepare(c: pg.Client, l: Layout): Promise<void> {
  await c.query(`drop table if exists lb_outbox, lb_queue, lb_leases, lb_history;
    create table lb_outbox (${columns}) with (fillfactor = ${l.fillfactor});
    ${l.indexes}
    create index on lb_outbox (aggregate_id, aggregate_version);
    create table lb_queue (id bigint primary key, projection text not null, run_at timestamptz not null);
    create index on lb_queue (projection, run_at, id);
    create table lb_leases (token uuid primary key, owner text, expires_at timestamptz, ids bigint[]);
    create table lb_history (id bigint primary key, projection text, aggregate_id text, aggregate_version bigint, attempts int,
      enqueued_at timestamptz, claimed_at timestamptz, done_at timestamptz, lease_owner text, lease_token uuid, traceparent text, request_id text);
    create index on lb_history (aggregate_id, aggregate_version);`);
  await c.query(`insert into lb_outbox (projection, event_type, aggregate_type, aggregate_id, aggregate_version, traceparent, payload)
    select 'search', 'block.updated', 'block', gen_random_uuid()::text, 2,
           '00-' || md5(i::text) || md5(i::text) || '-0123456789abcdef-01', jsonb_build_object('blockId', gen_random_uuid(), 'version', 2)
      from generate_series(1, ${N}) i`);
  if (l.queue) await c.query(`insert into lb_queue select id, projection, run_at from lb_outbox`);
  await c.query('vacuum analyze lb_outbox, lb_queue');
  await c.query('checkpoint');
}

async function cycle(c: pg.Client, l: Layout): Promise<number> {
  let n = 0;
  for (;;) {
    const { rows } = await c.query<{ id: string; lease_token: string }>(l.claim);
    if (rows.length === 0) return n;
    n += rows.length;
    await c.query(l.ack, [rows.map((r) => r.id), rows[0]!.lease_token]);
  }
}

const only = (process.env['BENCH_ONLY'] ?? '').split(',').filter(Boolean);
const names = only.length ? ORDER.filter((k) => only.includes(k)) : ORDER;
const pgh = await startBenchPostgres((s) => console.log(s));
const url = await pgh.database('bench_queue_layout');
const a = new pg.Client({ connectionString: url });
const b = new pg.Client({ connectionString: url });
await a.connect();
await b.connect();
try {
  const rates: Record<string, number[]> = {};
  const hot: Record<string, number[]> = {};
  for (let run = 0; run < RUNS; run++) {
    // Rotate the order every run, so a slow moment of the shared machine hits them alike.
    const order = names.map((_, i) => names[(i + run) % names.length]!);
    for (const k of order) {
      const l = LAYOUTS[k]!;
      await prepare(a, l);
      const t0 = performance.now();
      const [x, y] = await Promise.all([cycle(a, l), cycle(b, l)]);
      const ms = performance.now() - t0;
      if (x + y !== N) throw new Error(`${k}: claimed ${x + y} of ${N}`);
      // Make both sessions publish their statistics now (Postgres 15+).
      await a.query('select pg_stat_force_next_flush()');
      await b.query('select pg_stat_force_next_flush()');
      await b.query('select 1');
      const { rows } = await a.query<{ upd: string; hot: string }>(
        `select n_tup_upd as upd, n_tup_hot_upd as hot from pg_stat_user_tables where relname = 'lb_outbox'`,
      );
      const upd = Number(rows[0]?.upd ?? 0);
      (rates[k] ??= []).push((N * 1000) / ms);
      (hot[k] ??= []).push(upd ? Number(rows[0]!.hot) / upd : 0);
      console.log(`${k.padEnd(8)} ${fmt((N * 1000) / ms).padStart(7)} events/s  HOT ${fmt(100 * (upd ? Number(rows[0]!.hot) / upd : 0))}% of ${fmt(upd)} updates`);
    }
  }
  console.log(`\nclaim → ack cycle, 2 connections, batch ${B}, ${fmt(N)} events, median of ${RUNS}:`);
  for (const k of names) console.log(`  ${k.padEnd(8)} ${fmt(median(rates[k]!)).padStart(7)} events/s  (${fmt(median(rates[k]!) / median(rates['old'] ?? rates[k]!), 2)}× old)  HOT ${fmt(100 * median(hot[k]!))}%`);
} finally {
  await a.end();
  await b.end();
  await pgh.stop();
}
