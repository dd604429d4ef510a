import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { captureOtlp, decodeOtlp, type Obj } from './support/otlpCapture.js';
import { EventSpanExporter, spanBufferStats } from '@loomtrace/otlp';

/**
 * The span writer's 256 KiB buffers are reused once every span in them is exported or dropped
 * (docs/decisions/0024-worker-peak-rss.md). What must hold: every span the receiver gets is
 * whole (its bytes not overwritten by a later span), each once, however parts were split,
 * queued, dropped and exported side by side.
 */

/** A receiver that answers each request after `delayMs`, keeping the bodies in order of arrival. */
async function receiver(delayMs: number) {
  const rx = await captureOtlp([], delayMs);
  return {
    url: rx.url,
    /** Every span received: its name and its one attribute's value. */
    spans(): { name: string; value: string }[] {
      const out: { name: string; value: string }[] = [];
      for (const r of decodeOtlp(rx)) {
        for (const rs of (r['resourceSpans'] ?? []) as Obj[]) {
          for (const ss of (rs['scopeSpans'] ?? []) as Obj[]) {
            for (const s of (ss['spans'] ?? []) as Obj[]) {
              const a = ((s['attributes'] ?? []) as Obj[])[0] as { value?: { stringValue?: string } } | undefined;
              out.push({ name: s['name'] as string, value: a?.value?.stringValue ?? '' });
            }
          }
        }
      }
      return out;
    },
    close: () => rx.close(),
  };
}

/** ~1 KiB per span, its content derived from its number: a span overwritten by another shows. */
const valueOf = (i: number) => `v${i}:`.padEnd(1_000, String.fromCharCode(97 + (i % 26)));
const origin = { resource: { attributes: { 'service.name': 'x' } }, scope: { name: 'loomtrace' } };

function writeSpans(exporter: EventSpanExporter, from: number, n: number): void {
  const w = exporter.writer;
  for (let i = from; i < from + n; i++) {
    w.beginSpan({ traceId: 'ab'.repeat(16), spanId: undefined, parentSpanId: undefined, traceState: undefined, name: `s${i}`, kind: 1, startMs: 1_700_000_000_000 + i, endMs: 1_700_000_000_001 + i, flags: 0x301 });
    w.attr('k', valueOf(i));
    w.endSpan(0, undefined);
  }
}

function assertWhole(got: { name: string; value: string }[]): void {
  for (const s of got) assert.equal(s.value, valueOf(Number(s.name.slice(1))), `span ${s.name} arrived whole`);
  assert.equal(new Set(got.map((s) => s.name)).size, got.length, 'each span once');
}

describe('span buffers reused after export (decision 0024)', () => {
  it('spans written into reused buffers arrive whole, each once, through split parts and concurrent requests', async () => {
    const rx = await receiver(20);
    // Requests of up to 300 spans taken from parts of 250 (split), several in flight.
    const exporter = new EventSpanExporter({ url: rx.url, headers: {}, protocol: 'http/protobuf', timeoutMs: 5_000, compression: 'none', scheduledDelayMs: 10, maxExportBatchSize: 100, maxQueueSize: 5_000, backlogExportBatchSize: 300 });
    const before = { ...spanBufferStats };
    let n = 0;
    for (let round = 0; round < 24; round++) {
      writeSpans(exporter, n, 250);
      n += 250;
      exporter.submit(origin);
      // Every few rounds, let the exports finish (their buffers are released) before writing on.
      if (round % 3 === 2) await exporter.forceFlush();
      else await new Promise((r) => setImmediate(r));
    }
    await exporter.shutdown();
    await rx.close();
    const got = rx.spans();
    assertWhole(got);
    assert.equal(got.length, n, 'every span exported');
    assert.equal(exporter.exported, n);
    assert.equal(exporter.dropped, 0);
    // ~6 MB of spans: about 24 buffers were filled; most came back from the exports.
    const reused = spanBufferStats.reused - before.reused;
    const allocated = spanBufferStats.allocated - before.allocated;
    assert.ok(reused >= 10, `buffers were reused: ${reused} reused, ${allocated} new`);
    assert.ok(allocated < reused, `fewer new buffers than reused ones: ${allocated} new, ${reused} reused`);
  });

  it('spans dropped from a full queue release their buffer too, and what is exported arrives whole', async () => {
    const rx = await receiver(50);
    const exporter = new EventSpanExporter({ url: rx.url, headers: {}, protocol: 'http/protobuf', timeoutMs: 5_000, compression: 'none', scheduledDelayMs: 10, maxExportBatchSize: 100, maxQueueSize: 400, backlogExportBatchSize: 200 });
    const before = spanBufferStats.reused;
    let n = 0;
    for (let round = 0; round < 12; round++) {
      // 700 spans at once into a queue of 400: some of every round dropped, the part split.
      writeSpans(exporter, n, 700);
      n += 700;
      exporter.submit(origin);
      await exporter.forceFlush();
    }
    await exporter.shutdown();
    await rx.close();
    const got = rx.spans();
    assertWhole(got);
    assert.ok(exporter.dropped > 0, 'the queue overflowed');
    assert.equal(got.length + exporter.dropped, n, 'every span exported or counted as dropped');
    assert.equal(exporter.exported, got.length);
    assert.ok(spanBufferStats.reused - before >= 10, `buffers of partly dropped parts were reused: ${spanBufferStats.reused - before}`);
  });

  it('a receiver that refuses the requests: the spans are counted as failed, and later spans in reused buffers arrive whole', async () => {
    // A port nobody listens on: every try is refused; with no retries the spans fail at once.
    const closed = await receiver(0);
    const deadUrl = closed.url;
    await closed.close();
    const dead = new EventSpanExporter({ url: deadUrl, headers: {}, protocol: 'http/protobuf', timeoutMs: 2_000, compression: 'none', scheduledDelayMs: 10, maxExportBatchSize: 100, maxQueueSize: 5_000, backlogExportBatchSize: 300, maxRetries: 0 });
    writeSpans(dead, 0, 1_000);
    dead.submit(origin);
    await dead.shutdown();
    assert.equal(dead.failed, 1_000);
    const rx = await receiver(0);
    const exporter = new EventSpanExporter({ url: rx.url, headers: {}, protocol: 'http/protobuf', timeoutMs: 5_000, compression: 'none', scheduledDelayMs: 10, maxExportBatchSize: 100, maxQueueSize: 5_000, backlogExportBatchSize: 300 });
    writeSpans(exporter, 1_000, 1_500);
    exporter.submit(origin);
    await exporter.shutdown();
    await rx.close();
    const got = rx.spans();
    assertWhole(got);
    assert.equal(got.length, 1_500);
  });
});
