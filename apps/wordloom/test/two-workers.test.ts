import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { startWorker, type Proc } from './support/procs.js';
import { enqueueMany } from '@loomtrace/outbox';
import type { EnqueueInput } from '@loomtrace/outbox';

/** Two worker processes, 1,000 events: every event takes effect exactly once. */
describe('two worker processes', () => {
  let db: TestDatabase;
  const workers: Proc[] = [];
  before(async () => {
    db = await freshDatabase('two_workers', { max: 4 });
  });
  after(async () => {
    await Promise.all(workers.map((w) => w.stop()));
    await db.drop();
  });

  it('split 1,000 events between them, each claimed once and indexed at its version', async () => {
    const lib = randomUUID();
    const book = randomUUID();
    const events: EnqueueInput[] = Array.from({ length: 1000 }, (_, i) => ({
      projection: 'search',
      eventType: 'block.updated',
      aggregateType: 'block',
      aggregateId: randomUUID(),
      aggregateVersion: 1 + (i % 7),
      attributes: { 'loomtrace.library.id': lib },
      payload: { book_id: book, library_id: lib, block_type: 'text', content: `item ${i}` },
    }));
    // Small batches so that both workers take part.
    const env = { WORKER_BATCH_SIZE: '25', WORKER_CONCURRENCY: '2', OTEL_SDK_DISABLED: 'true' };
    workers.push(await startWorker(db.url, { ...env, WORKER_ID: 'w-a' }), await startWorker(db.url, { ...env, WORKER_ID: 'w-b' }));
    for (let i = 0; i < events.length; i += 100) await enqueueMany(db.pool, events.slice(i, i + 100));

    const end = Date.now() + 30_000;
    for (;;) {
      const { rows } = await db.pool.query<{ n: number }>("select count(*)::int n from loomtrace.outbox where state = 'done'");
      if (rows[0]!.n === 1000) break;
      assert.ok(Date.now() < end, `only ${rows[0]!.n} of 1000 done`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const stats = (await db.pool.query(`select count(*)::int as events, max(attempts)::int as max_attempts, min(attempts)::int as min_attempts,
                                               count(distinct lease_owner)::int as owners
                                          from loomtrace.outbox`)).rows[0];
    assert.deepEqual(stats, { events: 1000, max_attempts: 1, min_attempts: 1, owners: 2 }, 'each event claimed exactly once, by one of two workers');
    assert.equal((await db.pool.query('select count(*)::int n from loomtrace.outbox_attempts')).rows[0].n, 0, 'no retries, no lost leases');
    const indexed = await db.pool.query<{ block_id: string; version: number; event_id: string }>('select block_id, version::int, event_id::text from search.blocks');
    assert.equal(indexed.rowCount, 1000);
    const want = new Map(events.map((e) => [e.aggregateId, e.aggregateVersion]));
    for (const r of indexed.rows) assert.equal(r.version, want.get(r.block_id));
    assert.equal(new Set(indexed.rows.map((r) => r.event_id)).size, 1000, 'each event wrote its own row once');
  });
});
