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
import { claimEvents, completeBatch } from '@loomtrace/outbox/internal';
import { createPool } from '@loomtrace/outbox';
import { migrateAll } from '../src/db/migrate.js';
import { runCycleAb } from './cycleAb.js';
import { startBenchPostgres } from './env.js';

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
  await runCycleAb({ url, pool, events: N, runs: RUNS, batch: BATCH, variants, cycle: (c, v) => cycle(c, texts[v], ack, v) });
} finally {
  await pool.end();
  await pgh.stop();
}
