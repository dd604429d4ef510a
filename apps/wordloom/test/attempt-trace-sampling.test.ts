import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import { AlwaysOnSampler, BasicTracerProvider, InMemorySpanExporter, ParentBasedSampler, SimpleSpanProcessor, type ReadableSpan, type Sampler } from '@opentelemetry/sdk-trace-base';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { resetTracingProbe } from '@loomtrace/outbox/internal';
import { WRITTEN } from '@loomtrace/outbox';
import { insertEvents } from '@loomtrace/outbox/internal';
import type { EnqueueInput } from '@loomtrace/outbox';
import { OutboxWorker } from '@loomtrace/outbox';

/**
 * The worker's per-event trace on its cheap paths (src/outbox/attemptTrace.ts): a change the
 * producer sampled out costs no span with a parent-based sampler, a sampled one keeps the full
 * picture, and a sampler that is not parent-based still gets every event with its attributes.
 */
describe('per-event trace and sampling', () => {
  let db: TestDatabase;
  before(async () => {
    db = await freshDatabase('attempt_trace');
  });
  after(async () => {
    trace.disable();
    resetTracingProbe();
    await db.drop();
  });

  /** Six events, each from its own producer trace; the first three sampled, the others not. */
  async function enqueueSix(): Promise<{ id: string; traceId: string; spanId: string; sampled: boolean }[]> {
    const lib = randomUUID();
    const events: EnqueueInput[] = [];
    const ctx: { traceparent: string; tracestate: null }[] = [];
    for (let i = 0; i < 6; i++) {
      events.push({
        projection: 'search',
        eventType: 'block.updated',
        aggregateType: 'block',
        aggregateId: randomUUID(),
        aggregateVersion: 2,
        attributes: { 'loomtrace.library.id': lib },
        payload: { n: i },
      });
      ctx.push({ traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-${i < 3 ? '01' : '00'}`, tracestate: null });
    }
    const ids = await insertEvents(db.pool, events, ctx);
    return ids.map((id, i) => ({ id, traceId: ctx[i]!.traceparent.slice(3, 35), spanId: ctx[i]!.traceparent.slice(36, 52), sampled: i < 3 }));
  }

  async function drainWith(sampler: Sampler): Promise<ReadableSpan[]> {
    const exporter = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ sampler, spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.disable();
    trace.setGlobalTracerProvider(provider);
    resetTracingProbe();
    const worker = new OutboxWorker({ pool: db.pool, projection: 'search', sink: { name: 'noop', system: 'none', write: async (es) => es.map(() => WRITTEN) }, listen: false, pollIntervalMs: 20, concurrency: 1 });
    await worker.start();
    for (const end = Date.now() + 10_000; ; await new Promise((r) => setTimeout(r, 20))) {
      const { rows } = await db.pool.query<{ n: number }>("select count(*)::int n from loomtrace.outbox where state in ('pending','claimed')");
      if (rows[0]!.n === 0) break;
      if (Date.now() > end) throw new Error('outbox did not drain');
    }
    await worker.stop();
    await provider.forceFlush();
    const spans = exporter.getFinishedSpans();
    await provider.shutdown();
    return spans;
  }

  it('parent-based: sampled-out changes get no span, sampled ones get process, queue wait, claim, write and ack', async () => {
    const events = await enqueueSix();
    const spans = await drainWith(new ParentBasedSampler({ root: new AlwaysOnSampler() }));
    const done = await db.pool.query<{ n: number }>("select count(*)::int n from loomtrace.outbox where state = 'done' and id = any($1::bigint[])", [events.map((e) => e.id)]);
    assert.equal(done.rows[0]!.n, 6, 'every event is acked, traced or not');
    for (const e of events) {
      const inTrace = spans.filter((s) => s.spanContext().traceId === e.traceId);
      if (!e.sampled) {
        assert.equal(inTrace.length, 0, `no span in the sampled-out trace of event ${e.id}`);
        continue;
      }
      const proc = inTrace.find((s) => s.name === 'process search');
      assert.ok(proc, `event ${e.id} has its process span`);
      assert.equal(proc.parentSpanContext?.spanId, e.spanId, 'the process span continues the stored producer context');
      assert.equal(proc.attributes['messaging.message.id'], e.id);
      assert.equal(proc.attributes['loomtrace.ack.rows_affected'], 1);
      assert.ok(proc.links.some((l) => l.attributes?.['loomtrace.link'] === 'batch'), 'linked to the batch trace');
      const children = inTrace.filter((s) => s.parentSpanContext?.spanId === proc.spanContext().spanId).map((s) => s.name).sort();
      assert.deepEqual(children, ['ack search', 'claim search', 'write search']);
      const wait = inTrace.find((s) => s.name === 'queue wait search');
      assert.ok(wait, 'the queue wait is its own span');
      assert.equal(typeof wait.attributes['loomtrace.queue_wait_ms'], 'number');
    }
  });

  it('not parent-based: a sampler that records sampled-out parents still gets every event, with its attributes', async () => {
    const events = await enqueueSix();
    const spans = await drainWith(new AlwaysOnSampler());
    for (const e of events) {
      const proc = spans.find((s) => s.name === 'process search' && s.spanContext().traceId === e.traceId);
      assert.ok(proc, `event ${e.id} (parent sampled: ${e.sampled}) has its process span`);
      assert.equal(proc.attributes['messaging.message.id'], e.id);
      assert.equal(proc.attributes['loomtrace.attempt'], 1);
      assert.equal(typeof proc.attributes['loomtrace.lease.owner'], 'string');
      assert.equal(proc.attributes['loomtrace.outcome'], 'done');
    }
  });
});
