import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { context, trace } from '@opentelemetry/api';
import { AlwaysOnSampler, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { enqueue, OutboxWorker, WRITTEN } from '@loomtrace/outbox';
import { resetTracingProbe } from '@loomtrace/outbox/internal';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { until } from './support/wait.js';

const toMs = (t: [number, number]): number => t[0] * 1000 + t[1] / 1e6;

/**
 * A claim that Postgres runs late (sent, then waiting on the server) can pick up an event whose
 * producer committed during that wait. The event's claim and process spans must still start
 * after its producer's `send` span: the claim began, for that event, once the event was ready.
 * Seen under load as `loomtrace check`'s "process search starts before send search".
 */
describe('per-event spans start after the event was sent', () => {
  let db: TestDatabase;
  before(async () => {
    db = await freshDatabase('attempt_order');
  });
  after(async () => {
    trace.disable();
    context.disable();
    resetTracingProbe();
    await db.drop();
  });

  it('a claim held on the server while the event is sent and committed', { timeout: 60_000 }, async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new NodeTracerProvider({ sampler: new AlwaysOnSampler(), spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.disable();
    context.disable();
    provider.register();
    resetTracingProbe();

    // The claim writes the batch's lease row: holding the lease table in SHARE mode makes the
    // worker's claim wait on the server, after the worker took the claim's start time.
    const holder = await db.pool.connect();
    await holder.query('begin');
    await holder.query('lock table loomtrace.outbox_leases in share mode');
    const worker = new OutboxWorker({ pool: db.pool, projection: 'search', sink: { name: 'noop', system: 'none', write: async (es) => es.map(() => WRITTEN) }, listen: false, pollIntervalMs: 20, concurrency: 1 });
    await worker.start();
    try {
      await until('the worker waits in its claim', 10_000, async () => {
        const { rows } = await db.pool.query<{ n: number }>(
          "select count(*)::int n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock' and query like '%delete from loomtrace.outbox_queue%'",
        );
        return rows[0]!.n > 0 ? true : undefined;
      });
      const client = await db.pool.connect();
      let id: string;
      try {
        await client.query('begin');
        id = await trace.getTracer('test').startActiveSpan('PATCH /blocks/:id', async (root) => {
          try {
            return await enqueue(client, { projection: 'search', eventType: 'block.updated', aggregateType: 'block', aggregateId: randomUUID(), aggregateVersion: 2, payload: { n: 1 } });
          } finally {
            root.end();
          }
        });
        await client.query('commit');
      } finally {
        client.release();
      }
      await holder.query('commit');
      await until('the event is acked', 15_000, async () => {
        const { rows } = await db.pool.query<{ state: string }>('select state from loomtrace.outbox where id = $1', [id]);
        return rows[0]?.state === 'done' ? true : undefined;
      });
      await worker.stop();
      await provider.forceFlush();
      const spans = exporter.getFinishedSpans();
      const send = spans.find((s) => s.name === 'send search');
      assert.ok(send, 'the producer span');
      const inTrace = spans.filter((s) => s.spanContext().traceId === send.spanContext().traceId);
      const proc = inTrace.find((s) => s.name === 'process search');
      const claim = inTrace.find((s) => s.name === 'claim search');
      assert.ok(proc && claim, `the event's process and claim spans (${inTrace.map((s) => s.name).join(', ')})`);
      // Two clocks of one host (the SDK's and the worker's) agree to about a millisecond.
      const sendStart = toMs(send.startTime);
      assert.ok(toMs(proc.startTime) >= sendStart - 1, `process starts ${sendStart - toMs(proc.startTime)} ms before send`);
      assert.ok(toMs(claim.startTime) >= sendStart - 1, `claim starts ${sendStart - toMs(claim.startTime)} ms before send`);
      assert.ok(toMs(claim.endTime) >= toMs(claim.startTime), 'the claim span does not end before it starts');
    } finally {
      await holder.query('rollback').catch(() => undefined);
      holder.release();
      await worker.stop();
      await provider.shutdown();
    }
  });
});
