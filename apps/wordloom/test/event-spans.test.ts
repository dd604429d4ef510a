import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { captureOtlp as receiver, decodeOtlp as decode, type Obj, type Json } from './support/otlpCapture.js';
import { randomBytes, randomUUID } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { BatchTrace, observeBatchTraces, resetTracingProbe, type FinishTimes, type Settled } from '@loomtrace/outbox/internal';
import { WRITTEN, type ItemOutcome } from '@loomtrace/outbox';
import { insertEvents } from '@loomtrace/outbox/internal';
import type { EnqueueInput } from '@loomtrace/outbox';
import { OutboxWorker } from '@loomtrace/outbox';
import type { Pool } from '@loomtrace/outbox';
import { EventSpanExporter, type OtlpHttpProtocol } from '@loomtrace/otlp';

/**
 * The worker's per-event spans on the fast path (src/tracing/otlp, decision record 0007) are
 * the spans the SDK path makes: the same claimed batches, traced once through the fast
 * exporter by a real worker, then again through the SDK (BatchTrace replayed with the very same
 * inputs), both sent over OTLP/HTTP to local receivers and decoded. Everything is compared
 * (names, kinds, trace ids, parents, times, attributes in order and type, events, links and
 * their attributes, status, tracestate, flags, dropped counts, resource, scope) except the
 * random span ids, which are compared through the tree's shape instead.
 */


function spansOf(reqs: Obj[]): { span: Obj; resource: Json; scope: Json }[] {
  const out: { span: Obj; resource: Json; scope: Json }[] = [];
  for (const r of reqs) for (const rs of (r['resourceSpans'] ?? []) as Obj[]) for (const ss of (rs['scopeSpans'] ?? []) as Obj[]) for (const s of (ss['spans'] ?? []) as Obj[]) out.push({ span: s, resource: rs['resource']!, scope: ss['scope']! });
  return out;
}

const attr = (s: Obj, key: string): Json | undefined => {
  const kv = ((s['attributes'] ?? []) as Obj[]).find((a) => a['key'] === key);
  if (!kv) return undefined;
  const v = kv['value'] as Obj;
  return v['stringValue'] ?? (v['intValue'] !== undefined ? String(v['intValue']) : undefined) ?? v['doubleValue'] ?? v['boolValue'] ?? null;
};

const PER_EVENT = new Set(['queue wait search', 'process search', 'claim search', 'write search', 'ack search']);

/**
 * Span ids replaced by names from the tree: `process:<event>:<attempt>`, its children by their
 * name under it; the previous-attempt link by the name of the span it points to (ids from
 * `names`); the batch link by `batch` (after checking a batch span with that id was exported).
 */
function canonical(spans: Obj[], names: Map<string, string>, batchIds: Set<string>): Map<string, Obj> {
  const out = new Map<string, Obj>();
  const byId = new Map(spans.map((s) => [s['spanId'] as string, s]));
  const nameOf = (s: Obj): string => {
    const n = s['name'] as string;
    if (n === 'process search' || n === 'queue wait search') return `${n}:${String(attr(s, 'messaging.message.id'))}:${String(attr(s, 'loomtrace.attempt'))}`;
    const parent = byId.get(s['parentSpanId'] as string);
    assert.ok(parent, `${n} has its process span as parent`);
    return `${n} < ${nameOf(parent)}`;
  };
  for (const s of spans) names.set(s['spanId'] as string, nameOf(s));
  for (const s of spans) {
    const c = structuredClone(s);
    c['spanId'] = names.get(s['spanId'] as string)!;
    if (typeof c['parentSpanId'] === 'string' && names.has(c['parentSpanId'])) c['parentSpanId'] = names.get(c['parentSpanId'])!;
    for (const l of (c['links'] ?? []) as Obj[]) {
      const kind = ((l['attributes'] ?? []) as Obj[]).find((a) => a['key'] === 'loomtrace.link');
      const which = (kind?.['value'] as Obj | undefined)?.['stringValue'];
      if (which === 'batch') {
        assert.ok(batchIds.has(l['spanId'] as string), 'the batch link points to an exported batch span');
        l['spanId'] = 'batch';
        l['traceId'] = 'batch';
      } else {
        assert.equal(which, 'previous_attempt');
        assert.ok(names.has(l['spanId'] as string), 'the previous-attempt link points to an exported process span');
        l['spanId'] = names.get(l['spanId'] as string)!;
      }
    }
    assert.ok(!out.has(c['spanId'] as string), `one ${String(c['spanId'])}`);
    out.set(c['spanId'] as string, c);
  }
  return out;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('fast per-event spans', () => {
  let db: TestDatabase;
  before(async () => {
    db = await freshDatabase('event_spans');
  });
  after(async () => {
    observeBatchTraces(undefined);
    trace.disable();
    resetTracingProbe();
    await db.drop();
  });

  for (const protocol of ['http/protobuf', 'http/json'] as OtlpHttpProtocol[]) {
    it(`${protocol}: a real worker's batches on the fast path give exactly the SDK path's spans`, async () => {
      const rxSdk = await receiver();
      const rxFast = await receiver();
      const sdkExporter = protocol === 'http/json' ? new JsonTraceExporter({ url: rxSdk.url }) : new ProtoTraceExporter({ url: rxSdk.url });
      const provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': 'event-spans-test', 'service.version': '1.2.3', 'test.array': ['a', 'b'], 'test.int': 7 }),
        sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
        spanProcessors: [new BatchSpanProcessor(sdkExporter, { scheduledDelayMillis: 50 })],
      });
      trace.disable();
      trace.setGlobalTracerProvider(provider);
      resetTracingProbe();
      const fast = new EventSpanExporter({ url: rxFast.url, headers: { 'x-test': '1' }, protocol, timeoutMs: 5_000, compression: 'none', scheduledDelayMs: 50, maxExportBatchSize: 7, maxQueueSize: 10_000 });

      // Every batch's inputs, to trace it again on the SDK path.
      const recorded = new Map<BatchTrace, { args: ConstructorParameters<typeof BatchTrace>; renewals: [number, number, Set<string>][]; finish?: [readonly ItemOutcome[], readonly Settled[], FinishTimes] }>();
      observeBatchTraces({
        created: (t, args) => recorded.set(t, { args: [args[0], args[1], args[2], args[3].map((e) => ({ ...e })), args[4], args[5], args[6]], renewals: [] }),
        renewed: (t, at, lease, kept) => recorded.get(t)?.renewals.push([at, lease, new Set(kept)]),
        finished: (t, o, s, times) => {
          const r = recorded.get(t);
          if (r) r.finish = [[...o], s.map((x) => ({ ...x })), { ...times }];
        },
      });

      // The events: each from its own producer trace (sampled unless said otherwise).
      const tag = randomUUID().slice(0, 8);
      const kinds = ['ok', 'ok2', 'retry', 'dead', 'slow', 'tracestate', 'unsampled', 'root', 'reclaim'] as const;
      const traceIds = new Map<string, string>();
      const input: EnqueueInput[] = [];
      const ctx: { traceparent: string | null; tracestate: string | null }[] = [];
      for (const k of kinds) {
        const traceId = randomBytes(16).toString('hex');
        if (k !== 'root' && k !== 'unsampled') traceIds.set(k, traceId);
        input.push({ projection: 'search', eventType: 'block.updated', aggregateType: 'block', aggregateId: `${k}-${tag}`, aggregateVersion: 4, attributes: { 'loomtrace.library.id': randomUUID(), 'tenant.tier': 2 }, requestId: k === 'ok' ? `req-ünïcödé-✓-${k}` : k === 'ok2' ? `req-${'x'.repeat(150)}` : k === 'tracestate' ? `req-${'é'.repeat(70)}` : `req-${k}`, payload: { k } });
        ctx.push({
          traceparent: k === 'root' ? null : `00-${traceId}-${randomBytes(8).toString('hex')}-${k === 'unsampled' ? '00' : '01'}`,
          tracestate: k === 'tracestate' ? 'vendor=abc,Bad=1' : null,
        });
      }
      const kindOf = (aggregateId: string) => aggregateId.slice(0, aggregateId.lastIndexOf('-'));

      // Worker 1 claims the `reclaim` event alone, cannot renew its lease (its database calls for
      // the heartbeat fail) and finishes late: worker 2 reclaims the event and processes it, and
      // worker 1's ack finds the lease gone (a stale ack, 0 rows).
      const [reclaimId] = await insertEvents(db.pool, [input[kinds.indexOf('reclaim')]!], [ctx[kinds.indexOf('reclaim')]!]);
      let w1Started!: () => void;
      let w1Stopped: Promise<void> | undefined;
      const w1Claimed = new Promise<void>((r) => (w1Started = r));
      const partitioned = new Proxy(db.pool, {
        get(target, prop, receiver) {
          if (prop === 'query') {
            return (q: unknown, ...rest: unknown[]) => {
              const name = typeof q === 'object' && q !== null ? (q as { name?: string }).name : undefined;
              if (name?.startsWith('loomtrace_renew')) return Promise.reject(Object.assign(new Error('connection lost'), { code: 'ECONNRESET' }));
              return (target.query as (...a: unknown[]) => unknown).call(target, q, ...rest);
            };
          }
          const v = Reflect.get(target, prop, receiver) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        },
      }) as Pool;
      const w1 = new OutboxWorker({
        pool: partitioned,
        projection: 'search',
        workerId: `w1-${tag}`,
        eventSpans: fast,
        listen: false,
        pollIntervalMs: 20,
        concurrency: 1,
        leaseMs: 300,
        heartbeatMs: 100,
        reclaimIntervalMs: 3_600_000,
        sink: {
          name: 'slow',
          system: 'none',
          write: async (es) => {
            w1Started();
            await sleep(1_200);
            // One batch only: stop claiming (the heartbeat's failures would lose any other).
            w1Stopped = w1.stop();
            return es.map(() => WRITTEN);
          },
        },
      });
      await w1.start();
      await w1Claimed;

      await insertEvents(
        db.pool,
        input.filter((_, i) => kinds[i] !== 'reclaim' && kinds[i] !== 'slow'),
        ctx.filter((_, i) => kinds[i] !== 'reclaim' && kinds[i] !== 'slow'),
      );
      const tries = new Map<string, number>();
      const w2 = new OutboxWorker({
        pool: db.pool,
        projection: 'search',
        workerId: `w2-${tag}`,
        eventSpans: fast,
        listen: false,
        pollIntervalMs: 20,
        concurrency: 1,
        batchSize: 4,
        leaseMs: 2_000,
        heartbeatMs: 120,
        reclaimIntervalMs: 50,
        backoff: { baseMs: 20, maxMs: 40 },
        sink: {
          name: 'scripted',
          system: 'postgresql',
          write: async (es) => {
            if (es.some((e) => kindOf(e.aggregateId) === 'slow')) await sleep(450);
            return es.map((e): ItemOutcome => {
              const k = kindOf(e.aggregateId);
              const n = (tries.get(e.id) ?? 0) + 1;
              tries.set(e.id, n);
              if (k === 'retry' && n === 1) return { kind: 'retry', reason: 'http_429', message: 'too many requests', statusCode: 429 };
              if (k === 'dead') return { kind: 'fail', reason: 'bad_payload', message: 'rejected by the test sink — ünïcode', statusCode: 400 };
              if (k === 'ok2') return { kind: 'stale', statusCode: 200 };
              return WRITTEN;
            });
          },
        },
      });
      await w2.start();
      // The slow one comes alone in a later batch: its write outlives a few heartbeats (lease renewed).
      await sleep(150);
      await insertEvents(db.pool, [input[kinds.indexOf('slow')]!], [ctx[kinds.indexOf('slow')]!]);
      for (const end = Date.now() + 20_000; ; await sleep(25)) {
        const { rows } = await db.pool.query<{ n: number }>("select count(*)::int n from loomtrace.outbox where state in ('pending','claimed')");
        const open = [...recorded.values()].some((r) => !r.finish);
        if (rows[0]!.n === 0 && !open) break;
        if (Date.now() > end) throw new Error('outbox did not drain');
      }
      await w1Stopped;
      await w2.stop();
      observeBatchTraces(undefined);
      await fast.forceFlush();
      await provider.forceFlush();

      const attempts = await db.pool.query<{ aggregate_id: string; attempts: number; state: string }>('select aggregate_id, attempts, state from loomtrace.outbox where aggregate_id like $1', [`%-${tag}`]);
      const byKind = new Map(attempts.rows.map((r) => [kindOf(r.aggregate_id), r]));
      assert.equal(byKind.get('retry')?.attempts, 2, 'the retried event took two attempts');
      assert.equal(byKind.get('dead')?.state, 'dead');
      assert.equal(byKind.get('reclaim')?.attempts, 2, 'the reclaimed event was claimed twice');
      assert.ok(reclaimId);

      // Trace the very same batches again on the SDK path.
      const sdkBefore = rxSdk.bodies.length;
      for (const r of recorded.values()) {
        assert.ok(r.finish);
        const bt = new BatchTrace(...r.args);
        for (const [at, lease, kept] of r.renewals) bt.renewed(at, lease, kept);
        bt.finish(...r.finish);
      }
      await provider.forceFlush();
      await provider.shutdown();
      await fast.shutdown();
      await rxSdk.close();
      await rxFast.close();

      const wanted = new Set(traceIds.values());
      const fastAll = spansOf(decode(rxFast));
      const sdkAll = spansOf(decode(rxSdk));
      const sdkReplay = spansOf(decode({ ...rxSdk, bodies: rxSdk.bodies.slice(sdkBefore) }));
      const batchIds = new Set(sdkAll.filter((x) => x.span['name'] === 'batch search').map((x) => x.span['spanId'] as string));
      assert.ok(fastAll.length > 0, 'the fast exporter sent spans');
      assert.ok(fastAll.every((x) => wanted.has(x.span['traceId'] as string)), 'only sampled events with a stored context take the fast path');
      assert.ok(fastAll.every((x) => PER_EVENT.has(x.span['name'] as string)));
      const sdkEvents = sdkReplay.filter((x) => wanted.has(x.span['traceId'] as string) && PER_EVENT.has(x.span['name'] as string));
      // Every traced attempt: 5 spans (retry and reclaim: two attempts each); nothing for the
      // unsampled change; the root change (no stored context) stays on the SDK path.
      const tracedAttempts = 7 + 2;
      assert.equal(fastAll.length, 5 * tracedAttempts);
      assert.equal(sdkEvents.length, fastAll.length);
      assert.ok(!sdkAll.some((x) => x.span['traceId'] === ctx[kinds.indexOf('unsampled')]!.traceparent!.slice(3, 35)), 'nothing for the sampled-out change');

      // Resource and scope: what the SDK puts on its own spans.
      for (const x of fastAll) {
        assert.deepEqual(x.resource, sdkAll[0]!.resource);
        assert.deepEqual(x.scope, sdkEvents[0]!.scope);
      }
      assert.equal((sdkEvents[0]!.scope as Obj)['name'], 'loomtrace');

      const names = new Map<string, string>();
      const fastC = canonical(fastAll.map((x) => x.span), names, batchIds);
      const sdkC = canonical(sdkEvents.map((x) => x.span), new Map(names), batchIds);
      assert.deepEqual([...fastC.keys()].sort(), [...sdkC.keys()].sort(), 'the same spans, in the same tree');
      for (const [k, f] of fastC) assert.deepEqual(f, sdkC.get(k), `span ${k} is the same on both paths`);

      // And the cases are really there.
      const proc = (kind: string, attempt: number) => [...fastC.values()].find((s) => s['name'] === 'process search' && attr(s, 'loomtrace.aggregate.id') === `${kind}-${tag}` && attr(s, 'loomtrace.attempt') === String(attempt))!;
      const retry2 = proc('retry', 2);
      assert.ok(((retry2['links'] ?? []) as Obj[]).some((l) => String(l['spanId']).startsWith('process search:')), 'attempt 2 links to attempt 1');
      assert.equal(attr(proc('retry', 1), 'loomtrace.outcome'), 'retry');
      assert.equal((proc('dead', 1)['status'] as Obj)['code'], 2, 'the dead-lettered event is an error');
      assert.equal(attr(proc('reclaim', 1), 'loomtrace.ack.rows_affected'), '0', 'worker 1 acked stale');
      assert.ok(fastC.get(`ack search < ${proc('reclaim', 1)['spanId'] as string}`)!['events'], 'the stale ack has its event');
      assert.equal(attr(proc('reclaim', 2), 'loomtrace.reclaimed'), true);
      assert.equal(attr(proc('reclaim', 2), 'loomtrace.lease.previous_owner'), `w1-${tag}`);
      assert.ok(((proc('slow', 1)['events'] ?? []) as Obj[]).some((e) => e['name'] === 'lease renewed'), 'the slow attempt kept its lease');
      assert.equal(proc('tracestate', 1)['traceState'], 'vendor=abc', 'the tracestate as the SDK parses it (the malformed member dropped)');
      assert.equal(fastC.get(`write search < ${proc('ok2', 1)['spanId'] as string}`) && attr(fastC.get(`write search < ${proc('ok2', 1)['spanId'] as string}`)!, 'loomtrace.write.result'), 'stale');
    });
  }

  it('the exporter survives its receiver: retries 503, drops a 400 and when the queue is full, never throws', async () => {
    const rx = await receiver([503, 200, 400]);
    const exporter = new EventSpanExporter({ url: rx.url, headers: {}, protocol: 'http/protobuf', timeoutMs: 3_000, compression: 'none', scheduledDelayMs: 10_000, maxExportBatchSize: 2, maxQueueSize: 3, initialBackoffMs: 20 });
    const origin = { resource: { attributes: { 'service.name': 'x' } }, scope: { name: 'loomtrace' } };
    const span = (i: number) => {
      exporter.writer.beginSpan({ traceId: 'ab'.repeat(16), spanId: undefined, parentSpanId: '12'.repeat(8), traceState: undefined, name: `s${i}`, kind: 1, startMs: 1_700_000_000_000 + i, endMs: 1_700_000_000_001 + i, flags: 0x301 });
      exporter.writer.attr('i', i);
      exporter.writer.endSpan(0, undefined);
    };
    for (let i = 0; i < 5; i++) span(i);
    exporter.submit(origin);
    assert.equal(exporter.dropped, 2, 'a full queue drops and counts');
    await exporter.forceFlush();
    // Batch 1 (2 spans): 503 then 200. Batch 2 (1 span): 400, dropped.
    assert.equal(exporter.exported, 2);
    assert.equal(exporter.failed, 1);
    const got = spansOf(decode(rx));
    assert.deepEqual(got.map((x) => x.span['name']), ['s0', 's1']);
    assert.equal(got[0]!.span['startTimeUnixNano'], '1700000000000000000');
    await rx.close();
    // Nobody listening: the export fails quietly.
    span(9);
    exporter.submit(origin);
    await exporter.forceFlush();
    assert.equal(exporter.failed, 2);
    await exporter.shutdown();
  });

  it('a backlog goes out as up to 4 full batches at once, each within the batch size, none dropped; a partial batch waits for them', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const bodies: { body: Buffer; contentType: string }[] = [];
    const sizes: number[] = [];
    // A receiver slower than the spans come: each answer takes 150 ms.
    const server = createServer((req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () =>
        setTimeout(() => {
          inFlight--;
          bodies.push({ body: Buffer.concat(chunks), contentType: String(req.headers['content-type'] ?? '') });
          sizes.push(inFlight);
          res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
        }, 150),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
    const exporter = new EventSpanExporter({ url, headers: {}, protocol: 'http/protobuf', timeoutMs: 5_000, compression: 'none', scheduledDelayMs: 60_000, maxExportBatchSize: 10, maxQueueSize: 1_000 });
    const origin = { resource: { attributes: { 'service.name': 'x' } }, scope: { name: 'loomtrace' } };
    for (let i = 0; i < 95; i++) {
      exporter.writer.beginSpan({ traceId: 'ab'.repeat(16), spanId: undefined, parentSpanId: undefined, traceState: undefined, name: `s${i}`, kind: 1, startMs: 1_700_000_000_000 + i, endMs: 1_700_000_000_001 + i, flags: 0x301 });
      exporter.writer.endSpan(0, undefined);
    }
    exporter.submit(origin);
    await exporter.forceFlush();
    assert.equal(maxInFlight, 4, 'four full batches in flight at once, not more');
    assert.equal(exporter.dropped, 0);
    assert.equal(exporter.exported, 95);
    const reqs = decode({ url, bodies, status: [], close: async () => undefined });
    const perRequest = reqs.map((r) => spansOf([r]).length);
    assert.ok(perRequest.every((n) => n <= 10), `each request within OTEL_BSP_MAX_EXPORT_BATCH_SIZE: ${perRequest.join(',')}`);
    assert.deepEqual(spansOf(reqs).map((x) => x.span['name']).sort(), Array.from({ length: 95 }, (_, i) => `s${i}`).sort(), 'every span once');
    assert.equal(perRequest[perRequest.length - 1], 5, 'the partial batch last');
    assert.equal(sizes[sizes.length - 1], 0, 'and alone');
    await exporter.shutdown();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
});
