import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEmbeddedPostgres, ensureDatabase, type EmbeddedHandle } from '../src/db/embedded.js';
import { createPool, type Pool } from '@loomtrace/outbox';
import { migrateAll } from '../src/db/migrate.js';
import { enqueueMany } from '@loomtrace/outbox';
import type { EnqueueInput } from '@loomtrace/outbox';
import { freePort, startWorker, type Proc } from './support/procs.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

/**
 * A real Postgres restart under a running worker process: a server of its own (the shared
 * test server cannot be restarted), stopped with a fast shutdown (clients are cut off) while
 * events flow, down for a while, started again on the same data. Nothing may be lost, nothing
 * dead-lettered, no lease left orphaned, and the worker must carry on by itself.
 */
describe('a Postgres restart while the worker drains', () => {
  const dataDir = path.join(root, '.loomtrace', `test-restart-pg-${randomUUID().slice(0, 8)}`);
  let server: EmbeddedHandle | undefined;
  let pool: Pool | undefined;
  let worker: Proc | undefined;

  after(async () => {
    await worker?.stop();
    await pool?.end().catch(() => undefined);
    await server?.stop().catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
    await rm(`${dataDir}.password`, { force: true });
  });

  it('is survived with every event indexed once at its version', async () => {
    const port = await freePort();
    const settings = { fsync: 'off', synchronous_commit: 'off' };
    server = await startEmbeddedPostgres({ dataDir, port, settings });
    await ensureDatabase(server.adminUrl, 'restart');
    const url = server.urlFor('restart');
    pool = createPool({ connectionString: url, max: 2 });
    await migrateAll(pool);

    const lib = randomUUID();
    const book = randomUUID();
    const events: EnqueueInput[] = Array.from({ length: 2000 }, (_, i) => ({
      projection: 'search',
      eventType: 'block.updated',
      aggregateType: 'block',
      aggregateId: randomUUID(),
      aggregateVersion: 1 + (i % 5),
      attributes: { 'loomtrace.library.id': lib },
      payload: { book_id: book, library_id: lib, block_type: 'text', content: `restart ${i}` },
    }));
    await enqueueMany(pool, events);
    // Slow writes (50 ms per batch of 20) so the restart lands mid-flow; a short lease so a
    // batch that was in flight when the server went away comes back soon.
    worker = await startWorker(url, {
      WORKER_ID: 'w-restart',
      WORKER_BATCH_SIZE: '20',
      WORKER_LEASE_MS: '2000',
      WORKER_POLL_MS: '100',
      LOOMTRACE_FAULTS: 'latency:50,seed:1',
      OTEL_SDK_DISABLED: 'true',
      METRICS_PORT: '-1',
    });
    const done = async () => (await pool!.query<{ n: number }>("select count(*)::int n from loomtrace.outbox where state = 'done'")).rows[0]!.n;
    const until = Date.now() + 30_000;
    while ((await done()) < 200) {
      assert.ok(Date.now() < until, 'the worker never started draining');
      await new Promise((r) => setTimeout(r, 50));
    }

    // Fast shutdown: every connection is cut, mid-claim or mid-ack as it happens.
    const doneBefore = await done();
    await pool.end();
    pool = undefined;
    await server.stop();
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(worker.proc.exitCode, null, `the worker process is still running while the database is down; its last lines:\n${worker.lines.slice(-8).join('\n')}`);
    server = await startEmbeddedPostgres({ dataDir, port, settings });
    pool = createPool({ connectionString: url, max: 2 });

    const end = Date.now() + 60_000;
    for (;;) {
      const n = await done();
      if (n === events.length) break;
      assert.ok(Date.now() < end, `only ${n} of ${events.length} done after the restart (was ${doneBefore})`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const states = (await pool.query<{ state: string; n: number }>('select state, count(*)::int n from loomtrace.outbox group by state')).rows;
    assert.deepEqual(states, [{ state: 'done', n: 2000 }], 'none lost, none dead-lettered, no lease left behind');
    const indexed = await pool.query<{ block_id: string; version: number }>('select block_id, version::int from search.blocks');
    assert.equal(indexed.rowCount, events.length);
    const want = new Map(events.map((e) => [e.aggregateId, e.aggregateVersion]));
    for (const r of indexed.rows) assert.equal(r.version, want.get(r.block_id));
    assert.ok(worker.lines.some((l) => /claim loop error|heartbeat failed|LISTEN failed/.test(l)), 'the worker saw the outage and carried on');
    assert.equal(worker.proc.exitCode, null, 'the worker process survived');
  });
});
