import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { blockEvent } from './support/events.js';
import { until } from './support/wait.js';
import { createPool } from '@loomtrace/outbox';
import { migrate, migrationsDir, runMigrations } from '@loomtrace/outbox';
import { enqueueMany } from '@loomtrace/outbox';
import { WRITTEN } from '@loomtrace/outbox';
import type { Sink } from '@loomtrace/outbox';
import type { OutboxEvent } from '@loomtrace/outbox';
import { OutboxWorker } from '@loomtrace/outbox';

/**
 * The queue table (migration 000040, decision 0008): pending events wait in
 * `loomtrace.outbox_queue`, claimed batches in `loomtrace.outbox_leases`, and the outbox row
 * itself is updated in place (HOT) by the ack (since decision 0013 the claim leaves it alone).
 */

const event = blockEvent;

/** A sink that remembers what it was handed. */
function recordingSink(): Sink & { seen: string[] } {
  const seen: string[] = [];
  return {
    name: 'recording',
    system: 'test',
    seen,
    async write(events: readonly OutboxEvent[]) {
      for (const e of events) seen.push(e.id);
      return events.map(() => WRITTEN);
    },
  };
}

async function counts(db: TestDatabase) {
  const { rows } = await db.pool.query<{ queued: number; leases: number; open: number }>(
    `select (select count(*)::int from loomtrace.outbox_queue) as queued,
            (select count(*)::int from loomtrace.outbox_leases) as leases,
            (select count(*)::int from loomtrace.outbox where state in ('pending', 'claimed')) as open`,
  );
  return rows[0]!;
}

async function drained(db: TestDatabase): Promise<void> {
  await until('the outbox to drain', 15_000, async () => (await counts(db)).open === 0);
}

describe('queue table', () => {
  it('the migration moves pending events into the queue and claimed batches into leases; a worker then finishes all of them', async () => {
    const db = await freshDatabase('queue_migration', { template: false });
    const dir = await mkdtemp(path.join(tmpdir(), 'loomtrace-migrations-'));
    try {
      // The schema as it was before the queue table.
      for (const f of await readdir(migrationsDir())) if (f < '000040') await cp(path.join(migrationsDir(), f), path.join(dir, f));
      await runMigrations(db.pool, { schema: 'loomtrace', dir });
      // Inserted as that schema's producers did (this build's enqueue writes columns added later).
      const ids = (
        await db.pool.query<{ id: string }>(
          `insert into loomtrace.outbox (projection, event_type, aggregate_type, aggregate_id, aggregate_version, payload)
           select 'search', 'block.updated', 'block', gen_random_uuid()::text, g, jsonb_build_object('i', g - 1)
             from generate_series(1, 6) g order by g returning id::text`,
        )
      ).rows.map((r) => r.id);
      const [p1, p2, c1, c2, done, dead] = ids as [string, string, string, string, string, string];
      const token = randomUUID();
      // Two events claimed by a worker that has since died (its lease ended a minute ago).
      await db.pool.query(
        `update loomtrace.outbox set state = 'claimed', attempts = 1, lease_token = $2, lease_owner = 'old-worker',
                claimed_at = now() - interval '2 minutes', lease_expires_at = now() - interval '1 minute'
          where id = any($1::bigint[])`,
        [[c1, c2], token],
      );
      await db.pool.query(`update loomtrace.outbox set state = 'done', attempts = 1, done_at = now() where id = $1`, [done]);
      await db.pool.query(`update loomtrace.outbox set state = 'dead', attempts = 5, dead_at = now() where id = $1`, [dead]);

      await migrate(db.pool);
      const queued = (await db.pool.query<{ id: string }>('select id from loomtrace.outbox_queue order by id')).rows.map((r) => r.id);
      assert.deepEqual(queued, [p1, p2], 'exactly the pending events are queued');
      const leases = (await db.pool.query<{ token: string; owner: string; event_ids: string[] }>('select token, owner, event_ids from loomtrace.outbox_leases')).rows;
      assert.deepEqual(leases, [{ token, owner: 'old-worker', event_ids: [c1, c2] }], 'the claimed batch has its lease row');

      const sink = recordingSink();
      const worker = new OutboxWorker({ pool: db.pool, projection: 'search', sink, listen: false, pollIntervalMs: 20, reclaimIntervalMs: 100, concurrency: 1 });
      await worker.start();
      try {
        await drained(db);
      } finally {
        await worker.stop();
      }
      assert.deepEqual([...sink.seen].sort(), [p1, p2, c1, c2].sort(), 'pending and reclaimed events delivered; done and dead ones not');
      const { rows } = await db.pool.query<{ id: string; state: string; previous_owner: string | null; attempts: number }>(
        'select id, state, previous_owner, attempts from loomtrace.outbox order by id',
      );
      assert.deepEqual(rows.map((r) => r.state), ['done', 'done', 'done', 'done', 'done', 'dead']);
      assert.equal(rows.find((r) => r.id === c1)?.previous_owner, 'old-worker', 'the reclaim remembers the dead worker');
      assert.equal(rows.find((r) => r.id === c1)?.attempts, 2);
      assert.deepEqual(await counts(db), { queued: 0, leases: 0, open: 0 });
    } finally {
      await rm(dir, { recursive: true, force: true });
      await db.drop();
    }
  });

  it("an operator's own UPDATE back to pending re-queues the event; a stray queue row for a finished event is dropped, not delivered", async () => {
    const db = await freshDatabase('queue_requeue');
    try {
      const [a, b] = (await enqueueMany(db.pool, [event(0), event(1)])) as [string, string];
      const sink = recordingSink();
      const worker = new OutboxWorker({ pool: db.pool, projection: 'search', sink, listen: false, pollIntervalMs: 20, concurrency: 1 });
      await worker.start();
      try {
        await drained(db);
        assert.deepEqual([...sink.seen].sort(), [a, b].sort());
        // By hand, as an operator would: send `a` again.
        await db.pool.query(`update loomtrace.outbox set state = 'pending', run_at = now() where id = $1`, [a]);
        // And a queue row that has no business there (`b` is done).
        await db.pool.query(`insert into loomtrace.outbox_queue (id, projection, run_at) values ($1, 'search', now())`, [b]);
        await until('the re-queued event', 10_000, async () => (await counts(db)).queued === 0 && (await counts(db)).open === 0 && sink.seen.length >= 3);
        await new Promise((r) => setTimeout(r, 200));
      } finally {
        await worker.stop();
      }
      assert.deepEqual(sink.seen.filter((id) => id === a).length, 2, 'the re-queued event was delivered again');
      assert.deepEqual(sink.seen.filter((id) => id === b).length, 1, 'the stray queue row did not deliver a done event');
      const { rows } = await db.pool.query<{ state: string; attempts: number }>('select state, attempts from loomtrace.outbox where id = $1', [a]);
      assert.deepEqual(rows[0], { state: 'done', attempts: 2 });
    } finally {
      await db.drop();
    }
  });

  it('the claim leaves the outbox row alone, the ack updates it once, in place (HOT), and no queue or lease row is left behind', async () => {
    const db = await freshDatabase('queue_hot');
    try {
      await enqueueMany(db.pool, Array.from({ length: 2_000 }, (_, i) => event(i)));
      // The worker's own pool: when it ends, its sessions end and flush their statistics.
      const pool = createPool({ connectionString: db.url, max: 4 });
      const worker = new OutboxWorker({ pool, projection: 'search', sink: recordingSink(), listen: false, pollIntervalMs: 20, batchSize: 200, concurrency: 2 });
      await worker.start();
      try {
        await drained(db);
      } finally {
        await worker.stop();
        await pool.end();
      }
      let stats = { upd: 0, hot: 0 };
      await until('the workers’ statistics', 15_000, async () => {
        const { rows } = await db.pool.query<{ upd: string; hot: string }>(
          `select n_tup_upd as upd, n_tup_hot_upd as hot from pg_stat_user_tables where schemaname = 'loomtrace' and relname = 'outbox'`,
        );
        stats = { upd: Number(rows[0]?.upd ?? 0), hot: Number(rows[0]?.hot ?? 0) };
        return stats.upd >= 2_000;
      });
      // Decision 0013: one update per event (the ack), none by the claim.
      assert.equal(stats.upd, 2_000, 'one row update per event');
      assert.ok(stats.hot / stats.upd >= 0.5, `most acks are HOT updates: ${stats.hot} of ${stats.upd}`);
      assert.deepEqual(await counts(db), { queued: 0, leases: 0, open: 0 });
    } finally {
      await db.drop();
    }
  });
});
