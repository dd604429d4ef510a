/**
 * The producer side of each system under test, in the bench's own process: install the
 * schema, empty the queue between runs, enqueue in bulk (or one sample at a time for the
 * pick-up latency), and say how many jobs are not finished yet.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { makeWorkerUtils, type WorkerUtils } from 'graphile-worker';
import { PgBoss } from 'pg-boss';
import { createPool, inTransaction, type Pool } from '@loomtrace/outbox';
import { migrateAll } from '../src/db/migrate.js';
import { enqueueMany } from '@loomtrace/outbox';
import { insertEvents } from '@loomtrace/outbox/internal';
import type { EnqueueInput } from '@loomtrace/outbox';
import { benchPayload } from './env.js';

export type SystemName = 'loomtrace' | 'graphile' | 'pgboss';
export const SYSTEMS: readonly SystemName[] = ['loomtrace', 'graphile', 'pgboss'];
export const LABEL: Record<SystemName, string> = { loomtrace: 'loomtrace', graphile: 'graphile-worker', pgboss: 'pg-boss' };

export interface Producer {
  readonly name: SystemName;
  readonly url: string;
  /** Empties the queue tables and checkpoints, so every run starts from the same state. */
  clean(): Promise<void>;
  /**
   * Enqueues n events in bulk, in ONE transaction, so that the whole backlog becomes visible
   * (and wakes the idle workers) at its commit. `sampledEvery`: when set, each event carries its
   * own producer trace context (as if each came from its own API request), sampled for one in
   * `sampledEvery`.
   */
  enqueueBulk(n: number, sampledEvery?: number): Promise<void>;
  /** Enqueues one event in its own transaction, carrying `sample` in its payload. */
  enqueueOne(sample: number): Promise<void>;
  /**
   * Jobs not finished (pending, claimed, locked, active), polled every millisecond inside the
   * timed interval: it must cost about what each system's own bookkeeping does (graphile-worker
   * and pg-boss count a table their completions shrink).
   */
  remaining(): Promise<number>;
  /** The same answer read the thorough way (every job's own row), checked once after the clock stops. */
  unfinished(): Promise<number>;
  close(): Promise<void>;
}

const CHUNK = 5_000;

/**
 * Run at the end of each bulk enqueue, inside its transaction (ANALYZE counts the transaction's
 * own rows): the planner then knows the backlog is there, as autovacuum would have told it in
 * a system running steadily, instead of planning the claims for the empty table it last saw.
 */
const ANALYZE: Record<SystemName, string> = {
  loomtrace: 'analyze loomtrace.outbox_queue, loomtrace.outbox',
  graphile: 'analyze graphile_worker._private_jobs',
  pgboss: 'analyze pgboss.job',
};

function loomEvent(i: number, sample?: number): EnqueueInput {
  return {
    projection: 'search',
    eventType: 'block.updated',
    aggregateType: 'block',
    aggregateId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    aggregateVersion: 2,
    attributes: { 'loomtrace.library.id': '00000000-0000-4000-8000-000000000002' },
    requestId: `bench-${i}`,
    payload: sample === undefined ? benchPayload(i) : { ...benchPayload(i), sample },
  };
}

/**
 * Whether event i's producer sampled it: one in `every`; a negative `every` (-k) samples one
 * run of 500 consecutive events in every k runs (as many sampled events, in a k-th of the
 * batches: what a batch with a sampled event costs apart from what each sampled event does).
 */
const sampledAt = (i: number, every: number): boolean => (every > 0 ? i % every === 0 : Math.floor(i / 500) % -every === 0);

async function loomtrace(url: string): Promise<Producer> {
  const pool: Pool = createPool({ connectionString: url, max: 4, applicationName: 'bench-producer' });
  await migrateAll(pool);
  return {
    name: 'loomtrace',
    url,
    async clean() {
      await pool.query('truncate loomtrace.outbox, loomtrace.outbox_attempts, loomtrace.outbox_queue, loomtrace.outbox_leases');
      await pool.query('checkpoint');
    },
    async enqueueBulk(n, sampledEvery) {
      await inTransaction(pool, async (tx) => {
        for (let from = 0; from < n; from += CHUNK) {
          const events = Array.from({ length: Math.min(CHUNK, n - from) }, (_, k) => loomEvent(from + k));
          if (sampledEvery === undefined) {
            await enqueueMany(tx, events);
          } else {
            // One producer context per event, as the API stores it: a fresh trace each.
            const ctx = events.map((_, k) => ({
              traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-${sampledAt(from + k, sampledEvery) ? '01' : '00'}`,
              tracestate: null,
            }));
            await insertEvents(tx, events, ctx);
          }
        }
        await tx.query(ANALYZE.loomtrace);
      });
    },
    async enqueueOne(sample) {
      await enqueueMany(pool, [loomEvent(sample, sample)]);
    },
    // An event is unfinished while it is queued (a queue row) or claimed (named by a lease row):
    // the statement that settles it deletes both in the transaction that writes its outbox row
    // (decision 0013). Counting the outbox's rows instead would scan every acked event's row,
    // 100,000 of them, on every poll (decision 0019).
    async remaining() {
      const { rows } = await pool.query<{ n: number }>(
        'select ((select count(*) from loomtrace.outbox_queue) + (select count(*) from loomtrace.outbox_leases))::int as n',
      );
      return rows[0]!.n;
    },
    async unfinished() {
      const { rows } = await pool.query<{ n: number }>("select count(*)::int as n from loomtrace.outbox where state in ('pending', 'claimed')");
      return rows[0]!.n;
    },
    close: () => pool.end(),
  };
}

async function graphile(url: string): Promise<Producer> {
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: url });
  await utils.migrate();
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  return {
    name: 'graphile',
    url,
    async clean() {
      await admin.query('delete from graphile_worker._private_jobs');
      await admin.query('vacuum graphile_worker._private_jobs');
      await admin.query('checkpoint');
    },
    async enqueueBulk(n) {
      // addJobs' own statement (graphile-worker 0.18 helpers.ts), on one client in one transaction.
      await inTx(admin, async () => {
        for (let from = 0; from < n; from += CHUNK) {
          const specs = Array.from({ length: Math.min(CHUNK, n - from) }, (_, k) => ({ identifier: 'bench', payload: benchPayload(from + k) }));
          await admin.query(
            'select 1 from graphile_worker.add_jobs(array(select json_populate_recordset(null::graphile_worker.job_spec, $1::json)), false)',
            [JSON.stringify(specs)],
          );
        }
        await admin.query(ANALYZE.graphile);
      });
    },
    async enqueueOne(sample) {
      await utils.addJob('bench', { ...benchPayload(sample), sample });
    },
    async remaining() {
      const { rows } = await admin.query<{ n: number }>('select count(*)::int as n from graphile_worker._private_jobs');
      return rows[0]!.n;
    },
    async unfinished() {
      return (await admin.query<{ n: number }>('select count(*)::int as n from graphile_worker._private_jobs')).rows[0]!.n;
    },
    async close() {
      await admin.end();
      await utils.release();
    },
  };
}

async function pgboss(url: string): Promise<Producer> {
  const boss = new PgBoss({ connectionString: url, max: 4, supervise: false, schedule: false });
  boss.on('error', () => undefined);
  await boss.start();
  // `notify`: every insert into the queue sends a NOTIFY in its transaction (pg-boss 12); the
  // workers listen (`useListenNotify`, bench/drainChild.ts).
  await boss.createQueue('bench', { notify: true }).catch(() => undefined);
  await boss.updateQueue('bench', { notify: true });
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  return {
    name: 'pgboss',
    url,
    async clean() {
      await admin.query("delete from pgboss.job where name = 'bench'");
      await admin.query('delete from pgboss.archive').catch(() => undefined);
      await admin.query('vacuum pgboss.job');
      await admin.query('checkpoint');
    },
    async enqueueBulk(n) {
      const db = { executeSql: (text: string, values?: unknown[]) => admin.query(text, values) };
      await inTx(admin, async () => {
        for (let from = 0; from < n; from += CHUNK) {
          await boss.insert('bench', Array.from({ length: Math.min(CHUNK, n - from) }, (_, k) => ({ data: benchPayload(from + k) })), { db });
        }
        await admin.query(ANALYZE.pgboss);
      });
    },
    async enqueueOne(sample) {
      await boss.send('bench', { ...benchPayload(sample), sample });
    },
    async remaining() {
      const { rows } = await admin.query<{ n: number }>("select count(*)::int as n from pgboss.job where name = 'bench' and state < 'completed'");
      return rows[0]!.n;
    },
    async unfinished() {
      return (await admin.query<{ n: number }>("select count(*)::int as n from pgboss.job where name = 'bench' and state < 'completed'")).rows[0]!.n;
    },
    async close() {
      await admin.end();
      await boss.stop({ graceful: false, close: true });
    },
  };
}

async function inTx(c: pg.Client, fn: () => Promise<void>): Promise<void> {
  await c.query('begin');
  try {
    await fn();
    await c.query('commit');
  } catch (err) {
    await c.query('rollback').catch(() => undefined);
    throw err;
  }
}

export function producer(name: SystemName, url: string): Promise<Producer> {
  return name === 'loomtrace' ? loomtrace(url) : name === 'graphile' ? graphile(url) : pgboss(url);
}
