/**
 * Issue 14 item 3: how many times should the claim → ack cycle rewrite an event's row? A/B/C of
 * the cycle alone, on the real schema (migrations applied), alternated, on one Postgres; two
 * connections cycle claim(500) → ack by lease token until the backlog is gone, rows in array
 * mode as the worker reads them. `node dist/bench/ackLayoutAb.js` (BENCH_EVENTS, default
 * 100000; BENCH_RUNS, default 3).
 *
 * - `two-updates`: the layout of migration 000040 (decision 0008): the claim HOT-updates every
 *   outbox row (state, attempts, lease), the ack HOT-updates it again (state, done_at).
 * - `ack-only`: the claim leaves the outbox row untouched (the lease facts live in the lease
 *   row; the attempt number is attempts + 1), the ack is the row's only update (state, attempts,
 *   lease token and owner, claimed_at, done_at in one HOT update).
 * - `history`: the outbox row untouched after insert; the ack deletes the lease row and inserts
 *   one compact history row per batch (token, owner, claimed_at, done_at, event ids), from which
 *   an event's state would be derived.
 *
 * Prints events/s, this process's CPU per event, Postgres CPU per event and WAL bytes per event,
 * medians. Nothing here changes the outbox package.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createPool } from '@loomtrace/outbox';
import { migrateAll } from '../src/db/migrate.js';
import { runCycleAb } from './cycleAb.js';
import { startBenchPostgres } from './env.js';

const N = Number(process.env['BENCH_EVENTS'] ?? 100_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const BATCH = 500;

const COLS = `o.id, o.event_type, o.aggregate_type, o.aggregate_id, o.aggregate_version::float8,
  o.request_id, o.attributes, o.traceparent, o.tracestate, o.payload`;

const PICKED = `picked as (
  delete from loomtrace.outbox_queue q
   where q.id = any(array(select id from loomtrace.outbox_queue
                           where projection = $1 and run_at <= clock_timestamp()
                           order by run_at, id limit $2 for update skip locked))
  returning q.id, pg_xact_commit_timestamp(q.xmin) as committed_at
), at as (select clock_timestamp() as t)`;

const CLAIM_TWO = `with ${PICKED}, claimed as (
  update loomtrace.outbox o
     set state = 'claimed', attempts = o.attempts + 1, lease_token = $3, lease_owner = $4,
         claimed_at = at.t, lease_expires_at = at.t + make_interval(secs => $5::float8 / 1000),
         renewals = 0, last_renewed_at = null
    from at where o.id = any(array(select id from picked)) and o.state = 'pending'
  returning ${COLS}, o.attempts, o.run_at, o.enqueued_at, o.claimed_at, o.lease_expires_at
), lease as (
  insert into loomtrace.outbox_leases (token, projection, owner, claimed_at, expires_at, event_ids)
  select $3, $1, $4, min(claimed_at), min(lease_expires_at), array_agg(id order by id) from claimed having count(*) > 0
)
select c.*, p.committed_at from claimed c join picked p on p.id = c.id order by c.id`;

function claimUntouched(guard: boolean): string {
  return `with ${PICKED}, claimed as (
  select ${COLS}, o.attempts + 1 as attempts, o.run_at, o.enqueued_at, at.t as claimed_at,
         at.t + make_interval(secs => $5::float8 / 1000) as lease_expires_at
    from loomtrace.outbox o, at where o.id = any(array(select id from picked))${guard ? " and o.state = 'pending'" : ''}
), lease as (
  insert into loomtrace.outbox_leases (token, projection, owner, claimed_at, expires_at, event_ids)
  select $3, $1, $4, min(claimed_at), min(lease_expires_at), array_agg(id order by id) from claimed having count(*) > 0
)
select c.*, p.committed_at from claimed c join picked p on p.id = c.id order by c.id`;
}

const ACK_TWO = `with lease as (
    delete from loomtrace.outbox_leases where token = $1 returning event_ids
  ), acked as (
    update loomtrace.outbox set state = 'done', done_at = clock_timestamp()
     where id = any(coalesce((select event_ids from lease), '{}'::bigint[])) and lease_token = $1 and state = 'claimed'
    returning 1
  )
  select count(*)::int as n from acked`;

// The statement of packages/outbox/src/sql/completeBatch.ts since decision 0013.
const ACK_ONLY = `with lease as (
    delete from loomtrace.outbox_leases where token = $1
    returning event_ids, owner, claimed_at, expires_at, renewals, last_renewed_at
  ), acked as (
    update loomtrace.outbox o
       set state = 'done', attempts = o.attempts + 1, done_at = clock_timestamp(),
           lease_token = $1, lease_owner = l.owner, claimed_at = l.claimed_at, lease_expires_at = l.expires_at,
           renewals = l.renewals, last_renewed_at = l.last_renewed_at
      from lease l
     where o.id = any(coalesce((select event_ids from lease), '{}'::bigint[])) and o.state = 'pending'
    returning 1
  )
  select count(*)::int as n from acked`;

const ACK_HISTORY = `with lease as (
    delete from loomtrace.outbox_leases where token = $1 returning token, owner, claimed_at, event_ids
  ), h as (
    insert into bench_acks (token, owner, claimed_at, done_at, event_ids)
    select token, owner, claimed_at, clock_timestamp(), event_ids from lease
    returning cardinality(event_ids) as n
  )
  select coalesce(sum(n), 0)::int as n from h`;

type Variant = 'two-updates' | 'ack-only' | 'history';
const SQL: Record<Variant, [claim: string, ack: string]> = {
  'two-updates': [CLAIM_TWO, ACK_TWO],
  'ack-only': [claimUntouched(true), ACK_ONLY],
  history: [claimUntouched(false), ACK_HISTORY],
};

async function cycle(c: pg.Client, v: Variant): Promise<number> {
  const [claim, ack] = SQL[v];
  let done = 0;
  for (;;) {
    const token = randomUUID();
    const { rows } = await c.query<unknown[]>({ name: `claim_${v}`, rowMode: 'array', text: claim, values: ['search', BATCH, token, 'ab', 30_000] });
    if (rows.length === 0) return done;
    const { rows: acked } = await c.query<{ n: number }>({ name: `ack_${v}`, text: ack, values: [token] });
    if (acked[0]?.n !== rows.length) throw new Error(`${v}: acked ${acked[0]?.n} of ${rows.length}`);
    done += rows.length;
  }
}

const pgh = await startBenchPostgres((s) => console.log(s));
const url = await pgh.database('bench_acklayout');
const pool = createPool({ connectionString: url, max: 4, applicationName: 'bench-acklayout' });
try {
  await migrateAll(pool);
  await pool.query(`create table if not exists bench_acks (token uuid primary key, owner text not null, claimed_at timestamptz not null,
                      done_at timestamptz not null, event_ids bigint[] not null)`);
  const variants: Variant[] = ['two-updates', 'ack-only', 'history'];
  await runCycleAb({ url, pool, events: N, runs: RUNS, batch: BATCH, variants, cycle, truncate: ['bench_acks'] });
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await pool.end();
  await pgh.stop();
}
