import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dc from 'node:diagnostics_channel';
import { copyFileSync, readFileSync, rmSync } from 'node:fs';
import http, { type ClientRequest } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { SpanKind, context, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OTLPTraceExporter as StockExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ExportTraceServiceResponse } from '@loomtrace/explorer';
import type { Logger } from '@loomtrace/outbox';
import { EventSpanExporter, eventSpanExporterOptionsFromEnv, type EventSpanExporterOptions } from '@loomtrace/otlp';
import { OtlpSpanProcessor } from '@loomtrace/otlp';
import { decodeOtlp, type Obj } from './support/otlpCapture.js';
import { freshDatabase } from './support/db.js';
import { otlpEnv, startOtlpJsonReceiver } from './support/otlp.js';
import { makePki, otlpReceiver, type Receiver } from './support/otlpReceiver.js';
import { freePort, startApi } from './support/procs.js';
import { until } from './support/wait.js';

/**
 * Our OTLP exporter (src/tracing/otlp) honours what the stock OTLP/HTTP exporter honours:
 * the TLS, endpoint, header, compression, timeout and protocol variables (compared with the
 * stock exporter on the same receiver), its retry policy (5 retries, Retry-After as seconds and
 * as a date, an outage of 9 s ridden out), partial successes logged, its User-Agent, and its
 * own requests never traced. Every peer is real, on loopback.
 */

const here = path.dirname(fileURLToPath(import.meta.url));
const version = (JSON.parse(readFileSync(path.resolve(here, '..', '..', '..', '..', 'packages', 'otlp', 'package.json'), 'utf8')) as { version: string }).version;
const origin = { resource: { attributes: { 'service.name': 'parity-test' } }, scope: { name: 'loomtrace' } };
const receivers: Receiver[] = [];
after(async () => {
  for (const r of receivers) await r.close();
});

async function receiver(o?: Parameters<typeof otlpReceiver>[0]): Promise<Receiver> {
  const r = await otlpReceiver(o);
  receivers.push(r);
  return r;
}

type Line = { level: string; obj: object; msg: string | undefined };
function captureLog(): { logger: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  return { logger: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') }, lines };
}

/** Our exporter from these variables only (nothing from process.env). */
function fromEnv(env: Record<string, string>, extra: Partial<EventSpanExporterOptions> = {}): EventSpanExporter {
  const o = eventSpanExporterOptionsFromEnv(env, extra.logger);
  assert.ok(o, 'the fast path is on for these variables');
  return new EventSpanExporter({ ...o, ...extra });
}

/** Queues spans named `${prefix}${i}` with a content-like attribute. */
function addSpans(e: EventSpanExporter, prefix: string, from: number, n: number): string[] {
  const names: string[] = [];
  for (let i = from; i < from + n; i++) {
    e.writer.beginSpan({ traceId: 'ab'.repeat(16), spanId: undefined, parentSpanId: undefined, traceState: undefined, name: `${prefix}${i}`, kind: 1, startMs: 1_700_000_000_000 + i, endMs: 1_700_000_000_001 + i, flags: 0x301 });
    e.writer.attr('user.text', 'SECRET-user-text');
    e.writer.endSpan(0, undefined);
    names.push(`${prefix}${i}`);
  }
  e.submit(origin);
  return names;
}

function spanNames(reqs: Obj[]): string[] {
  const out: string[] = [];
  for (const r of reqs) for (const rs of (r['resourceSpans'] ?? []) as Obj[]) for (const ss of (rs['scopeSpans'] ?? []) as Obj[]) for (const s of (ss['spans'] ?? []) as Obj[]) out.push(s['name'] as string);
  return out;
}

/** One ended SDK span, for the stock exporter and ours alike. */
function sdkSpan(): ReadableSpan {
  let ended: ReadableSpan | undefined;
  const keep: SpanProcessor = { onStart: () => undefined, onEnd: (s) => void (ended = s), forceFlush: async () => undefined, shutdown: async () => undefined };
  const provider = new BasicTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'parity-test' }), spanProcessors: [keep] });
  provider.getTracer('parity').startSpan('parity span', { attributes: { k: 'v' } }).end();
  return ended!;
}

const OTEL_KEYS = /^OTEL_/;
/** The stock exporter reads process.env when it is made: make it under these variables only. */
function stockFromEnv(env: Record<string, string>): StockExporter {
  const saved = { ...process.env };
  for (const k of Object.keys(process.env)) if (OTEL_KEYS.test(k)) delete process.env[k];
  Object.assign(process.env, env);
  try {
    return new StockExporter();
  } finally {
    for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
    Object.assign(process.env, saved);
  }
}

async function stockExport(env: Record<string, string>): Promise<{ ok: boolean; ms: number }> {
  const stock = stockFromEnv(env);
  const t0 = Date.now();
  const ok = await new Promise<boolean>((r) => stock.export([sdkSpan()], (res) => r(res.code === 0)));
  const ms = Date.now() - t0;
  await stock.shutdown();
  return { ok, ms };
}

async function ourExport(env: Record<string, string>, extra: Partial<EventSpanExporterOptions> = {}): Promise<{ ok: boolean; ms: number }> {
  const ours = fromEnv(env, { scheduledDelayMs: 60_000, ...extra });
  const processor = new OtlpSpanProcessor(ours);
  const t0 = Date.now();
  processor.onEnd(sdkSpan() as Parameters<OtlpSpanProcessor['onEnd']>[0]);
  await processor.forceFlush();
  const ms = Date.now() - t0;
  await ours.shutdown();
  return { ok: ours.exported === 1 && ours.failed === 0, ms };
}

describe('the OTLP exporter honours what the stock exporter honours', () => {
  it('TLS: a private CA and a client certificate, signal-specific files over generic ones, read once', async () => {
    const pki = makePki();
    const rx = await receiver({ tls: { key: pki.read('serverKey'), cert: pki.read('serverCert'), ca: pki.read('ca') } });
    const f = pki.files;
    const generic = { OTEL_EXPORTER_OTLP_ENDPOINT: rx.origin, OTEL_EXPORTER_OTLP_CERTIFICATE: f.ca, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: f.clientCert, OTEL_EXPORTER_OTLP_CLIENT_KEY: f.clientKey };
    // The generic variables name the wrong CA and a client certificate the receiver does not
    // trust; the trace-specific ones win, file by file.
    const specific = {
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.origin,
      OTEL_EXPORTER_OTLP_CERTIFICATE: f.otherCa,
      OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: f.otherClientCert,
      OTEL_EXPORTER_OTLP_CLIENT_KEY: f.otherClientKey,
      OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE: f.ca,
      OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE: f.clientCert,
      OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY: f.clientKey,
    };
    for (const env of [generic, specific]) {
      assert.deepEqual(await ourExport(env).then((r) => r.ok), true, 'ours: the span arrives');
      assert.deepEqual(await stockExport(env).then((r) => r.ok), true, 'stock: the span arrives');
    }
    assert.equal(rx.hits.length, 4);
    assert.ok(rx.hits.every((h) => h.clientCN === 'loomtrace-exporter' && h.status === 200), 'every request came with our client certificate');
    assert.equal(spanNames(decodeOtlp(rx)).filter((n) => n === 'parity span').length, 4);

    // Read once, when the options are made: the files can go afterwards.
    const copies = Object.fromEntries((['ca', 'clientCert', 'clientKey'] as const).map((k) => [k, path.join(pki.dir, `copy-${k}.pem`)]));
    for (const [k, to] of Object.entries(copies)) copyFileSync(f[k as keyof typeof f], to);
    const once = fromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_CERTIFICATE: copies['ca']!, OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE: copies['clientCert']!, OTEL_EXPORTER_OTLP_CLIENT_KEY: copies['clientKey']! }, { scheduledDelayMs: 60_000 });
    for (const to of Object.values(copies)) rmSync(to);
    addSpans(once, 'tls', 0, 2);
    await once.forceFlush();
    await once.shutdown();
    assert.equal(once.exported, 2);
    rx.hits.length = 0;

    // Without them the receiver is unreachable, and a TLS failure is not retried (as the stock's).
    const { logger, lines } = captureLog();
    const bare = await ourExport({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.origin }, { logger });
    assert.equal(bare.ok, false);
    assert.equal(rx.hits.length, 0, 'the handshake failed: no request reached the receiver');
    const failed = lines.find((l) => l.msg === 'OTLP export failed; spans dropped')!;
    assert.ok(failed, 'the failure is logged');
    assert.equal((failed.obj as { tries: number }).tries, 1);
  });

  it('endpoint, headers, compression, timeout and protocol variables as the stock exporter reads them; User-Agent', async () => {
    const rx = await receiver();
    const cases: Record<string, string>[] = [
      // Generic endpoint: /v1/traces appended (one slash), headers merged key by key, gzip.
      { OTEL_EXPORTER_OTLP_ENDPOINT: `${rx.origin}/base`, OTEL_EXPORTER_OTLP_HEADERS: 'a=1,b=2,bad,empty=', OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'b=3;meta=x, c=x%2Fy ', OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' },
      { OTEL_EXPORTER_OTLP_ENDPOINT: `${rx.origin}/base/` },
      // Signal-specific endpoint used as is; an invalid specific compression falls back to the generic one.
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${rx.origin}/custom`, OTEL_EXPORTER_OTLP_ENDPOINT: `${rx.origin}/base`, OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'bogus', OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' },
      // An unparseable specific endpoint is skipped for the generic one; specific `none` beats generic gzip.
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'not a url', OTEL_EXPORTER_OTLP_ENDPOINT: rx.origin, OTEL_EXPORTER_OTLP_TRACES_COMPRESSION: 'none', OTEL_EXPORTER_OTLP_COMPRESSION: 'gzip' },
    ];
    const pick = (h: (typeof rx.hits)[number]) => ({
      path: h.path,
      'content-type': h.headers['content-type'],
      'content-encoding': h.headers['content-encoding'],
      a: h.headers['a'],
      b: h.headers['b'],
      c: h.headers['c'],
      bad: h.headers['bad'],
      empty: h.headers['empty'],
    });
    for (const env of cases) {
      rx.hits.length = 0;
      assert.equal((await ourExport(env)).ok, true);
      assert.equal((await stockExport(env)).ok, true);
      const [ours, stock] = rx.hits;
      assert.ok(ours && stock);
      assert.deepEqual(pick(ours), pick(stock), `same request for ${JSON.stringify(env)}`);
      assert.equal(ours.headers['user-agent'], `loomtrace-otlp/${version}`);
      assert.match(String(stock.headers['user-agent']), /^OTel-OTLP-Exporter-JavaScript\//);
    }
    // The cases are really there.
    rx.hits.length = 0;
    await ourExport(cases[0]!);
    await ourExport(cases[2]!);
    assert.deepEqual(rx.hits.map(pick), [
      { path: '/base/v1/traces', 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip', a: '1', b: '3', c: 'x/y', bad: undefined, empty: undefined },
      { path: '/custom', 'content-type': 'application/x-protobuf', 'content-encoding': 'gzip', a: undefined, b: undefined, c: undefined, bad: undefined, empty: undefined },
    ]);

    // Timeout: an invalid specific value is skipped for the generic one; a receiver that never
    // answers fails the export after it (one try: the first backoff would pass it), as the stock's.
    const silent: Server = createServer((s: Socket) => void s.on('error', () => undefined));
    const port = await freePort();
    await new Promise<void>((r) => silent.listen(port, '127.0.0.1', r));
    const hang = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '0', OTEL_EXPORTER_OTLP_TIMEOUT: '300' };
    for (const r of [await ourExport(hang), await stockExport(hang)]) {
      assert.equal(r.ok, false);
      assert.ok(r.ms >= 250 && r.ms < 2500, `failed after the 300 ms timeout (${r.ms} ms)`);
    }
    silent.close();

    // Protocol: the trace-specific variable first, not trimmed; grpc stays with the SDK.
    assert.equal(eventSpanExporterOptionsFromEnv({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf' })?.protocol, 'http/json');
    assert.equal(eventSpanExporterOptionsFromEnv({ OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: ' ', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })?.protocol, 'http/json');
    assert.equal(eventSpanExporterOptionsFromEnv({ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }), undefined);
    assert.equal(eventSpanExporterOptionsFromEnv({ OTEL_TRACES_EXPORTER: 'otlp,none' })?.protocol, 'http/protobuf', 'sdk-node then uses otlp alone');
    rx.hits.length = 0;
    assert.equal((await ourExport({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.origin, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json' })).ok, true);
    assert.equal(rx.hits[0]!.headers['content-type'], 'application/json');
  });

  it('retries as the stock exporter: 5 retries of a 503, none of a 400', async () => {
    const rx = await receiver();
    rx.answer = () => ({ status: 503 });
    const { logger, lines } = captureLog();
    const e = fromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.origin }, { logger, scheduledDelayMs: 60_000, initialBackoffMs: 10 });
    addSpans(e, 's', 0, 3);
    await e.forceFlush();
    assert.equal(rx.hits.length, 6, 'the first try and 5 retries');
    assert.equal(e.failed, 3);
    assert.deepEqual(lines.map((l) => [l.msg, (l.obj as { tries?: number }).tries]), [['OTLP export failed; spans dropped', 6]]);
    rx.hits.length = 0;
    rx.answer = () => ({ status: 400 });
    addSpans(e, 's', 3, 1);
    await e.forceFlush();
    assert.equal(rx.hits.length, 1, 'a 400 is not retried');
    await e.shutdown();
  });

  it('honours Retry-After as seconds and as an HTTP date, and gives up when it passes the timeout', async () => {
    const rx = await receiver();
    const script: ((now: number) => { status: number; headers?: Record<string, string> })[] = [
      () => ({ status: 429, headers: { 'Retry-After': '2' } }),
      () => ({ status: 200 }),
      (now) => ({ status: 503, headers: { 'Retry-After': new Date(now + 3000).toUTCString() } }),
      () => ({ status: 200 }),
      () => ({ status: 503, headers: { 'Retry-After': '60' } }),
    ];
    rx.answer = (h) => (script.shift() ?? (() => ({ status: 200 })))(h.at);
    // A short computed backoff (50 ms): the waits measured below are the server's.
    const e = fromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.origin, OTEL_EXPORTER_OTLP_TIMEOUT: '10000' }, { scheduledDelayMs: 60_000, initialBackoffMs: 50 });
    addSpans(e, 'r', 0, 1);
    await e.forceFlush();
    addSpans(e, 'r', 1, 1);
    await e.forceFlush();
    const gap = (i: number) => rx.hits[i + 1]!.at - rx.hits[i]!.at;
    assert.ok(gap(0) >= 1900 && gap(0) < 3500, `Retry-After: 2 waited ${gap(0)} ms`);
    // The date has whole seconds: between 2 and 3 s from when it was written.
    assert.ok(gap(2) >= 1800 && gap(2) < 4500, `Retry-After as a date waited ${gap(2)} ms`);
    assert.equal(e.exported, 2);
    const t0 = Date.now();
    addSpans(e, 'r', 2, 1);
    await e.forceFlush();
    assert.ok(Date.now() - t0 < 1500, 'a Retry-After past the timeout ends the export at once');
    assert.equal(rx.hits.length, 5);
    assert.equal(e.failed, 1);
    await e.shutdown();
  });

  it('rides out a 9 s outage (connections refused, then 503) without losing a span', async () => {
    const rx = await receiver({ listening: false });
    const t0 = Date.now();
    rx.answer = (h) => ({ status: h.at - t0 < 9000 ? 503 : 200 });
    const { logger, lines } = captureLog();
    // The stock policy and a 20 s OTEL_EXPORTER_OTLP_TIMEOUT: retries come about 1, 2.5, 4.75,
    // 8.1 and 13.1 s after the first try (±20 %), inside the timeout.
    const e = fromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.origin, OTEL_EXPORTER_OTLP_TIMEOUT: '20000', OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '50' }, { logger });
    const sent = addSpans(e, 'o', 0, 20);
    let i = 20;
    const more = setInterval(() => {
      sent.push(...addSpans(e, 'o', i, 5));
      i += 5;
    }, 500);
    await new Promise((r) => setTimeout(r, 3000));
    await rx.listen(); // refused until now, 503 until 9 s
    await new Promise((r) => setTimeout(r, 6500));
    clearInterval(more);
    await e.forceFlush();
    await e.shutdown();
    const got = spanNames(decodeOtlp(rx));
    assert.equal(got.length, sent.length, 'every span arrived once');
    assert.deepEqual([...got].sort(), [...sent].sort());
    assert.equal(e.failed, 0);
    assert.ok(rx.hits.some((h) => h.status === 503), 'the receiver answered 503 for a while');
    const firstOk = rx.hits.find((h) => h.status === 200)!;
    assert.ok(firstOk.at - t0 >= 9000, 'nothing was accepted during the outage');
    assert.deepEqual(lines.filter((l) => l.level === 'warn' || l.level === 'error'), []);
  });

  it('logs a partial success (protobuf and JSON) without span content', async () => {
    const proto = Buffer.from(ExportTraceServiceResponse.encode(ExportTraceServiceResponse.create({ partialSuccess: { rejectedSpans: 2, errorMessage: 'two spans had an empty name\u0007\n' } })).finish());
    const cases = [
      { protocol: 'http/protobuf', body: proto, rejected: 2 },
      { protocol: 'http/json', body: '{"partialSuccess":{"rejectedSpans":"2","errorMessage":"two spans had an empty name"}}', rejected: 2 },
      { protocol: 'http/protobuf', body: Buffer.alloc(0), rejected: 0 },
      { protocol: 'http/json', body: '{"partialSuccess":{}}', rejected: 0 },
      { protocol: 'http/protobuf', body: Buffer.from([0x0a, 0x7f, 0x08]), rejected: 0, malformed: true },
    ] as const;
    for (const c of cases) {
      const rx = await receiver();
      rx.answer = () => ({ status: 200, body: c.body });
      const { logger, lines } = captureLog();
      const e = fromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.origin, OTEL_EXPORTER_OTLP_PROTOCOL: c.protocol }, { logger, scheduledDelayMs: 60_000 });
      addSpans(e, 'secret-span-name-', 0, 3);
      await e.forceFlush();
      await e.shutdown();
      assert.equal(e.exported, 3);
      assert.equal(e.rejected, c.rejected);
      const text = JSON.stringify(lines);
      assert.ok(!text.includes('SECRET') && !text.includes('secret-span-name'), 'no span content in the log');
      if (c.rejected > 0) {
        assert.deepEqual(lines.map((l) => [l.level, l.msg, l.obj]), [['warn', 'OTLP receiver accepted the export partially', { spans: 3, rejected_spans: 2, error_message: c.protocol === 'http/json' ? 'two spans had an empty name' : 'two spans had an empty name ' }]]);
      } else if ('malformed' in c) {
        assert.deepEqual(lines.map((l) => l.msg), ['OTLP export succeeded but its response could not be decoded']);
      } else {
        assert.deepEqual(lines, [], 'a full success logs nothing');
      }
    }
  });

  it('never traces its own export requests', async () => {
    // A real SDK with an HTTP client "instrumentation" made of node's http diagnostics channel:
    // a CLIENT span per outgoing request, in the context it is made in (as the http
    // instrumentation's), unless tracing is suppressed there.
    const memory = new InMemorySpanExporter();
    const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    provider.register();
    const tracer = trace.getTracer('http-client-test');
    const onRequest = (m: unknown) => {
      const req = (m as { request: ClientRequest }).request;
      tracer.startSpan(req.method, { kind: SpanKind.CLIENT, attributes: { 'url.path': req.path } }).end();
    };
    dc.subscribe('http.client.request.start', onRequest);
    try {
      const rx = await receiver();
      const e = fromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: rx.origin, OTEL_BSP_SCHEDULE_DELAY: '20' });
      let handlerId = '';
      await tracer.startActiveSpan('handler', async (handler) => {
        handlerId = handler.spanContext().spanId;
        addSpans(e, 'x', 0, 2); // exported by the schedule's timer, made in this context
        await new Promise<void>((r) => http.get(`${rx.origin}/control`, (res) => res.resume().on('end', r)));
        while (rx.hits.filter((h) => h.path === '/v1/traces').length < 1) await new Promise((r) => setTimeout(r, 10));
        addSpans(e, 'x', 2, 2);
        await e.forceFlush(); // exported from here
        handler.end();
      });
      await e.shutdown();
      assert.equal(spanNames(decodeOtlp(rx)).length, 4);
      const client = memory.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);
      assert.deepEqual(client.map((s) => [s.name, s.attributes['url.path'], s.parentSpanContext?.spanId]), [['GET', '/control', handlerId]], 'only the control request is a span');
    } finally {
      dc.unsubscribe('http.client.request.start', onRequest);
      await provider.shutdown();
      trace.disable();
      context.disable();
    }
  });

  it('a real API process exports no span of its own export requests (an http client instrumentation preloaded)', async () => {
    const db = await freshDatabase('exporter_parity');
    const otlp = await startOtlpJsonReceiver();
    const api = await startApi(db.url, {
      ...otlpEnv(otlp.url, 'wordloom-api'),
      NODE_OPTIONS: `--import=${pathToFileURL(path.join(here, 'support', 'httpClientSpans.js')).href}`,
      LOOMTRACE_TEST_CONTROL_URL: `${otlp.url}/control`,
    });
    try {
      const servers = () => otlp.spans.filter((s) => s.kind === 2 && s.name.startsWith('POST')).length;
      const library = async (name: string) => {
        const n = servers();
        const r = await fetch(`${api.url}/api/v1/libraries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
        assert.equal(r.status, 201);
        await until(`the spans of ${name}`, 10_000, async () => servers() > n);
      };
      await library('one');
      api.proc.kill('SIGUSR2');
      const control = await until('the control request', 10_000, async () => otlp.spans.find((s) => s.name === 'control'));
      const get = await until('its GET span', 10_000, async () => otlp.spans.find((s) => s.name === 'GET' && s.attributes['url.path'] === '/control'));
      assert.equal(get.parentSpanId, control.spanId, 'the preloaded instrumentation traces the process\'s requests');
      // Exports made after the ones that carried the spans above (whose requests would be spans by now).
      await library('two');
      const own = otlp.spans.filter((s) => s.kind === 3 && s.name === 'POST');
      assert.deepEqual(own.map((s) => s.attributes['url.path']), [], 'no span for a POST to the OTLP endpoint');
    } finally {
      await api.stop();
      await otlp.close();
      await db.drop();
    }
  });
});
