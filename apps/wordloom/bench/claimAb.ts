/**
 * Issue 14 (c): would fewer bytes per claimed row move the drain? A/B/C of the claim → ack
 * cycle alone, on the real schema (migrations applied) and the real claim statement (taken from
 * claimEvents itself), alternated, on one Postgres; two connections cycle claim(500) → ack by
 * lease token (the statement of completeBatch) until the backlog is gone, rows in array mode as
 * the worker reads them. `node dist/bench/claimAb.js` (BENCH_EVENTS, default 100000;
 * BENCH_RUNS, default 3).
 *
 * - A `payload`: the claim as it is (payload, attributes and trace context in every row).
 * - B `no-payload`: the same statement returning `null` for the payload: what a sink that does
 *   not need it (the drain's no-op sink; a sink that reads the source of truth) would see.
 * - C `payload-after`: B, then one `select id, payload … where id = any($1)` per batch: what a
 *   sink that needs the payload would pay for fetching it itself.
 * - D `no-commit-ts`: A without the commit timestamp lookup (the claim a server without
 *   `track_commit_timestamp` runs): what the queue wait's exact start costs.
 *
 * Prints events/s, this process's CPU per event (the driver parsing rows), Postgres CPU per
 * event and WAL bytes per event, medians. Nothing here changes the outbox package.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { claimEvents, completeBatch, insertEvents } from '@loomtrace/outbox/internal';
import { createPool, inTransaction, type Pool } from '@loomtrace/outbox';
import { migrateAll } from '../src/db/migrate.js';
import { CostProbe } from './cost.js';
import { benchPayload, fmt, median, startBenchPostgres } from './env.js';

const N = Number(process.env['BENCH_EVENTS'] ?? 100_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const BATCH = 500;

/** The real claim statement's text, captured from claimEvents with a recording Queryable. */
async function claimText(commitTimestamps: boolean): Promise<string> {
  let text = '';
  const rec = { query: async (q: { text: string }) => ((text = q.text), { rows: [] }) };
  await claimEvents(rec as never, { projection: 'search', limit: 1, leaseToken: randomUUID(), owner: 'x', leaseMs: 1, commitTimestamps });
  return text;
}

/** The real ack statement's text, captured from completeBatch the same way. */
async function ackText(): Promise<string> {
  let text = '';
  const rec = { query: async (q: { text: string }) => ((text = q.text), { rows: [{ n: 0 }] }) };
  await completeBatch(rec as never, [], randomUUID());
  return text;
}

type Variant = 'payload' | 'no-payload' | 'payload-after' | 'no-commit-ts';

async function enqueue(pool: Pool, n: number): Promise<void> {
  await inTransaction(pool, async (tx) => {
    for (let from = 0; from < n; from += 5_000) {
      const events = Array.from({ length: Math.min(5_000, n - from) }, (_, k) => ({
        projection: 'search',
        eventType: 'block.updated',
        aggregateType: 'block',
        aggregateId: `00000000-0000-4000-8000-${String(from + k).padStart(12, '0')}`,
        aggregateVersion: 2,
        attributes: { 'loomtrace.library.id': '00000000-0000-4000-8000-000000000002' },
        requestId: `bench-${from + k}`,
        payload: benchPayload(from + k),
      }));
      await insertEvents(tx, events, events.map(() => ({ traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`, tracestate: null })));
    }
    await tx.query('analyze loomtrace.outbox_queue, loomtrace.outbox');
  });
}

async function cycle(c: pg.Client, claim: string, ack: string, variant: Variant): Promise<number> {
  let done = 0;
  for (;;) {
    const token = randomUUID();
    const { rows } = await c.query<unknown[]>({ name: `claim_${variant}`, rowMode: 'array', text: claim, values: ['search', BATCH, token, 'ab', 30_000, null] });
    if (rows.length === 0) return done;
    if (variant === 'payload-after') {
      await c.query({ name: 'payloads', rowMode: 'array', text: 'select id, payload from loomtrace.outbox where id = any($1::bigint[])', values: [rows.map((r) => r[0])] });
    }
    await c.query({ name: 'ack', text: ack, values: [token] });
    done += rows.length;
  }
}

const pgh = await startBenchPostgres((s) => console.log(s));
const url = await pgh.database('bench_claimab');
const pool = createPool({ connectionString: url, max: 4, applicationName: 'bench-claimab' });
try {
  await migrateAll(pool);
  const full = await claimText(true);
  const ack = await ackText();
  const texts: Record<Variant, string> = {
    'no-commit-ts': await claimText(false),
    payload: full,
    'no-payload': full.replace('o.tracestate, o.payload, o.attempts', 'o.tracestate, null::jsonb as payload, o.attempts'),
    'payload-after': full.replace('o.tracestate, o.payload, o.attempts', 'o.tracestate, null::jsonb as payload, o.attempts'),
  };
  if (texts['no-payload'] === full) throw new Error('the claim statement changed: update claimAb.ts');
  const variants: Variant[] = ['payload', 'no-payload', 'payload-after', 'no-commit-ts'];
  const res = Object.fromEntries(variants.map((v) => [v, { rate: [] as number[], cpu: [] as number[], pgCpu: [] as number[], wal: [] as number[] }]));
  const probe = new CostProbe(url, !process.env['DATABASE_URL']);
  await probe.open();
  const clients = [new pg.Client({ connectionString: url }), new pg.Client({ connectionString: url })];
  for (const c of clients) await c.connect();
  for (let rep = 0; rep < RUNS; rep++) {
    for (let k = 0; k < variants.length; k++) {
      const v = variants[(k + rep) % variants.length]!;
      await pool.query('truncate loomtrace.outbox, loomtrace.outbox_attempts, loomtrace.outbox_queue, loomtrace.outbox_leases');
      await pool.query('checkpoint');
      await enqueue(pool, N);
      const before = await probe.snapshot();
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const counts = await Promise.all(clients.map((c) => cycle(c, texts[v], ack, v)));
      const ms = performance.now() - t0;
      const cpu = process.cpuUsage(cpu0);
      const cost = await probe.since(before);
      const n = counts.reduce((a, b) => a + b, 0);
      if (n !== N) throw new Error(`${v}: claimed ${n} of ${N}`);
      const r = res[v]!;
      r.rate.push((n * 1000) / ms);
      r.cpu.push((cpu.user + cpu.system) / n);
      r.pgCpu.push(((cost.pgCpuMs ?? NaN) * 1000) / n);
      r.wal.push(cost.walBytes / n);
      console.log(`  ${v.padEnd(14)} ${fmt((n * 1000) / ms).padStart(8)} events/s, client CPU ${fmt((cpu.user + cpu.system) / n, 1)} µs/event, Postgres CPU ${fmt(((cost.pgCpuMs ?? NaN) * 1000) / n, 1)} µs/event, ${fmt(cost.walBytes / n)} WAL bytes/event`);
    }
  }
  for (const c of clients) await c.end();
  await probe.close();
  const base = median(res['payload']!.rate);
  console.log(`\nclaim → ack alone, ${fmt(N)} events, batch ${BATCH}, 2 connections, median of ${RUNS} (alternated):`);
  for (const v of variants) {
    const r = res[v]!;
    console.log(`  ${v.padEnd(14)} ${fmt(median(r.rate)).padStart(8)} events/s (${fmt(median(r.rate) / base, 2)}× A), client CPU ${fmt(median(r.cpu), 1)} µs/event, Postgres CPU ${fmt(median(r.pgCpu), 1)} µs/event, ${fmt(median(r.wal))} WAL bytes/event`);
  }
} finally {
  await pool.end();
  await pgh.stop();
}
