/**
 * Issue 14 (3): where Postgres's CPU per event goes in the claim → ack cycle, and what cuts it.
 * The cycle alone on the real schema and the real statements (claimEvents' and completeBatch's
 * own texts), variants alternated on one Postgres, two connections cycling claim(500) → ack by
 * lease token; each run also prints Postgres's CPU by process kind (client backends, WAL writer,
 * checkpointer, autovacuum, …) and per statement (pg_stat_statements: execution time, WAL,
 * buffers). `node dist/bench/pgCostAb.js` (BENCH_EVENTS, default 40000; BENCH_RUNS, default 3;
 * BENCH_VARIANTS, a comma-separated subset; BENCH_BREAKDOWN=0 to print the rates only).
 *
 * Before the clock starts, the BRIN index on `done_at` summarizes the backlog's page ranges (as
 * in a table that has been running a while: autosummarize does it as pages fill).
 *
 * - `current`: the schema and statements as they are (the ack stamps `done_at` with the
 *   statement's start: one time per batch, decision 0019).
 * - `ack-clock`: the ack before decision 0019: `done_at = clock_timestamp()`, a reading per row.
 * - `no-brin`: without the BRIN index on `done_at` (measurement: what the index costs the ack).
 * - `no-trigger`: without the requeue trigger (measurement: its WHEN check on every acked row).
 * - `autovac-off`: autovacuum off on the queue, lease and outbox tables (measurement).
 * - `ff100`: the outbox at fillfactor 100 (measurement: pages per row read by the claim and ack).
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { claimEvents, completeBatch } from '@loomtrace/outbox/internal';
import { createPool, type Pool } from '@loomtrace/outbox';
import { migrateAll } from '../src/db/migrate.js';
import { runCycleAb } from './cycleAb.js';
import { fmt, median, startBenchPostgres } from './env.js';

const N = Number(process.env['BENCH_EVENTS'] ?? 40_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const BATCH = Number(process.env['BENCH_BATCH'] ?? 500);

async function captured(run: (db: never) => Promise<unknown>, rows: unknown[]): Promise<string> {
  let text = '';
  await run({ query: async (q: { text: string }) => ((text = q.text), { rows }) } as never);
  return text;
}

const ALL = ['current', 'ack-clock', 'no-brin', 'no-trigger', 'autovac-off', 'ff100'] as const;
type Variant = (typeof ALL)[number];

/** The schema as the migrations leave it (every variant starts from here). */
async function restore(pool: Pool, requeueTrigger: string): Promise<void> {
  await pool.query('create index if not exists outbox_done_brin on loomtrace.outbox using brin (done_at) with (autosummarize = on)');
  await pool.query(requeueTrigger);
  await pool.query('alter table loomtrace.outbox reset (autovacuum_enabled)');
  await pool.query('alter table loomtrace.outbox_queue reset (autovacuum_enabled)');
  await pool.query('alter table loomtrace.outbox_leases reset (autovacuum_enabled)');
  await pool.query('alter table loomtrace.outbox set (fillfactor = 50)');
}

async function prepare(pool: Pool, v: Variant, requeueTrigger: string): Promise<void> {
  await restore(pool, requeueTrigger);
  if (v === 'no-brin') await pool.query('drop index loomtrace.outbox_done_brin');
  if (v === 'no-trigger') await pool.query('drop trigger outbox_requeue on loomtrace.outbox');
  if (v === 'autovac-off') {
    for (const t of ['outbox', 'outbox_queue', 'outbox_leases']) await pool.query(`alter table loomtrace.${t} set (autovacuum_enabled = off)`);
  }
  if (v === 'ff100') await pool.query('alter table loomtrace.outbox set (fillfactor = 100)');
}

/** Each full claim's round trip (ms), in the order the two connections sent them. */
const claimMs: number[] = [];

/** The first and last tenth of the run's claims: does the claim slow down as the queue's dead entries pile up? */
function claimDrift(): string {
  const n = Math.max(1, Math.floor(claimMs.length / 10));
  const first = median(claimMs.slice(0, n));
  const last = median(claimMs.slice(-n));
  claimMs.length = 0;
  return `claim round trip, median of the first / last tenth: ${fmt(first, 2)} / ${fmt(last, 2)} ms`;
}

async function cycle(c: pg.Client, claim: string, ack: string, v: Variant): Promise<number> {
  let done = 0;
  for (;;) {
    const token = randomUUID();
    const t0 = performance.now();
    const { rows } = await c.query<unknown[]>({ name: 'claim', rowMode: 'array', text: claim, values: ['search', BATCH, token, 'ab', 30_000, null] });
    if (rows.length === BATCH) claimMs.push(performance.now() - t0);
    if (rows.length === 0) return done;
    const r = await c.query<{ n: number }>({ name: `ack_${v === 'ack-clock' ? 'clock' : 'statement'}`, text: ack, values: [token] });
    if (r.rows[0]?.n !== rows.length) throw new Error(`${v}: acked ${r.rows[0]?.n} of ${rows.length}`);
    done += rows.length;
  }
}

const pgh = await startBenchPostgres((s) => console.log(s));
const url = await pgh.database('bench_pgcost');
const pool = createPool({ connectionString: url, max: 2, applicationName: 'bench-pgcost' });
try {
  await migrateAll(pool);
  const claim = await captured(
    (db) => claimEvents(db, { projection: 'search', limit: 1, leaseToken: randomUUID(), owner: 'x', leaseMs: 1, commitTimestamps: true }),
    [],
  );
  const ack = await captured((db) => completeBatch(db, [], randomUUID()), [{ n: 0 }]);
  if (!ack.includes('done_at = statement_timestamp()')) throw new Error('the ack statement changed: update pgCostAb.ts');
  const ackClock = ack.replace('done_at = statement_timestamp()', 'done_at = clock_timestamp()');
  const { rows } = await pool.query<{ def: string }>(
    "select pg_get_triggerdef(oid) as def from pg_trigger where tgname = 'outbox_requeue' and tgrelid = 'loomtrace.outbox'::regclass",
  );
  const requeueTrigger = rows[0]!.def.replace(/^CREATE TRIGGER/, 'CREATE OR REPLACE TRIGGER');
  const variants = (process.env['BENCH_VARIANTS']?.split(',') ?? [...ALL]) as Variant[];
  for (const v of variants) if (!ALL.includes(v)) throw new Error(`unknown variant ${v}`);
  await runCycleAb({
    url,
    pool,
    events: N,
    runs: RUNS,
    batch: BATCH,
    variants,
    breakdown: process.env['BENCH_BREAKDOWN'] !== '0',
    prepare: (v) => prepare(pool, v, requeueTrigger),
    loaded: async (v) => {
      if (v !== 'no-brin') await pool.query("select brin_summarize_new_values('loomtrace.outbox_done_brin')");
    },
    after: () => console.log(`    ${claimDrift()}`),
    cycle: (c, v) => cycle(c, claim, v === 'ack-clock' ? ackClock : ack, v),
  });
  await restore(pool, requeueTrigger);
} finally {
  await pool.end();
  await pgh.stop();
}
