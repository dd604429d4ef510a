import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { inTransaction } from '@loomtrace/outbox';
import { enqueue } from '@loomtrace/outbox';
import { OutboxWorker } from '@loomtrace/outbox';
import { resetTracingProbe } from '@loomtrace/outbox/internal';
import type { Sink } from '@loomtrace/outbox';
import { WRITTEN } from '@loomtrace/outbox';
import { PostgresSearchSink } from '../src/projection/postgres/sink.js';
import type { EnqueueInput, OutboxEvent } from '@loomtrace/outbox';
import { replayEvent } from '@loomtrace/explorer';

/** The library against a real Postgres, in process, with an in-memory span exporter. */
describe('outbox library', () => {
  let db: TestDatabase;
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

  before(async () => {
    trace.setGlobalTracerProvider(provider);
    resetTracingProbe();
    db = await freshDatabase('outbox');
  });
  after(async () => {
    await db.drop();
    await provider.shutdown();
  });

  const lib = randomUUID();
  const book = randomUUID();
  const blockEvent = (blockId: string, version: number, content: string | null, type = 'block.updated'): EnqueueInput => ({
    projection: 'search',
    eventType: type,
    aggregateType: 'block',
    aggregateId: blockId,
    aggregateVersion: version,
    attributes: { 'loomtrace.library.id': lib },
    payload: content === null ? { book_id: book, library_id: lib } : { book_id: book, library_id: lib, block_type: 'text', content },
  });

  async function drain(sink: Sink, opts: { batchSize?: number } = {}): Promise<OutboxWorker> {
    const worker = new OutboxWorker({ pool: db.pool, projection: 'search', sink, listen: false, pollIntervalMs: 20, batchSize: opts.batchSize ?? 50, concurrency: 1 });
    await worker.start();
    const end = Date.now() + 10_000;
    for (;;) {
      const { rows } = await db.pool.query<{ n: number }>("select count(*)::int n from loomtrace.outbox where state in ('pending','claimed')");
      if (rows[0]!.n === 0) break;
      if (Date.now() > end) throw new Error('outbox did not drain');
      await new Promise((r) => setTimeout(r, 20));
    }
    await worker.stop();
    return worker;
  }

  it('a rolled-back transaction leaves no event', async () => {
    const before = (await db.pool.query<{ n: number }>('select count(*)::int n from loomtrace.outbox')).rows[0]!.n;
    await assert.rejects(
      inTransaction(db.pool, async (client) => {
        await enqueue(client, blockEvent(randomUUID(), 1, 'never'));
        throw new Error('the business rule failed after the enqueue');
      }),
      /business rule/,
    );
    const afterCount = (await db.pool.query<{ n: number }>('select count(*)::int n from loomtrace.outbox')).rows[0]!.n;
    assert.equal(afterCount, before);
  });

  it('stores the producer span context in the row', async () => {
    exporter.reset();
    const id = await inTransaction(db.pool, (c) => enqueue(c, blockEvent(randomUUID(), 1, 'ctx')));
    const send = exporter.getFinishedSpans().find((s) => s.name === 'send search')!;
    const { rows } = await db.pool.query('select traceparent from loomtrace.outbox where id = $1', [id]);
    assert.equal(rows[0].traceparent, `00-${send.spanContext().traceId}-${send.spanContext().spanId}-01`);
  });

  it('an older version never overwrites a newer one, and a late update cannot undo a delete', async () => {
    const a = randomUUID();
    const b = randomUUID();
    // Newest first, then the older ones arrive late (separate batches), and one batch with both.
    await inTransaction(db.pool, async (c) => {
      await enqueue(c, blockEvent(a, 3, 'version three'));
      await enqueue(c, blockEvent(b, 5, null, 'block.deleted'));
    });
    await drain(new PostgresSearchSink(db.pool));
    await inTransaction(db.pool, async (c) => {
      await enqueue(c, blockEvent(a, 2, 'version two'));
      await enqueue(c, blockEvent(a, 1, 'version one'));
      await enqueue(c, blockEvent(b, 4, 'resurrected?'));
    });
    exporter.reset();
    const w = await drain(new PostgresSearchSink(db.pool));
    const { rows } = await db.pool.query('select block_id, version::int, deleted, content from search.blocks where block_id = any($1) order by version', [[a, b]]);
    assert.deepEqual(rows.map((r) => [r.block_id, r.version, r.deleted, r.content]), [
      [a, 3, false, 'version three'],
      [b, 5, true, null],
    ]);
    // Stale writes are success: acked, not retried, and the span says `stale`.
    assert.equal(w.stats.done, 3);
    assert.equal(w.stats.retried + w.stats.dead, 0);
    const writes = exporter.getFinishedSpans().filter((s) => s.name === 'write search');
    assert.equal(writes.length, 3);
    assert.ok(writes.every((s) => s.attributes['loomtrace.write.result'] === 'stale'));
  });

  it('a long write keeps its lease by heartbeats, and the renewals are in the row, the trace and the replay', async () => {
    const id = await inTransaction(db.pool, (c) => enqueue(c, blockEvent(randomUUID(), 1, 'slow')));
    // A real sink behind a delay longer than two heartbeats (lease 400 ms, heartbeat 100 ms).
    const real = new PostgresSearchSink(db.pool);
    const slow: Sink = {
      name: 'slow-postgres-search',
      system: 'postgresql',
      async write(events: readonly OutboxEvent[], signal: AbortSignal) {
        await new Promise((r) => setTimeout(r, 700));
        if (signal.aborted) throw signal.reason;
        return real.write(events);
      },
    };
    exporter.reset();
    const worker = new OutboxWorker({ pool: db.pool, projection: 'search', sink: slow, listen: false, pollIntervalMs: 20, concurrency: 1, leaseMs: 400, heartbeatMs: 100 });
    await worker.start();
    const end = Date.now() + 10_000;
    while (worker.stats.done === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await worker.stop();
    assert.equal(worker.stats.done, 1, 'acked under its own, renewed lease');
    assert.equal(worker.stats.reclaimed, 0);
    const { rows } = await db.pool.query<{ state: string; attempts: number; renewals: number }>('select state, attempts, renewals from loomtrace.outbox where id = $1', [id]);
    assert.equal(rows[0]!.state, 'done');
    assert.equal(rows[0]!.attempts, 1, 'never reclaimed, though the write outlived the lease');
    assert.ok(rows[0]!.renewals >= 3, `renewed ${rows[0]!.renewals} times`);
    const proc = exporter.getFinishedSpans().find((s) => s.name === 'process search' && s.attributes['messaging.message.id'] === id)!;
    const renewed = proc.events.filter((e) => e.name === 'lease renewed');
    assert.ok(renewed.length >= 3, `${renewed.length} lease renewed events on the process span`);
    assert.ok(renewed.every((e) => typeof e.attributes?.['loomtrace.lease.expires_at'] === 'string'));
    const replay = await replayEvent(db.pool, id);
    const entry = replay!.timeline.find((t) => t.what === 'renewed');
    assert.ok(entry, 'the replay shows the renewals');
    assert.match(entry.detail, new RegExp(`renewed ${rows[0]!.renewals} times`));
  });

  it('a stale-lease ack changes 0 rows, leaves the event to its new owner, and says so on the span', async () => {
    const id = await inTransaction(db.pool, (c) => enqueue(c, blockEvent(randomUUID(), 1, 'lease')));
    // Fault injection around the real sink: while this worker writes, another owner takes the lease.
    const thief: Sink = {
      name: 'lease-thief',
      system: 'postgresql',
      async write(events: readonly OutboxEvent[]) {
        await db.pool.query("update loomtrace.outbox_leases set token = gen_random_uuid(), owner = 'other-worker' where event_ids && $1::bigint[]", [events.map((e) => e.id)]);
        return events.map(() => WRITTEN);
      },
    };
    exporter.reset();
    const worker = new OutboxWorker({ pool: db.pool, projection: 'search', sink: thief, listen: false, pollIntervalMs: 20, concurrency: 1 });
    await worker.start();
    const end = Date.now() + 10_000;
    while (worker.stats.staleAcks === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    await worker.stop();
    assert.equal(worker.stats.staleAcks, 1);
    assert.equal(worker.stats.done, 0);
    const { rows } = await db.pool.query('select state, lease_owner from loomtrace.outbox_current where id = $1', [id]);
    assert.deepEqual(rows[0], { state: 'claimed', lease_owner: 'other-worker' }, 'the new owner still holds it');
    const ack = exporter.getFinishedSpans().find((s) => s.name === 'ack search')!;
    assert.equal(ack.attributes['loomtrace.ack.rows_affected'], 0);
    assert.equal(ack.attributes['loomtrace.outcome'], 'lost');
    assert.ok(ack.events.some((e) => e.name === 'stale ack: lease lost'));
    const proc = exporter.getFinishedSpans().find((s) => s.name === 'process search')!;
    assert.equal(proc.attributes['loomtrace.ack.rows_affected'], 0);
  });
});
