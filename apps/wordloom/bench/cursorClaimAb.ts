/**
 * Issue 14 (3): a claim without a queue row per event. The claim → ack cycle alone, on the real
 * schema (migrations applied), variants alternated on one Postgres, two connections cycling
 * claim(500) → ack by lease token (completeBatch's own statement) until the backlog is gone.
 * `node dist/bench/cursorClaimAb.js` (BENCH_EVENTS, default 100000; BENCH_RUNS, default 3;
 * BENCH_VARIANTS, a comma-separated subset; BENCH_BREAKDOWN=1 for Postgres's CPU by process and
 * per statement).
 *
 * - `current`: claimEvents' own statement: the producer's trigger wrote a queue row per event,
 *   the claim locks it FOR UPDATE SKIP LOCKED, deletes it and reads the outbox row by id.
 * - `cursor`: no queue row for a first attempt (the enqueue trigger only wakes the workers); the
 *   claim reads the outbox rows in (projection, txid, id) order from a per-projection cursor of
 *   transaction snapshots (cursorClaimSql.ts says how it never skips a late commit), one plain
 *   statement.
 * - `cursor-fn`: the same claim in a plpgsql function that takes the cursor's lock before its
 *   statement's snapshot (its result goes through RETURN QUERY's tuplestore).
 * - `cursor-open-tx`: `cursor` while another session holds a writing transaction open (one event
 *   inserted, not committed) for the whole drain; at the end it commits and its event must be
 *   claimed by the next claim.
 * - `current-open-tx`: `current` with the same open transaction (it holds back the horizon: the
 *   queue rows the claims delete stay in the queue's index, and each claim's scan, which starts
 *   at the oldest due entry, steps over all of them).
 *
 * Both schemas carry the `txid` column and its index (added once), so the rows are the same
 * size in every variant; the backlog is committed before the clock starts, so neither the queue
 * row's insert nor the index entry is in the timed part: the untimed enqueue's cost is printed
 * apart. Nothing here changes the outbox package.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { claimEvents, completeBatch, insertEvents } from '@loomtrace/outbox/internal';
import { createPool } from '@loomtrace/outbox';
import { migrateAll } from '../src/db/migrate.js';
import { CURSOR_CLAIM, CURSOR_CLAIM_FUNCTION, CURSOR_CLAIM_PLPGSQL, CURSOR_RESET, CURSOR_SCHEMA, ENQUEUE_NOTIFY_ONLY } from './cursorClaimSql.js';
import { runCycleAb } from './cycleAb.js';
import { ROOT, benchPayload, startBenchPostgres } from './env.js';

const N = Number(process.env['BENCH_EVENTS'] ?? 100_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const BATCH = 500;

const ALL = ['current', 'cursor', 'cursor-fn', 'cursor-open-tx', 'current-open-tx'] as const;
type Variant = (typeof ALL)[number];

async function captured(run: (db: never) => Promise<unknown>, rows: unknown[]): Promise<string> {
  let text = '';
  await run({ query: async (q: { text: string }) => ((text = q.text), { rows }) } as never);
  return text;
}

const pgh = await startBenchPostgres((s) => console.log(s));
const url = await pgh.database('bench_cursorclaim');
const pool = createPool({ connectionString: url, max: 4, applicationName: 'bench-cursorclaim' });
/** The session holding a writing transaction open through a `cursor-open-tx` drain. */
let openTx: pg.Client | undefined;
let lateId: string | undefined;
try {
  await migrateAll(pool);
  const claim = await captured(
    (db) => claimEvents(db, { projection: 'search', limit: 1, leaseToken: randomUUID(), owner: 'x', leaseMs: 1, commitTimestamps: true }),
    [],
  );
  const ack = await captured((db) => completeBatch(db, [], randomUUID()), [{ n: 0 }]);
  // The enqueue trigger as the migrations leave it (a run of this bench may have left the cursor's in this database).
  const enqueueWithQueueRow = readFileSync(path.join(ROOT, 'packages/outbox/migrations/000090_enqueue_without_speculative_insert.sql'), 'utf8');
  if (!enqueueWithQueueRow.includes('insert into loomtrace.outbox_queue')) throw new Error('the enqueue trigger moved: update cursorClaimAb.ts');
  await pool.query(CURSOR_SCHEMA);
  await pool.query(CURSOR_CLAIM_FUNCTION);
  const variants = (process.env['BENCH_VARIANTS']?.split(',') ?? [...ALL]) as Variant[];
  for (const v of variants) if (!ALL.includes(v)) throw new Error(`unknown variant ${v}`);

  const cycle = async (c: pg.Client, v: Variant): Promise<number> => {
    const text = v.startsWith('current') ? claim : v === 'cursor-fn' ? CURSOR_CLAIM_PLPGSQL : CURSOR_CLAIM;
    const name = `claim_${v}`;
    let done = 0;
    for (;;) {
      const token = randomUUID();
      const { rows } = await c.query<unknown[]>({ name, rowMode: 'array', text, values: ['search', BATCH, token, 'ab', 30_000, null] });
      if (rows.length === 0) {
        if (!openTx) return done;
        // The drain went past the open transaction's event; it commits now and must be claimed next.
        const tx = openTx;
        openTx = undefined;
        await tx.query('commit');
        await tx.end();
        continue;
      }
      const late = rows.findIndex((r) => r[0] === lateId);
      if (late >= 0) {
        console.log(`    the event of the transaction held open through the drain (id ${lateId}) was claimed after its commit (batch of ${rows.length})`);
        lateId = undefined;
        done--;
      }
      const r = await c.query<{ n: number }>({ name: 'ack', text: ack, values: [token] });
      if (r.rows[0]?.n !== rows.length) throw new Error(`${v}: acked ${r.rows[0]?.n} of ${rows.length}`);
      done += rows.length;
    }
  };

  await runCycleAb({
    url,
    pool,
    events: N,
    runs: RUNS,
    batch: BATCH,
    variants,
    enqueueCost: true,
    breakdown: process.env['BENCH_BREAKDOWN'] === '1',
    prepare: async (v) => {
      await pool.query(v.startsWith('current') ? enqueueWithQueueRow : ENQUEUE_NOTIFY_ONLY);
      await pool.query(CURSOR_RESET);
    },
    loaded: async (v) => {
      if (!v.endsWith('-open-tx')) return;
      // Begun after the backlog's commit, before the clock: in progress in every snapshot the drain's claims take.
      openTx = new pg.Client({ connectionString: url });
      await openTx.connect();
      await openTx.query('begin');
      const ids = await insertEvents(openTx as never, [{ projection: 'search', eventType: 'block.updated', aggregateType: 'block', aggregateId: 'late', aggregateVersion: 1, payload: benchPayload(0) }], [{ traceparent: null, tracestate: null }]);
      lateId = String(ids[0]);
    },
    cycle,
    after: () => {
      if (lateId !== undefined) throw new Error(`the event of the transaction held open (id ${lateId}) was not claimed after its commit`);
    },
  });
} catch (err) {
  console.error(err);
  process.exitCode = 1;
} finally {
  await openTx?.end().catch(() => undefined);
  await pool.end();
  await pgh.stop();
}
