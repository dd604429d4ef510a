import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { captureOtlp as receiver, decodeOtlp as decode, type Obj, type Received } from './support/otlpCapture.js';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, createContextKey, trace, type Link } from '@opentelemetry/api';
import { TraceState, isTracingSuppressed } from '@opentelemetry/core';
import { AlwaysOnSampler, BasicTracerProvider, ParentBasedSampler, SamplingDecision, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { EventSpanExporter, type OtlpHttpProtocol } from '@loomtrace/otlp';
import { OtlpSpanProcessor } from '@loomtrace/otlp';

/**
 * The SDK's own spans on the fast path (src/tracing/otlp/sdkSpans.ts, decision record 0009)
 * give the OTLP the stock exporter gives: the very same ReadableSpans (every field the SDK
 * records: kinds, remote and local parents, trace state, attributes of every type, non-ASCII
 * and long values, events, links, status with and without a message, dropped counts, two
 * resources, several scopes) go through the stock OTLP/HTTP exporter and through ours, to
 * local receivers, over protobuf and JSON; both are decoded and compared field by field.
 */


/** Every span with its resource, scope and the envelopes' schema urls, by span id. */
function spansOf(reqs: Obj[]): Map<string, Obj> {
  const out = new Map<string, Obj>();
  for (const r of reqs)
    for (const rs of (r['resourceSpans'] ?? []) as Obj[])
      for (const ss of (rs['scopeSpans'] ?? []) as Obj[])
        for (const s of (ss['spans'] ?? []) as Obj[]) {
          assert.ok(!out.has(s['spanId'] as string), 'each span exported once');
          out.set(s['spanId'] as string, { span: s, resource: rs['resource']!, resourceSchema: rs['schemaUrl'] ?? null, scope: ss['scope']!, scopeSchema: ss['schemaUrl'] ?? null });
        }
  return out;
}

/** Makes the spans: two providers (one with span limits, so dropped counts are not zero). */
function makeSpans(): ReadableSpan[] {
  const ended: ReadableSpan[] = [];
  const collect: SpanProcessor = {
    onStart: () => undefined,
    onEnd: (s) => void ended.push(s),
    forceFlush: async () => undefined,
    shutdown: async () => undefined,
  };
  const plain = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'api-trace-test', 'service.version': '9.9.9', 'test.array': ['a', 'b'], 'test.int': 7, 'test.ünï': 'çødé' }),
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [collect],
  });
  const limited = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'api-trace-limited' }),
    spanLimits: { attributeCountLimit: 3, eventCountLimit: 1, linkCountLimit: 1, attributeValueLengthLimit: 10 },
    spanProcessors: [collect],
  });
  const fastify = plain.getTracer('@fastify/otel', '0.21.2');
  const pg = plain.getTracer('@opentelemetry/instrumentation-pg', '0.74.0');
  const ours = plain.getTracer('loomtrace');
  const schema = plain.getTracer('with-schema', '1.0.0', { schemaUrl: 'https://opentelemetry.io/schemas/1.38.0' });
  const lim = limited.getTracer('limited');

  const remote = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
    spanId: '1111111111111111',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: new TraceState('vendor=abc,other=x-y'),
  });
  const t0 = Date.now();
  const server = fastify.startSpan('PATCH /api/v1/blocks/:id', { kind: SpanKind.SERVER, startTime: t0, attributes: { 'http.request.method': 'PATCH', 'url.path': '/api/v1/blocks/x', 'server.port': 8080, 'http.route': '/api/v1/blocks/:id' } }, remote);
  server.setAttribute('loomtrace.request.id', 'req-1');
  server.setAttribute('http.response.status_code', 200);
  const inServer = trace.setSpan(remote, server);
  const tx = ours.startSpan('db transaction', { attributes: { 'db.system.name': 'postgresql' } }, inServer);
  tx.setAttribute('loomtrace.db.commit_ms', 1.234);
  const inTx = trace.setSpan(inServer, tx);
  const long = 'update loomtrace_blocks set content = $1, version = version + 1 where id = $2 returning *'.repeat(3);
  const up = pg.startSpan('UPDATE wordloom', { kind: SpanKind.CLIENT, attributes: { 'db.system.name': 'postgresql', 'db.namespace': 'wordloom', 'server.port': 5432, 'db.query.text': long } }, inTx);
  up.end();
  const ins = pg.startSpan('INSERT wordloom', { kind: SpanKind.CLIENT, attributes: { 'db.query.text': 'insert into ünïcødé ✓ values ($1)', big: 2 ** 40, neg: -5, huge: 2 ** 70, dbl: 0.1, nan: Number.NaN, yes: true, no: false, empty: '' } }, inTx);
  ins.setStatus({ code: SpanStatusCode.ERROR, message: 'duplicate key ✗' });
  ins.end();
  const link: Link = { context: { traceId: 'ffeeddccbbaa99887766554433221100', spanId: '0102030405060708', traceFlags: TraceFlags.NONE, isRemote: true, traceState: new TraceState('k=v') }, attributes: { 'link.n': 1, 'link.s': 'x' } };
  const send = ours.startSpan('send search', { kind: SpanKind.PRODUCER, links: [link, { context: server.spanContext() }], attributes: { 'messaging.system': 'loomtrace', 'arr.s': ['a', 'ü', ''], 'arr.n': [1, 2.5, -3], 'arr.b': [true, false], 'arr.null': ['a', null, 'b'] } }, inTx);
  send.addEvent('enqueued', { 'event.n': 3, 'event.s': 'é' }, t0 + 1.5);
  send.addEvent('bare');
  send.setStatus({ code: SpanStatusCode.OK });
  send.end();
  tx.end();
  server.updateName('PATCH /api/v1/blocks/:id');
  server.end(t0 + 7.25);

  const s2 = schema.startSpan('internal with schema', { kind: SpanKind.INTERNAL });
  s2.setStatus({ code: SpanStatusCode.ERROR });
  s2.end();
  const c = lim.startSpan('limited consumer', { kind: SpanKind.CONSUMER, links: [link, link], attributes: { a: 'abcdefghijklmnop', b: 2, c: 3, d: 4, e: 5 } });
  c.addEvent('one', { x: 1 });
  c.addEvent('two');
  c.end();
  // Recorded but not sampled: reaches onEnd, is not exported.
  const recordOnly = new BasicTracerProvider({ sampler: { shouldSample: () => ({ decision: SamplingDecision.RECORD }), toString: () => 'record-only' }, spanProcessors: [collect] });
  recordOnly.getTracer('record-only').startSpan('not sampled').end();
  return ended;
}

async function throughStock(protocol: OtlpHttpProtocol, spans: ReadableSpan[], url: string): Promise<void> {
  const exporter = protocol === 'http/json' ? new JsonTraceExporter({ url }) : new ProtoTraceExporter({ url });
  // As the BatchSpanProcessor: only sampled spans.
  const sampled = spans.filter((s) => (s.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0);
  await new Promise<void>((resolve, reject) =>
    exporter.export(sampled, (r) => (r.code === 0 ? resolve() : reject(r.error ?? new Error('stock export failed')))),
  );
  await exporter.shutdown();
}

async function throughFast(protocol: OtlpHttpProtocol, spans: ReadableSpan[], url: string): Promise<EventSpanExporter> {
  const exporter = new EventSpanExporter({ url, headers: {}, protocol, timeoutMs: 5000, compression: 'none', scheduledDelayMs: 60_000, maxExportBatchSize: 4, maxQueueSize: 100 });
  const processor = new OtlpSpanProcessor(exporter);
  for (const s of spans) processor.onEnd(s);
  await processor.forceFlush();
  await exporter.shutdown();
  return exporter;
}

describe('SDK spans on the fast exporter', () => {
  let spans: ReadableSpan[];
  const rxs: Received[] = [];
  before(() => {
    spans = makeSpans();
  });
  after(async () => {
    await Promise.all(rxs.map((r) => r.close()));
  });

  for (const protocol of ['http/protobuf', 'http/json'] as const) {
    it(`${protocol}: the same OTLP as the stock exporter, field by field`, async () => {
      const stock = await receiver();
      const fast = await receiver();
      rxs.push(stock, fast);
      await throughStock(protocol, spans, stock.url);
      const exp = await throughFast(protocol, spans, fast.url);
      assert.equal(exp.failed, 0);
      assert.equal(exp.dropped, 0);
      assert.ok(fast.bodies.length >= 2, 'batched by maxExportBatchSize');
      assert.ok(fast.bodies.every((b) => b.contentType === (protocol === 'http/json' ? 'application/json' : 'application/x-protobuf')));
      const want = spansOf(decode(stock));
      const got = spansOf(decode(fast));
      assert.equal(spans.filter((x) => x.name === 'not sampled').length, 1);
      assert.equal(want.size, spans.length - 1, 'every sampled span, the unsampled one left out');
      assert.deepEqual([...got.keys()].sort(), [...want.keys()].sort());
      for (const [id, w] of want) assert.deepStrictEqual(got.get(id), w, `span ${(w['span'] as Obj)['name']}`);
      // The cases the comparison is meant to cover are really there.
      const all = [...want.values()].map((x) => x['span'] as Obj);
      assert.ok(all.some((s) => Number(s['droppedAttributesCount']) > 0 && Number(s['droppedEventsCount']) > 0 && Number(s['droppedLinksCount']) > 0));
      assert.ok(all.some((s) => typeof s['traceState'] === 'string' && s['traceState'] !== ''));
      assert.ok(all.some((s) => ((s['links'] ?? []) as Obj[]).length === 2));
    });
  }

  it('spans of one origin share an envelope per export request', async () => {
    const rx = await receiver();
    rxs.push(rx);
    const exporter = new EventSpanExporter({ url: rx.url, headers: {}, protocol: 'http/protobuf', timeoutMs: 5000, compression: 'none', scheduledDelayMs: 60_000, maxExportBatchSize: 512, maxQueueSize: 2048 });
    const processor = new OtlpSpanProcessor(exporter);
    for (let i = 0; i < 3; i++) for (const s of spans) processor.onEnd(s as ReadableSpan);
    await processor.forceFlush();
    await exporter.shutdown();
    const [req] = decode(rx);
    const groups = (req!['resourceSpans'] as Obj[]).length;
    // Two resources; the plain one has four scopes (one resourceSpans per origin).
    assert.equal(groups, 5);
  });
});

describe('SDK spans ended over many turns of the event loop', () => {
  // The processor hands each turn's spans to the exporter as a part of its own; parts that lie
  // back to back in a writer's buffer go out as one chunk of the request body (decision 0022).
  // Spans from two scopes, one turn each, more than one 64 KiB buffer's worth in one scope, and
  // export batches of 7 (parts split at span boundaries): every span arrives once, in order,
  // and the same as through the stock exporter.
  it('arrive whole, in order, as through the stock exporter', async () => {
    const ended: ReadableSpan[] = [];
    const collect: SpanProcessor = { onStart: () => undefined, onEnd: (x) => void ended.push(x), forceFlush: async () => undefined, shutdown: async () => undefined };
    const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'turns' }), spanProcessors: [collect] });
    const a = provider.getTracer('scope-a');
    const b = provider.getTracer('scope-b');
    for (let i = 0; i < 60; i++) {
      a.startSpan(`a ${i}`, { attributes: { i, pad: 'x'.repeat(1500) } }).end();
      b.startSpan(`b ${i}`, { kind: SpanKind.CLIENT, attributes: { i } }).end();
    }
    const stock = await receiver();
    const fast = await receiver();
    try {
      await throughStock('http/protobuf', ended, stock.url);
      const exporter = new EventSpanExporter({ url: fast.url, headers: {}, protocol: 'http/protobuf', timeoutMs: 5000, compression: 'none', scheduledDelayMs: 60_000, maxExportBatchSize: 7, maxQueueSize: 1000 });
      const processor = new OtlpSpanProcessor(exporter);
      for (let i = 0; i < ended.length; i += 2) {
        processor.onEnd(ended[i]!);
        processor.onEnd(ended[i + 1]!);
        await new Promise((r) => setImmediate(r));
      }
      await processor.forceFlush();
      await exporter.shutdown();
      assert.equal(exporter.failed + exporter.dropped, 0);
      assert.ok(fast.bodies.length >= 120 / 7, 'batches of 7');
      const got = spansOf(decode(fast));
      assert.equal(got.size, 120);
      for (const [id, w] of spansOf(decode(stock))) assert.deepStrictEqual(got.get(id), w);
      // In end order within each scope, across requests.
      const order = (scope: string) => [...got.values()].filter((x) => (x['scope'] as Obj)['name'] === scope).map((x) => (x['span'] as Obj)['name']);
      assert.deepEqual(order('scope-a'), Array.from({ length: 60 }, (_, i) => `a ${i}`));
      assert.deepEqual(order('scope-b'), Array.from({ length: 60 }, (_, i) => `b ${i}`));
    } finally {
      await stock.close();
      await fast.close();
    }
  });
});

describe('inTransaction keeps BEGIN/COMMIT out of the trace without @opentelemetry/core', () => {
  it('its suppress key is the SDK\'s own', () => {
    // src/db/pool.ts makes the key with the API's createContextKey (Symbol.for of the description).
    const key = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');
    const ctx = ROOT_CONTEXT.setValue(key, true);
    assert.equal(isTracingSuppressed(ctx), true);
    const provider = new BasicTracerProvider();
    assert.equal(provider.getTracer('t').startSpan('begin', {}, ctx).isRecording(), false, 'a pg instrumentation without requireParentSpan gets a non-recording span');
  });
});
