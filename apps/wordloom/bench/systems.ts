/**
 * The producer side of each system under test, in the bench's own process: install the
 * schema, empty the queue between runs, enqueue in bulk (or one sample at a time for the
 * pick-up latency), and say how many jobs are not finished yet.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { makeWorkerUtils, type WorkerUtils } from 'graphile-worker';
import PgBoss from 'pg-boss';
import { createPool, type Pool } from '@loomtrace/outbox';
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
   * Enqueues n events in bulk. `sampledEvery`: when set, each event carries its own producer
   * trace context (as if each came from its own API request), sampled for one in `sampledEvery`.
   */
  enqueueBulk(n: number, sampledEvery?: number): Promise<void>;
  /** Enqueues one event in its own transaction, carrying `sample` in its payload. */
  enqueueOne(sample: number): Promise<void>;
  /** Jobs not finished (pending, claimed, locked, active). */
  remaining(): Promise<number>;
  close(): Promise<void>;
}

const CHUNK = 5_000;

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
      for (let from = 0; from < n; from += CHUNK) {
        const events = Array.from({ length: Math.min(CHUNK, n - from) }, (_, k) => loomEvent(from + k));
        if (sampledEvery === undefined) {
          await enqueueMany(pool, events);
        } else {
          // One producer context per event, as the API stores it: a fresh trace each.
          const ctx = events.map((_, k) => ({
            traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-${(from + k) % sampledEvery === 0 ? '01' : '00'}`,
            tracestate: null,
          }));
          await insertEvents(pool, events, ctx);
        }
      }
    },
    async enqueueOne(sample) {
      await enqueueMany(pool, [loomEvent(sample, sample)]);
    },
    async remaining() {
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
      for (let from = 0; from < n; from += CHUNK) {
        const specs = Array.from({ length: Math.min(CHUNK, n - from) }, (_, k) => ({ identifier: 'bench', payload: benchPayload(from + k) }));
        await utils.addJobs(specs);
      }
    },
    async enqueueOne(sample) {
      await utils.addJob('bench', { ...benchPayload(sample), sample });
    },
    async remaining() {
      const { rows } = await admin.query<{ n: number }>('select count(*)::int as n from graphile_worker._private_jobs');
      return rows[0]!.n;
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
  await boss.createQueue('bench').catch(() => undefined);
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
      for (let from = 0; from < n; from += CHUNK) {
        await boss.insert(Array.from({ length: Math.min(CHUNK, n - from) }, (_, k) => ({ name: 'bench', data: benchPayload(from + k) })));
      }
    },
    async enqueueOne(sample) {
      await boss.send('bench', { ...benchPayload(sample), sample });
    },
    async remaining() {
      const { rows } = await admin.query<{ n: number }>("select count(*)::int as n from pgboss.job where name = 'bench' and state < 'completed'");
      return rows[0]!.n;
    },
    async close() {
      await admin.end();
      await boss.stop({ graceful: false, close: true, wait: true });
    },
  };
}

export function producer(name: SystemName, url: string): Promise<Producer> {
  return name === 'loomtrace' ? loomtrace(url) : name === 'graphile' ? graphile(url) : pgboss(url);
}
