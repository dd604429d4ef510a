import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { captureOtlp, decodeOtlp as decode, type Obj } from './support/otlpCapture.js';
import { BACKLOG_EXPORT_BATCH_SIZE, DEFAULT_MAX_QUEUE_SIZE, EventSpanExporter, eventSpanExporterOptionsFromEnv } from '@loomtrace/otlp';

const spansIn = (r: Obj): string[] => {
  const out: string[] = [];
  for (const rs of (r['resourceSpans'] ?? []) as Obj[]) for (const ss of (rs['scopeSpans'] ?? []) as Obj[]) for (const s of (ss['spans'] ?? []) as Obj[]) out.push(s['name'] as string);
  return out;
};

/** A receiver that answers each request after `delayMs` and keeps the bodies, in order of arrival. */
async function slowReceiver(delayMs: number) {
  const rx = await captureOtlp([], delayMs);
  return { url: rx.url, requests: () => decode(rx).map(spansIn), close: () => rx.close() };
}

function queueSpans(exporter: EventSpanExporter, from: number, n: number): void {
  for (let i = from; i < from + n; i++) {
    exporter.writer.beginSpan({ traceId: 'ab'.repeat(16), spanId: undefined, parentSpanId: undefined, traceState: undefined, name: `s${i}`, kind: 1, startMs: 1_700_000_000_000 + i, endMs: 1_700_000_000_001 + i, flags: 0x301 });
    exporter.writer.endSpan(0, undefined);
  }
}

const origin = { resource: { attributes: { 'service.name': 'x' } }, scope: { name: 'loomtrace' } };

describe('export requests with a backlog (decision 0016)', () => {
  it('from the environment: larger requests with a backlog unless OTEL_BSP_MAX_EXPORT_BATCH_SIZE is set, which stays the cap', () => {
    const base = { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318' };
    const unset = eventSpanExporterOptionsFromEnv(base)!;
    assert.equal(unset.maxExportBatchSize, 512, 'an export still starts at 512 queued spans');
    assert.equal(unset.backlogExportBatchSize, BACKLOG_EXPORT_BATCH_SIZE);
    assert.equal(BACKLOG_EXPORT_BATCH_SIZE, 4096);
    const set = eventSpanExporterOptionsFromEnv({ ...base, OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '300' })!;
    assert.equal(set.maxExportBatchSize, 300);
    assert.equal(set.backlogExportBatchSize, undefined, "the user's batch size is a cap");
  });

  it('a backlog goes out in requests of up to the backlog size, every span once; a partial batch still waits for the delay', async () => {
    const rx = await slowReceiver(100);
    const exporter = new EventSpanExporter({ url: rx.url, headers: {}, protocol: 'http/protobuf', timeoutMs: 5_000, compression: 'none', scheduledDelayMs: 300, maxExportBatchSize: 10, maxQueueSize: 1_000, backlogExportBatchSize: 40 });
    queueSpans(exporter, 0, 95);
    exporter.submit(origin);
    await exporter.forceFlush();
    const sizes = rx.requests().map((r) => r.length);
    assert.ok(sizes.every((n) => n <= 40), `each request within the backlog size: ${sizes.join(',')}`);
    assert.equal(sizes[0], 40, 'the backlog is taken 40 at a time, not 10');
    assert.ok(sizes.length <= 4, `fewer, larger requests: ${sizes.join(',')}`);
    assert.deepEqual(rx.requests().flat().sort(), Array.from({ length: 95 }, (_, i) => `s${i}`).sort(), 'every span once');
    assert.equal(exporter.exported, 95);
    assert.equal(exporter.dropped, 0);

    // Fewer than a batch: nothing goes before the schedule delay, then one request.
    const before = rx.requests().length;
    queueSpans(exporter, 100, 7);
    exporter.submit(origin);
    await new Promise((r) => setTimeout(r, 120));
    assert.equal(rx.requests().length, before, 'a partial batch waits for OTEL_BSP_SCHEDULE_DELAY');
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(rx.requests().slice(before).map((r) => r.length), [7]);
    await exporter.shutdown();
    await rx.close();
  });

  it("with OTEL_BSP_MAX_QUEUE_SIZE unset, a full outbox batch's spans handed over at once (2 × 500 events × 5 spans) all go out, in backlog-sized requests; set, it stays the cap", async () => {
    const rx = await slowReceiver(20);
    const env = { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: rx.url.replace('/v1/traces', ''), OTEL_BSP_SCHEDULE_DELAY: '60000' };
    const unset = eventSpanExporterOptionsFromEnv(env)!;
    assert.equal(unset.maxQueueSize, DEFAULT_MAX_QUEUE_SIZE);
    assert.equal(DEFAULT_MAX_QUEUE_SIZE, 16_384);
    const exporter = new EventSpanExporter(unset);
    queueSpans(exporter, 0, 5_000);
    exporter.submit(origin);
    await exporter.forceFlush();
    const sizes = rx.requests().map((r) => r.length);
    assert.equal(exporter.dropped, 0, 'the SDK default (2,048) would have dropped 2,952 of them');
    assert.equal(exporter.exported, 5_000);
    assert.equal(new Set(rx.requests().flat()).size, 5_000, 'every span once');
    assert.equal(Math.max(...sizes), BACKLOG_EXPORT_BATCH_SIZE, `requests of up to the backlog size: ${sizes.join(',')}`);
    await exporter.shutdown();

    const capped = new EventSpanExporter(eventSpanExporterOptionsFromEnv({ ...env, OTEL_BSP_MAX_QUEUE_SIZE: '2048' })!);
    queueSpans(capped, 0, 5_000);
    capped.submit(origin);
    await capped.forceFlush();
    assert.equal(capped.dropped, 5_000 - 2_048, "the user's queue size is honoured: what does not fit is dropped (and counted)");
    assert.equal(capped.exported, 2_048);
    await capped.shutdown();
    await rx.close();
  });

  it('without a backlog size, requests stay within OTEL_BSP_MAX_EXPORT_BATCH_SIZE', async () => {
    const rx = await slowReceiver(20);
    const exporter = new EventSpanExporter({ url: rx.url, headers: {}, protocol: 'http/protobuf', timeoutMs: 5_000, compression: 'none', scheduledDelayMs: 60_000, maxExportBatchSize: 10, maxQueueSize: 1_000 });
    queueSpans(exporter, 0, 35);
    exporter.submit(origin);
    await exporter.forceFlush();
    assert.deepEqual(rx.requests().map((r) => r.length).sort((a, b) => b - a), [10, 10, 10, 5]);
    await exporter.shutdown();
    await rx.close();
  });
});
