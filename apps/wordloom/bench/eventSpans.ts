/**
 * `node dist/bench/eventSpans.js [events] [protocol]`: the worker's per-event trace alone, in
 * process: BatchTrace for batches of 200 synthetic sampled events, traced through the SDK path
 * (BatchSpanProcessor + the stock OTLP exporter) and through the fast path (EventSpanExporter),
 * both exporting to a local receiver that discards. Prints µs per event (5 spans each), CPU
 * included the export (flush at the end).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import { AlwaysOnSampler, BasicTracerProvider, BatchSpanProcessor, ParentBasedSampler } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchTrace, resetTracingProbe, type Settled } from '@loomtrace/outbox/internal';
import { WRITTEN, type ItemOutcome } from '@loomtrace/outbox';
import type { OutboxEvent } from '@loomtrace/outbox';
import { EventSpanExporter } from '@loomtrace/otlp';

const N = Number(process.argv[2] ?? 100_000);
const protocol = process.argv[3] === 'http/json' ? 'http/json' : 'http/protobuf';
const BATCH = 200;

let received = 0;
const server = createServer((req, res) => {
  req.on('data', (c: Buffer) => (received += c.length));
  req.on('end', () => res.writeHead(200).end());
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;

function events(n: number): OutboxEvent[] {
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => ({
    id: String(1_000_000 + i),
    projection: 'search',
    eventType: 'block.updated',
    aggregateType: 'block',
    aggregateId: randomUUID(),
    aggregateVersion: 3,
    attributes: { 'loomtrace.library.id': randomUUID() },
    requestId: randomUUID(),
    traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`,
    tracestate: null,
    payload: {},
    attempt: 1,
    previousOwner: null,
    previousToken: null,
    reclaimed: false,
    previousLeaseMs: null,
    lastReason: null,
    lastDelayMs: null,
    lastAttemptSpan: null,
    readyAtMs: now - 5.25,
    readySource: 'commit_timestamp',
    claimedAtMs: now - 1.5,
  }));
}

/** BENCH_BACKLOGS=512,4096: the fast path only, with these backlog export sizes, alternated (decision 0016). */
const BACKLOGS = (process.env['BENCH_BACKLOGS'] ?? '').split(',').filter(Boolean).map(Number);

async function run(fast: boolean, backlog?: number): Promise<[number, number]> {
  // A high concurrency limit: the final flush sends the whole queue at once.
  const exporter = protocol === 'http/json' ? new JsonExporter({ url, concurrencyLimit: 1000 }) : new ProtoExporter({ url, concurrencyLimit: 1000 });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'bench-event-spans' }),
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: [new BatchSpanProcessor(exporter, { maxQueueSize: 65_536, scheduledDelayMillis: 200 })],
  });
  trace.disable();
  trace.setGlobalTracerProvider(provider);
  resetTracingProbe();
  const fastExporter = fast
    ? new EventSpanExporter({ url, headers: {}, protocol, timeoutMs: 10_000, compression: 'none', scheduledDelayMs: 200, maxExportBatchSize: 512, maxQueueSize: 65_536, backlogExportBatchSize: backlog })
    : undefined;
  const batch = events(BATCH);
  const outcomes: ItemOutcome[] = batch.map(() => WRITTEN);
  const settled: Settled[] = batch.map(() => ({ outcome: 'done', ackRows: 1 }));
  const cpu0 = process.cpuUsage();
  let sync = 0n;
  for (let done = 0; done < N; done += BATCH) {
    const t0 = Date.now();
    const h0 = process.hrtime.bigint();
    const bt = new BatchTrace('search', 'bench-worker', randomUUID(), batch, t0, t0 + 1, 'none', fastExporter);
    bt.finish(outcomes, settled, { writeStart: t0 + 1, writeEnd: t0 + 2, ackStart: t0 + 2, ackEnd: t0 + 3 });
    sync += process.hrtime.bigint() - h0;
    // Let the exporters run, as the worker's awaits do.
    await new Promise((r) => setImmediate(r));
  }
  await fastExporter?.forceFlush();
  await provider.forceFlush().catch((e: unknown) => console.log(`SDK flush: ${String(e)}`));
  const cpu = process.cpuUsage(cpu0);
  await fastExporter?.shutdown();
  await provider.shutdown();
  return [(cpu.user + cpu.system) / N, Number(sync) / 1000 / N];
}

for (let rep = 0; BACKLOGS.length > 0 && rep < 5; rep++) {
  for (const backlog of BACKLOGS) {
    received = 0;
    const [us, sync] = await run(true, backlog);
    console.log(`${protocol} fast path, backlog requests ≤ ${backlog} spans  ${us.toFixed(2)} µs CPU per event (5 spans, receiver included), ${sync.toFixed(2)} µs in BatchTrace`);
  }
}
for (let rep = 0; BACKLOGS.length === 0 && rep < 3; rep++) {
  for (const fast of process.env["ONLY_FAST"] ? [true] : [false, true]) {
    received = 0;
    const [us, sync] = await run(fast);
    console.log(`${protocol} ${fast ? 'fast path' : 'SDK path '}  ${us.toFixed(2)} µs CPU per event (5 spans, receiver included), ${sync.toFixed(2)} µs in BatchTrace, ${(received / N).toFixed(0)} bytes per event sent`);
  }
}
server.close();
