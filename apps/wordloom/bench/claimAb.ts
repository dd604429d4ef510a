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
import { claimEvents, completeBatch } from '@loomtrace/outbox/internal';
import { createPool } from '@loomtrace/outbox';
import { migrateAll } from '../src/db/migrate.js';
import { runCycleAb } from './cycleAb.js';
import { startBenchPostgres } from './env.js';

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
  await runCycleAb({ url, pool, events: N, runs: RUNS, batch: BATCH, variants, cycle: (c, v) => cycle(c, texts[v], ack, v) });
} finally {
  await pool.end();
  await pgh.stop();
}
