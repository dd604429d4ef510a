/**
 * Stock OpenTelemetry exporters (http/protobuf and http/json, not our code) send spans to the
 * explorer's receiver; the query API must return them intact: ids, times, attributes, events,
 * links and status.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SpanKind, SpanStatusCode, context, trace, type Link } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { freePort, startProcess } from './support/procs.js';
import { compileExplorerOptions } from '@loomtrace/explorer';
import { startExplorer, type RunningExplorer } from '@loomtrace/explorer';

let db: TestDatabase;
let ex: RunningExplorer;

before(async () => {
  db = await freshDatabase('explorer_receiver');
  ex = await startExplorer(db.pool, compileExplorerOptions({ port: 0, otlpPort: 0 }));
});
after(async () => {
  await ex?.close();
  await db?.drop();
});

const ns = (hr: [number, number]) => (BigInt(hr[0]) * 1_000_000_000n + BigInt(hr[1])).toString();

interface StoredSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  name: string;
  kind: number;
  service: string;
  scope: string | null;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  status: { code: number; message: string | null };
  attributes: Record<string, unknown>;
  events: { timeUnixNano: string; name: string; attributes: Record<string, unknown> }[];
  links: { traceId: string; spanId: string; traceState: string; attributes: Record<string, unknown> }[];
}

async function getJson<T>(path: string): Promise<{ status: number; body: T }> {
  const r = await fetch(`${ex.uiUrl}${path}`);
  return { status: r.status, body: (await r.json()) as T };
}

/** Makes a small trace with every kind of field through a stock exporter; returns what the SDK ended. */
async function sendThrough(exporter: SpanExporter, service: string): Promise<ReadableSpan[]> {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': service, 'deployment.environment.name': 'test' }),
    spanProcessors: [new SimpleSpanProcessor(memory), new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('explorer-test', '1.2.3');
  const other = tracer.startSpan('batch search', { root: true });
  other.end();
  const link: Link = { context: other.spanContext(), attributes: { 'loomtrace.link': 'batch' } };
  const root = tracer.startSpan('PATCH /api/v1/blocks/:id', {
    kind: SpanKind.SERVER,
    attributes: {
      'loomtrace.block.id': '6f1c2d3e-0000-4000-8000-000000000001',
      'loomtrace.request.id': `req-${service}`,
      'http.response.status_code': 200,
      'loomtrace.ratio': 0.25,
      'loomtrace.flag': true,
      'loomtrace.tags': ['a', 'b'],
      'user.name': '<img src=x onerror=alert(1)>',
    },
  });
  const child = tracer.startSpan(
    'process search',
    { kind: SpanKind.CONSUMER, links: [link], attributes: { 'loomtrace.attempt': 2, 'messaging.message.id': '42' } },
    trace.setSpan(context.active(), root),
  );
  child.addEvent('retry scheduled', { 'loomtrace.retry.reason': 'http_429', 'loomtrace.retry.delay_ms': 500 });
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'bulk item failed: 429' });
  child.end();
  root.setStatus({ code: SpanStatusCode.OK });
  root.end();
  await provider.forceFlush();
  const finished = memory.getFinishedSpans().slice();
  await provider.shutdown();
  return finished;
}

function assertIntact(sent: ReadableSpan[], stored: StoredSpan[], service: string) {
  assert.equal(stored.length, sent.filter((s) => s.spanContext().traceId === stored[0]!.traceId).length);
  for (const st of stored) {
    const s = sent.find((x) => x.spanContext().spanId === st.spanId);
    assert.ok(s, `span ${st.spanId} was sent`);
    assert.equal(st.traceId, s.spanContext().traceId);
    assert.equal(st.parentSpanId ?? undefined, s.parentSpanContext?.spanId);
    assert.equal(st.name, s.name);
    assert.equal(st.kind, s.kind + 1, 'OTLP kind = API kind + 1');
    assert.equal(st.service, service);
    assert.equal(st.scope, 'explorer-test');
    assert.equal(st.startTimeUnixNano, ns(s.startTime), 'start time to the nanosecond');
    assert.equal(st.endTimeUnixNano, ns(s.endTime), 'end time to the nanosecond');
    assert.equal(st.status.code, s.status.code);
    assert.equal(st.status.message ?? undefined, s.status.message || undefined);
    assert.deepEqual(st.attributes, s.attributes);
    assert.deepEqual(
      st.events.map((e) => ({ name: e.name, t: e.timeUnixNano, a: e.attributes })),
      s.events.map((e) => ({ name: e.name, t: ns(e.time), a: e.attributes ?? {} })),
    );
    assert.deepEqual(
      st.links.map((l) => ({ t: l.traceId, s: l.spanId, a: l.attributes })),
      s.links.map((l) => ({ t: l.context.traceId, s: l.context.spanId, a: l.attributes ?? {} })),
    );
  }
}

describe('explorer receiver with stock exporters', () => {
  for (const variant of [
    { name: 'http/protobuf', make: (url: string) => new ProtoExporter({ url }) },
    { name: 'http/protobuf gzip', make: (url: string) => new ProtoExporter({ url, compression: 'gzip' as never }) },
    { name: 'http/json', make: (url: string) => new JsonExporter({ url }) },
    { name: 'http/json gzip', make: (url: string) => new JsonExporter({ url, compression: 'gzip' as never }) },
  ]) {
    test(`${variant.name}: spans come back intact from the query API`, async () => {
      const service = `svc-${variant.name.replace(/\W+/g, '-')}`;
      const sent = await sendThrough(variant.make(`${ex.otlpUrl}/v1/traces`), service);
      const traceId = sent.find((s) => s.name === 'process search')!.spanContext().traceId;
      const r = await getJson<{ traceId: string; spans: StoredSpan[] }>(`/api/traces/${traceId}`);
      assert.equal(r.status, 200);
      assert.equal(r.body.spans.length, 2);
      assertIntact(sent, r.body.spans, service);
      // The resource is stored once and joined back for the span detail.
      const detail = await getJson<{ resource: Record<string, unknown> }>(`/api/traces/${traceId}/spans/${r.body.spans[0]!.spanId}`);
      assert.equal(detail.body.resource['service.name'], service);
      assert.equal(detail.body.resource['deployment.environment.name'], 'test');
      // The linked batch span (its own trace) is stored too and reachable by its id.
      const linked = r.body.spans.find((s) => s.name === 'process search')!.links[0]!;
      const lt = await getJson<{ spans: StoredSpan[] }>(`/api/traces/${linked.traceId}`);
      assert.equal(lt.body.spans[0]!.spanId, linked.spanId);
      // Search: by service, by an id attribute, by status and by duration.
      const bySvc = await getJson<{ traces: { traceId: string; rootName: string; spans: number; errors: number }[] }>(`/api/traces?service=${service}`);
      const hit = bySvc.body.traces.find((t) => t.traceId === traceId);
      assert.ok(hit);
      assert.equal(hit.rootName, 'PATCH /api/v1/blocks/:id');
      assert.equal(hit.spans, 2);
      assert.equal(hit.errors, 1);
      const byReq = await getJson<{ traces: { traceId: string }[] }>(`/api/traces?request_id=req-${service}`);
      assert.deepEqual(byReq.body.traces.map((t) => t.traceId), [traceId]);
      const byErr = await getJson<{ traces: { traceId: string }[] }>(`/api/traces?service=${service}&status=error`);
      assert.deepEqual(byErr.body.traces.map((t) => t.traceId), [traceId]);
      const slow = await getJson<{ traces: { traceId: string }[] }>(`/api/traces?service=${service}&min_ms=60000`);
      assert.deepEqual(slow.body.traces, []);
    });
  }

  test('search filters by generic attribute, name and time range; bad filters get 400', async () => {
    const r = await getJson<{ traces: { traceId: string }[] }>(`/api/traces?attr=${encodeURIComponent('messaging.message.id=42')}&name=${encodeURIComponent('process search')}`);
    assert.equal(r.body.traces.length, 4, 'one trace per exporter variant');
    const future = await getJson<{ traces: unknown[] }>(`/api/traces?from=${Date.now() + 3_600_000}`);
    assert.deepEqual(future.body.traces, []);
    assert.equal((await getJson(`/api/traces?status=bogus`)).status, 400);
    assert.equal((await getJson(`/api/traces?attr=novalue`)).status, 400);
    assert.equal((await getJson(`/api/traces/not-a-trace`)).status, 400);
    assert.equal((await getJson(`/api/traces/${'ab'.repeat(16)}`)).status, 404);
  });

  test('the UI is served with a strict Content-Security-Policy and no inline script', async () => {
    for (const p of ['/', '/trace', '/block', '/event', '/events', '/health']) {
      const r = await fetch(`${ex.uiUrl}${p}`);
      assert.equal(r.status, 200, p);
      const csp = r.headers.get('content-security-policy') ?? '';
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      const html = await r.text();
      assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, `${p} has no inline script`);
    }
    const js = await fetch(`${ex.uiUrl}/static/trace.js`);
    assert.equal(js.status, 200);
    assert.doesNotMatch(await js.text(), /innerHTML/);
    assert.equal((await fetch(`${ex.uiUrl}/static/..%2Fpackage.json`)).status, 404);
  });
});

describe('explorer token', () => {
  test('a non-loopback bind needs a token; with a token set, UI, API and receiver require it', async () => {
    assert.throws(() => compileExplorerOptions({ host: '0.0.0.0' }), /EXPLORER_TOKEN/);
    assert.throws(() => compileExplorerOptions({ otlpHost: '10.1.2.3' }), /EXPLORER_TOKEN/);
    assert.doesNotThrow(() => compileExplorerOptions({ host: '0.0.0.0', token: 's3cret-token-0123456789' }));
    const guarded = await startExplorer(db.pool, compileExplorerOptions({ port: 0, otlpPort: 0, token: 's3cret-token-0123456789' }));
    try {
      assert.equal((await fetch(`${guarded.uiUrl}/api/traces`)).status, 401);
      assert.equal((await fetch(`${guarded.uiUrl}/`)).status, 401);
      assert.equal((await fetch(`${guarded.uiUrl}/api/traces`, { headers: { authorization: 'Bearer wrong-token!' } })).status, 401);
      assert.equal((await fetch(`${guarded.uiUrl}/api/traces`, { headers: { authorization: 'Bearer s3cret-token-0123456789' } })).status, 200);
      // The browser trades ?token= for an HttpOnly session cookie.
      const r = await fetch(`${guarded.uiUrl}/trace?id=1&token=s3cret-token-0123456789`, { redirect: 'manual' });
      assert.equal(r.status, 303);
      assert.equal(r.headers.get('location'), '/trace?id=1');
      const cookie = (r.headers.get('set-cookie') ?? '').split(';')[0]!;
      assert.match(r.headers.get('set-cookie') ?? '', /HttpOnly; SameSite=Strict/);
      assert.equal((await fetch(`${guarded.uiUrl}/api/traces`, { headers: { cookie } })).status, 200);
      const body = JSON.stringify({ resourceSpans: [] });
      assert.equal((await fetch(`${guarded.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status, 401);
      assert.equal((await fetch(`${guarded.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer s3cret-token-0123456789' }, body })).status, 200);
    } finally {
      await guarded.close();
    }
  });
});

describe('explorer process', () => {
  test('`node dist/src/cli/explorer.js` serves the UI and the receiver, and stops cleanly on SIGTERM', async () => {
    const [ui, otlp] = [await freePort(), await freePort()];
    const p = startProcess('explorer', 'explorer.js', { DATABASE_URL: db.url, EXPLORER_PORT: String(ui), EXPLORER_OTLP_PORT: String(otlp) });
    try {
      await p.waitFor(/explorer listening/, 30_000);
      const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'e'.repeat(32), spanId: 'f'.repeat(16), name: 'from a process', startTimeUnixNano: '1', endTimeUnixNano: '2' }] }] }] });
      assert.equal((await fetch(`http://127.0.0.1:${otlp}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status, 200);
      const t = (await (await fetch(`http://127.0.0.1:${ui}/api/traces/${'e'.repeat(32)}`)).json()) as { spans: { name: string }[] };
      assert.equal(t.spans[0]!.name, 'from a process');
      await p.stop();
      assert.equal(await p.exited, 0);
    } finally {
      await p.stop();
    }
    const bad = startProcess('explorer-bad', 'explorer.js', { DATABASE_URL: db.url, EXPLORER_HOST: '0.0.0.0', EXPLORER_TOKEN: '' });
    assert.equal(await bad.exited, 2, 'a non-loopback bind without a token refuses to start');
    assert.ok(bad.lines.some((l) => l.includes('EXPLORER_TOKEN')));
  });
});
