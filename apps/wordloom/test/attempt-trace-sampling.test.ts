import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { context, trace } from '@opentelemetry/api';
import { isTracingSuppressed } from '@opentelemetry/core';
import { AlwaysOffSampler, AlwaysOnSampler, InMemorySpanExporter, ParentBasedSampler, SimpleSpanProcessor, type ReadableSpan, type Sampler } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { outboxDrained } from './support/wait.js';
import { parseStored, resetTracingProbe, storedSampling } from '@loomtrace/outbox/internal';
import { WRITTEN } from '@loomtrace/outbox';
import { insertEvents } from '@loomtrace/outbox/internal';
import type { EnqueueInput, Sink } from '@loomtrace/outbox';
import { OutboxWorker } from '@loomtrace/outbox';
import { EventSpanExporter, OtlpSpanProcessor } from '@loomtrace/otlp';
import { captureOtlp, decodeOtlp, type Json, type Obj } from './support/otlpCapture.js';

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
    context.disable();
    resetTracingProbe();
    await db.drop();
  });

  /** Six events, each from its own producer trace; the first three sampled, the others not. */
  function enqueueSix(): Promise<{ id: string; traceId: string; spanId: string; sampled: boolean }[]> {
    return enqueue([true, true, true, false, false, false]);
  }

  /** One event per flag, each from its own producer trace, sampled or not. */
  async function enqueue(sampled: boolean[]): Promise<{ id: string; traceId: string; spanId: string; sampled: boolean }[]> {
    const lib = randomUUID();
    const events: EnqueueInput[] = [];
    const ctx: { traceparent: string; tracestate: null }[] = [];
    for (let i = 0; i < sampled.length; i++) {
      events.push({
        projection: 'search',
        eventType: 'block.updated',
        aggregateType: 'block',
        aggregateId: randomUUID(),
        aggregateVersion: 2,
        attributes: { 'loomtrace.library.id': lib },
        payload: { n: i },
      });
      ctx.push({ traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-${sampled[i] ? '01' : '00'}`, tracestate: null });
    }
    const ids = await insertEvents(db.pool, events, ctx);
    return ids.map((id, i) => ({ id, traceId: ctx[i]!.traceparent.slice(3, 35), spanId: ctx[i]!.traceparent.slice(36, 52), sampled: sampled[i]! }));
  }

  async function drainWith(sampler: Sampler, sink: Sink = { name: 'noop', system: 'none', write: async (es) => es.map(() => WRITTEN) }): Promise<ReadableSpan[]> {
    const exporter = new InMemorySpanExporter();
    // NodeTracerProvider.register(): the AsyncLocalStorage context manager, as a process has it.
    const provider = new NodeTracerProvider({ sampler, spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.disable();
    context.disable();
    provider.register();
    resetTracingProbe();
    const worker = new OutboxWorker({ pool: db.pool, projection: 'search', sink, listen: false, pollIntervalMs: 20, concurrency: 1 });
    await worker.start();
    await outboxDrained(db.pool);
    await worker.stop();
    await provider.forceFlush();
    const spans = exporter.getFinishedSpans();
    await provider.shutdown();
    return spans;
  }

  it("a stored context's sampling read without parsing it agrees with the parse, for well-formed and malformed values", () => {
    const tid = randomBytes(16).toString('hex');
    const sid = randomBytes(8).toString('hex');
    const values: (string | null)[] = [
      null,
      '',
      `00-${tid}-${sid}-01`,
      `00-${tid}-${sid}-00`,
      `00-${tid}-${sid}-03`,
      `00-${tid}-${sid}-02`,
      `00-${tid}-${sid}-ff`,
      `00-${tid.toUpperCase()}-${sid}-01`,
      `00-${tid}-${sid.toUpperCase()}-00`,
      `00-${tid}-${sid}-0F`,
      `00-${'0'.repeat(32)}-${sid}-01`,
      `00-${tid}-${'0'.repeat(16)}-00`,
      `01-${tid}-${sid}-01`,
      `00-${tid}-${sid}-01-`,
      `00-${tid}-${sid}-1`,
      `00_${tid}-${sid}-01`,
      `00-${tid.slice(0, 31)}g-${sid}-00`,
      `00-${tid.slice(0, 31)}é-${sid}-00`,
      `00-${tid}-${sid.slice(0, 15)}z-01`,
      `00-${tid}-${sid}-0z`,
    ];
    for (let k = 0; k < 200; k++) values.push(`00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-${randomBytes(1).toString('hex')}`);
    for (const v of values) {
      const p = parseStored(v);
      const expected = p === undefined ? -1 : (p.traceFlags & 1) === 1 ? 1 : 0;
      assert.equal(storedSampling(v), expected, `storedSampling(${JSON.stringify(v)})`);
    }
  });

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

  it('a quiet batch (every event sampled out): no span at all, its write and settle run with tracing suppressed; one sampled event brings the batch trace back', async () => {
    // A sink with an instrumented call of its own: under a quiet batch it must make no span.
    const { seen, sink } = probeSink();
    const sampler = new ParentBasedSampler({ root: new AlwaysOnSampler() });
    const quiet = await enqueue([false, false, false, false]);
    const spans = await drainWith(sampler, sink);
    const done = await db.pool.query<{ n: number }>("select count(*)::int n from loomtrace.outbox where state = 'done' and id = any($1::bigint[])", [quiet.map((e) => e.id)]);
    assert.equal(done.rows[0]!.n, 4, 'every event of the quiet batch is acked');
    assert.deepEqual(seen, [{ suppressed: true, recording: false }], 'one batch, written with tracing suppressed');
    assert.deepEqual(spans.map((s) => s.name), [], 'no batch trace, no claim, no per-event span (the root sampler would have sampled a batch trace)');

    seen.length = 0;
    const mixed = await enqueue([false, true, false, false]);
    const spans2 = await drainWith(sampler, sink);
    assert.deepEqual(seen, [{ suppressed: false, recording: true }], 'a batch with a sampled event is traced as before');
    const batch = spans2.find((s) => s.name === 'batch search');
    assert.ok(batch, 'the batch trace');
    assert.ok(spans2.some((s) => s.name === 'claim search' && s.parentSpanContext?.spanId === batch.spanContext().spanId), 'the batch claim span');
    for (const e of mixed) {
      const inTrace = spans2.filter((s) => s.spanContext().traceId === e.traceId).map((s) => s.name).sort();
      assert.deepEqual(inTrace, e.sampled ? ['ack search', 'claim search', 'process search', 'queue wait search', 'write search'] : [], `event ${e.id} (sampled: ${e.sampled})`);
    }
  });

  it("a batch whose own trace the root sampler declines (a ratio's usual answer): its sampled events keep all five spans, the batch makes no claim span and writes and settles with tracing suppressed", async () => {
    const { seen, sink } = probeSink();
    // Parent-based, declining every root: what parentbased_traceidratio answers for most batches.
    const sampler = new ParentBasedSampler({ root: new AlwaysOffSampler() });
    const mixed = await enqueue([false, true, false, true]);
    const spans = await drainWith(sampler, sink);
    assert.deepEqual(seen, [{ suppressed: true, recording: false }], 'one batch, written with tracing suppressed (its spans would not be recorded)');
    assert.equal(spans.filter((s) => s.name === 'batch search').length, 0, 'no batch trace');
    for (const e of mixed) {
      const inTrace = spans.filter((s) => s.spanContext().traceId === e.traceId);
      assert.deepEqual(inTrace.map((s) => s.name).sort(), e.sampled ? ['ack search', 'claim search', 'process search', 'queue wait search', 'write search'] : [], `event ${e.id} (sampled: ${e.sampled})`);
      if (!e.sampled) continue;
      const proc = inTrace.find((s) => s.name === 'process search')!;
      for (const child of inTrace.filter((s) => ['claim search', 'write search', 'ack search'].includes(s.name))) {
        assert.equal(child.parentSpanContext?.spanId, proc.spanContext().spanId, `${child.name} is a child of the process span`);
      }
      assert.equal(proc.links.filter((l) => l.attributes?.['loomtrace.link'] === 'batch').length, 1, 'the process span still links to the batch');
    }
    assert.equal(spans.length, 10, 'only the two sampled events\' spans');
  });

  it('on the fast path (OTLP/HTTP, as the worker process exports): a quiet batch sends nothing; in a mixed one only the sampled event gets its five spans', async () => {
    const rx = await captureOtlp();
    const exporter = new EventSpanExporter({ url: rx.url, headers: {}, protocol: 'http/protobuf', timeoutMs: 5_000, compression: 'none', scheduledDelayMs: 20, maxExportBatchSize: 512, maxQueueSize: 10_000 });
    // As workerTelemetry.ts wires it: the SDK's own spans go out through the same exporter.
    const provider = new NodeTracerProvider({ sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }), spanProcessors: [new OtlpSpanProcessor(exporter)] });
    trace.disable();
    context.disable();
    provider.register();
    resetTracingProbe();
    const drain = async (): Promise<void> => {
      const worker = new OutboxWorker({ pool: db.pool, projection: 'search', sink: { name: 'noop', system: 'none', write: async (es) => es.map(() => WRITTEN) }, listen: false, pollIntervalMs: 20, concurrency: 1, eventSpans: exporter });
      await worker.start();
      await outboxDrained(db.pool);
      await worker.stop();
      await provider.forceFlush();
      await exporter.forceFlush();
    };
    try {
      await enqueue([false, false, false, false, false]);
      await drain();
      assert.equal(rx.bodies.length, 0, 'no export request for a quiet batch');
      assert.equal(exporter.exported + exporter.dropped + exporter.failed, 0, 'no span queued at all');

      const mixed = await enqueue([false, false, true, false]);
      await drain();
      const spans = decodeOtlp(rx).flatMap((r) => ((r['resourceSpans'] ?? []) as Obj[]).flatMap((rs) => ((rs['scopeSpans'] ?? []) as Obj[]).flatMap((ss) => (ss['spans'] ?? []) as Obj[])));
      // decodeOtlp gives ids as hex.
      const hex = (v: Json | undefined) => String(v);
      for (const e of mixed) {
        const inTrace = spans.filter((sp) => hex(sp['traceId']) === e.traceId).map((sp) => String(sp['name'])).sort();
        assert.deepEqual(inTrace, e.sampled ? ['ack search', 'claim search', 'process search', 'queue wait search', 'write search'] : [], `event ${e.id} (sampled: ${e.sampled})`);
      }
      const sampled = mixed.find((e) => e.sampled)!;
      const wait = spans.find((sp) => sp['name'] === 'queue wait search' && hex(sp['traceId']) === sampled.traceId)!;
      assert.equal(hex(wait['parentSpanId']), sampled.spanId, 'the queue wait is a child of the stored context');
      assert.ok(spans.some((sp) => sp['name'] === 'batch search'), 'the batch trace is back with a sampled event');
      assert.equal(exporter.dropped + exporter.failed, 0);
    } finally {
      await provider.shutdown();
      await exporter.shutdown();
      await rx.close();
    }
  });
});

/** A sink that records, per write, whether tracing was suppressed and whether a span it starts would be recorded. */
function probeSink(): { seen: { suppressed: boolean; recording: boolean }[]; sink: Sink } {
  const seen: { suppressed: boolean; recording: boolean }[] = [];
  const sink: Sink = {
    name: 'probe',
    system: 'none',
    write: async (es) => {
      seen.push({ suppressed: isTracingSuppressed(context.active()), recording: trace.getTracer('sink').startSpan('sink call').isRecording() });
      return es.map(() => WRITTEN);
    },
  };
  return { seen, sink };
}
