import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createPool, enqueue, enqueueMany, inTransaction, OutboxWorker, WRITTEN, type Pool, type Sink } from '@loomtrace/outbox';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { blockEvent } from './support/events.js';
import { sleep, until } from './support/wait.js';

const event = blockEvent;

/**
 * How a worker's lanes wake (concurrency 2, real LISTEN/NOTIFY): a notification wakes one idle
 * lane, so a change at a time costs one claim, not one per lane; a lane that claims a full batch
 * wakes the next, so a backlog still has every lane at work.
 */
describe('outbox worker lanes', () => {
  let db: TestDatabase;
  let workerPool: Pool;
  let worker: OutboxWorker | undefined;
  before(async () => {
    db = await freshDatabase('outbox_lanes');
    workerPool = createPool({ connectionString: db.url, max: 6 });
  });
  after(async () => {
    await worker?.stop();
    await workerPool.end();
    await db.drop();
  });

  const start = async (sink: Sink, batchSize: number) => {
    await worker?.stop();
    // No poll, no sweep, no heartbeat within the test: what the pool hands out is claims and acks.
    worker = new OutboxWorker({ pool: workerPool, projection: 'search', sink, concurrency: 2, batchSize, pollIntervalMs: 3_600_000, reclaimIntervalMs: 3_600_000, leaseMs: 120_000, presence: false });
    await worker.start();
    await sleep(200); // both lanes' first (empty) claims are done; both wait
  };

  const isDone = async (id: string) => (await db.pool.query<{ state: string }>('select state from loomtrace.outbox where id = $1', [id])).rows[0]?.state === 'done';

  it('one change at a time: one claim each (the other lane stays asleep)', async () => {
    await start({ name: 'noop', system: 'none', write: async (es) => es.map(() => WRITTEN) }, 10);
    let checkouts = 0;
    const count = () => void checkouts++;
    workerPool.on('acquire', count);
    const n = 10;
    try {
      for (let i = 0; i < n; i++) {
        const id = await inTransaction(db.pool, (tx) => enqueue(tx, event(i)));
        await until(`event ${i} acked`, 10_000, () => isDone(id), { intervalMs: 5 });
        await sleep(20); // the other lane, had it been woken, has claimed (nothing) by now
      }
    } finally {
      workerPool.off('acquire', count);
    }
    // Per change: the claim and the ack. Waking both lanes would add an empty claim per change (3n).
    assert.ok(checkouts >= 2 * n && checkouts <= 2 * n + 2, `${checkouts} connection checkouts for ${n} changes`);
  });

  it('a backlog: a full batch wakes the other lane, both write at once, every event done', async () => {
    let inFlight = 0;
    let most = 0;
    const sink: Sink = {
      name: 'slow',
      system: 'none',
      write: async (es) => {
        most = Math.max(most, ++inFlight);
        await sleep(50);
        inFlight--;
        return es.map(() => WRITTEN);
      },
    };
    await start(sink, 10);
    const ids = await inTransaction(db.pool, (tx) => enqueueMany(tx, Array.from({ length: 80 }, (_, i) => event(i))));
    await until('the backlog drained', 20_000, async () => {
      const { rows } = await db.pool.query<{ n: number }>("select count(*)::int n from loomtrace.outbox where id = any($1::bigint[]) and state = 'done'", [ids]);
      return rows[0]!.n === ids.length;
    });
    assert.equal(most, 2, 'both lanes wrote batches at the same time');
  });
});
