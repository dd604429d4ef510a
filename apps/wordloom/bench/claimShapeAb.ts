/**
 * Issue 14 (3): what the claimed rows cost the worker and Postgres, by shape. A/B of the claim →
 * ack cycle alone, on the real schema and the real statements (claimEvents' and completeBatch's
 * own texts), variants alternated on one Postgres; two connections cycle claim(500) → ack by
 * lease token until the backlog is gone, and parse every claimed row as the worker would.
 * `node dist/bench/claimShapeAb.js` (BENCH_EVENTS, default 100000; BENCH_RUNS, default 3).
 *
 * - `current`: the claim as it is: each event as 20 columns, parsed by the driver's type parsers
 *   field by field (jsonb → JSON.parse, float8 → number, bool); the locked queue rows deleted
 *   by ctid (decision 0017).
 * - `by-id`: the claim before decision 0017: the queue rows deleted by id (a second probe of the
 *   queue's primary key per event).
 * - `async`: `current` with the claim's commit not waiting for its WAL flush
 *   (`set_config('synchronous_commit', 'off', true)` in the statement; measured, not adopted).
 * - `row-json`: `current`, each event as one `json_build_array(…)::text` field, one JSON.parse
 *   per row.
 * - `batch-json`: `current`, the whole batch as one `json_agg(…)::text`, one JSON.parse.
 *
 * Prints events/s, this process's CPU per event, Postgres CPU and WAL bytes per event, medians.
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

/** A statement's text, captured from one of the outbox's own functions with a recording Queryable. */
async function captured(run: (db: never) => Promise<unknown>, rows: unknown[]): Promise<string> {
  let text = '';
  await run({ query: async (q: { text: string }) => ((text = q.text), { rows }) } as never);
  return text;
}

type Variant = 'current' | 'by-id' | 'async' | 'row-json' | 'batch-json';

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

/** Claims and acks until nothing is due; returns how many events it parsed. */
async function cycle(c: pg.Client, claim: string, ack: string, v: Variant): Promise<number> {
  let done = 0;
  for (;;) {
    const token = randomUUID();
    const { rows } = await c.query<unknown[]>({ name: `claim_${v}`, rowMode: 'array', text: claim, values: ['search', BATCH, token, 'ab', 30_000, null] });
    let events: unknown[][];
    if (v === 'row-json') events = rows.map((r) => JSON.parse(r[0] as string) as unknown[]);
    else if (v === 'batch-json') events = rows.length ? (JSON.parse(rows[0]![0] as string) as unknown[][]) : [];
    else events = rows;
    if (events.length === 0) return done;
    await c.query({ name: 'ack', text: ack, values: [token] });
    done += events.length;
  }
}

const pgh = await startBenchPostgres((s) => console.log(s));
const url = await pgh.database('bench_claimshape');
const pool = createPool({ connectionString: url, max: 4, applicationName: 'bench-claimshape' });
try {
  await migrateAll(pool);
  const current = await captured(
    (db) => claimEvents(db, { projection: 'search', limit: 1, leaseToken: randomUUID(), owner: 'x', leaseMs: 1, commitTimestamps: true }),
    [],
  );
  const ack = await captured((db) => completeBatch(db, [], randomUUID()), [{ n: 0 }]);
  // The final select list, from its first column to its last alias, as one JSON array instead.
  const list = /select (c\.id::text, c\.event_type[\s\S]*?) as claimed_at_ms\n(\s*)from claimed c join picked p on p\.id = c\.id\n\s*order by c\.id/;
  const m = list.exec(current);
  if (!m) throw new Error('the claim statement changed: update claimShapeAb.ts');
  const fields = m[1]!.replace(/ as \w+/g, '');
  const variant = (t: string, from: string, to: string) => {
    if (!t.includes(from)) throw new Error(`the claim statement changed (${from}): update claimShapeAb.ts`);
    return t.replace(from, to);
  };
  const texts: Record<Variant, string> = {
    current,
    'by-id': variant(current, 'where q.ctid = any(array(\n               select ctid from', 'where q.id = any(array(\n               select id from'),
    async: variant(current, 'select clock_timestamp() as t', "select clock_timestamp() as t, set_config('synchronous_commit', 'off', true) as async_commit"),
    'row-json': current.replace(list, `select json_build_array(${fields})::text as event\n$2from claimed c join picked p on p.id = c.id order by c.id`),
    'batch-json': current.replace(list, `select json_agg(json_build_array(${fields}) order by c.id)::text as batch\n$2from claimed c join picked p on p.id = c.id having count(*) > 0`),
  };
  const variants = (process.env['BENCH_VARIANTS']?.split(',') ?? ['by-id', 'current', 'async', 'row-json', 'batch-json']) as Variant[];
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
      console.log(`  ${v.padEnd(12)} ${fmt((n * 1000) / ms).padStart(8)} events/s, client CPU ${fmt((cpu.user + cpu.system) / n, 1)} µs/event, Postgres CPU ${fmt(((cost.pgCpuMs ?? NaN) * 1000) / n, 1)} µs/event, ${fmt(cost.walBytes / n)} WAL B/event`);
    }
  }
  for (const c of clients) await c.end();
  await probe.close();
  const base = median(res[variants[0]!]!.rate);
  console.log(`\nclaim → ack alone, ${fmt(N)} events, batch ${BATCH}, 2 connections, median of ${RUNS} (alternated):`);
  for (const v of variants) {
    const r = res[v]!;
    console.log(`  ${v.padEnd(12)} ${fmt(median(r.rate)).padStart(8)} events/s (${fmt(median(r.rate) / base, 2)}× ${variants[0]}), client CPU ${fmt(median(r.cpu), 1)} µs/event, Postgres CPU ${fmt(median(r.pgCpu), 1)} µs/event, ${fmt(median(r.wal))} WAL B/event`);
  }
} finally {
  await pool.end();
  await pgh.stop();
}
