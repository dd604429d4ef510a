/**
 * `node dist/bench/upkeep.js [--events N] [--no-upkeep] [--retention-ms MS]`
 *
 * Flows N events (default 1,000,000) through the outbox: bulk enqueue (enqueueMany, chunks of
 * 10,000, the backlog kept under 50,000), an in-process worker with a no-op sink, and the
 * upkeep loop deleting done events after the retention (default 5 s). Prints the outbox's
 * table size, dead-tuple ratio and the claim time (median of 30 claims of 200 in rolled-back
 * transactions, over 1,000 pending events) before and after. `--no-upkeep` runs the same
 * flow without the upkeep, for comparison.
 *
 * Postgres: DATABASE_URL when set (the outbox of that database is used: run it on a scratch
 * database), otherwise an embedded one in .loomtrace/bench-upkeep-pg with durable defaults.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ensureDatabase, portFree, startEmbeddedPostgres, type EmbeddedHandle } from '../src/db/embedded.js';
import { migrateAll } from '../src/db/migrate.js';
import { createPool, type Pool } from '@loomtrace/outbox';
import { enqueueMany } from '@loomtrace/outbox';
import { WRITTEN } from '@loomtrace/outbox';
import type { Sink } from '@loomtrace/outbox';
import { claimEvents } from '@loomtrace/outbox/internal';
import { queueStats } from '@loomtrace/outbox';
import type { EnqueueInput } from '@loomtrace/outbox';
import { OutboxUpkeep } from '@loomtrace/outbox';
import { OutboxWorker } from '@loomtrace/outbox';

const args = process.argv.slice(2);
const opt = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const N = opt('--events', 1_000_000);
const RETENTION_MS = opt('--retention-ms', 5_000);
const UPKEEP = !args.includes('--no-upkeep');
const CHUNK = 10_000;
const MAX_BACKLOG = 50_000;
const PROJECTION = 'search';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..', '..', '..');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (n: number) => n.toLocaleString('en-US', { maximumFractionDigits: 2 });
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

let embedded: EmbeddedHandle | undefined;
let url = process.env['DATABASE_URL'];
if (!url) {
  let port = 57432;
  while (!(await portFree(port))) port++;
  console.log(`starting embedded Postgres on 127.0.0.1:${port} in .loomtrace/bench-upkeep-pg`);
  embedded = await startEmbeddedPostgres({ dataDir: path.join(root, '.loomtrace', 'bench-upkeep-pg'), port, settings: { max_connections: '100' } });
  const dbName = `bench_upkeep_${UPKEEP ? 'on' : 'off'}`;
  const admin = new pg.Client({ connectionString: embedded.adminUrl });
  await admin.connect();
  await admin.query(`drop database if exists ${dbName} with (force)`);
  await admin.end();
  await ensureDatabase(embedded.adminUrl, dbName);
  url = embedded.urlFor(dbName);
}
const pool = createPool({ connectionString: url, max: 12, applicationName: 'loomtrace-bench-upkeep' });
await migrateAll(pool);

const ev = (i: number): EnqueueInput => ({
  projection: PROJECTION,
  eventType: 'block.updated',
  aggregateType: 'block',
  aggregateId: `b${i % 50_000}`,
  aggregateVersion: 1 + Math.floor(i / 50_000),
  payload: { n: i },
});

interface Snapshot {
  rows: number;
  tableMb: number;
  totalMb: number;
  deadRatio: number;
  claimMs: number;
}

async function sizes(db: Pool): Promise<Omit<Snapshot, 'claimMs'>> {
  const { rows } = await db.query<{ rows: number; table_mb: number; total_mb: number; live: number; dead: number }>(
    `select (select count(*) from loomtrace.outbox)::int as rows,
            pg_relation_size('loomtrace.outbox') / 1048576.0 as table_mb,
            pg_total_relation_size('loomtrace.outbox') / 1048576.0 as total_mb,
            n_live_tup::int as live, n_dead_tup::int as dead
       from pg_stat_user_tables where schemaname = 'loomtrace' and relname = 'outbox'`,
  );
  const r = rows[0]!;
  return { rows: r.rows, tableMb: Number(r.table_mb), totalMb: Number(r.total_mb), deadRatio: r.dead / Math.max(1, r.live + r.dead) };
}

async function snapshot(db: Pool): Promise<Snapshot> {
  await sleep(1_500); // cumulative statistics are flushed about once a second
  const size = await sizes(db);
  // The claim over 1,000 pending events, in transactions that roll back (nothing changes).
  await enqueueMany(db, Array.from({ length: 1_000 }, (_, i) => ev(i)));
  await db.query('analyze loomtrace.outbox');
  const times: number[] = [];
  const client = await db.connect();
  try {
    for (let i = 0; i < 30; i++) {
      await client.query('begin');
      const t0 = performance.now();
      const rows = await claimEvents(client, { projection: PROJECTION, limit: 200, leaseToken: '00000000-0000-4000-8000-000000000000', owner: 'bench', leaseMs: 30_000, commitTimestamps: true });
      times.push(performance.now() - t0);
      await client.query('rollback');
      if (rows.length !== 200) throw new Error(`claim returned ${rows.length}`);
    }
  } finally {
    client.release();
  }
  await db.query(`delete from loomtrace.outbox where state = 'pending'`);
  return { ...size, claimMs: median(times) };
}

const show = (label: string, s: Snapshot) =>
  console.log(
    `${label.padEnd(7)} rows ${fmt(s.rows).padStart(9)} | heap ${fmt(s.tableMb).padStart(8)} MB | heap+indexes ${fmt(s.totalMb).padStart(8)} MB | dead tuples ${(s.deadRatio * 100).toFixed(1).padStart(5)} % | claim(200) median ${s.claimMs.toFixed(2)} ms`,
  );

console.log(`flowing ${fmt(N)} events, upkeep ${UPKEEP ? `on (retention ${RETENTION_MS} ms)` : 'OFF'}`);
const before = await snapshot(pool);
show('before', before);

const sink: Sink = { name: 'noop', system: 'none', write: async (events) => events.map(() => WRITTEN) };
const worker = new OutboxWorker({ pool, projection: PROJECTION, sink, batchSize: 1_000, concurrency: 2, pollIntervalMs: 50, listen: false });
const upkeep = new OutboxUpkeep({ pool, retentionMs: RETENTION_MS, intervalMs: 1_000, batchSize: 10_000 });
await worker.start();
if (UPKEEP) upkeep.start();
const t0 = performance.now();
let sent = 0;
let lastReport = t0;
let peak = { rows: 0, totalMb: 0 };
while (sent < N) {
  const n = Math.min(CHUNK, N - sent);
  await enqueueMany(pool, Array.from({ length: n }, (_, i) => ev(sent + i)));
  sent += n;
  worker.kick();
  for (;;) {
    const pending = (await queueStats(pool)).reduce((s, r) => s + r.pending + r.claimed, 0);
    if (pending < MAX_BACKLOG) break;
    await sleep(20);
  }
  if (performance.now() - lastReport > 10_000) {
    lastReport = performance.now();
    const z = await sizes(pool);
    peak = { rows: Math.max(peak.rows, z.rows), totalMb: Math.max(peak.totalMb, z.totalMb) };
    console.log(`  … ${fmt(sent).padStart(9)} enqueued, ${fmt(worker.stats.done).padStart(9)} done, ${fmt(upkeep.purged).padStart(9)} purged | rows ${fmt(z.rows)} | heap+indexes ${fmt(z.totalMb)} MB | dead tuples ${(z.deadRatio * 100).toFixed(1)} %`);
  }
}
while (worker.stats.done < N) await sleep(50);
const flowMs = performance.now() - t0;
await worker.stop();
console.log(`flowed ${fmt(N)} events in ${fmt(flowMs / 1000)} s (${fmt(N / (flowMs / 1000))} events/s end to end), ${fmt(upkeep.purged)} purged during the flow`);
if (UPKEEP) {
  await sleep(RETENTION_MS + 1_500);
  await upkeep.stop();
  const last = await new OutboxUpkeep({ pool, retentionMs: RETENTION_MS, batchSize: 10_000, maxBatchesPerSweep: 1_000 }).sweep();
  console.log(`final sweep after the retention: ${fmt(last)} purged; ${fmt(upkeep.purged + last)} purged in all, ${upkeep.vacuums} VACUUM(s) by the upkeep`);
}
const after = await snapshot(pool);
show('after', after);
console.log(`claim time after/before: ${(after.claimMs / before.claimMs).toFixed(2)}x; largest seen during the flow (sampled every 10 s): ${fmt(peak.rows)} rows, ${fmt(peak.totalMb)} MB heap+indexes`);
await pool.end();
if (embedded) await embedded.stop();
