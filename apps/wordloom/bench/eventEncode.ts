/**
 * `node dist/bench/eventEncode.js`: the CPU of the worker's per-event spans on the fast path,
 * encoding alone: BatchTrace for batches of 500 synthetic events (all sampled, or one in
 * BENCH_EVERY), with an EventSpanExporter's writer whose spans are taken and dropped at each
 * submit (no HTTP: traceAb.ts measures the export with the rest). Prints CPU µs per event,
 * median of BENCH_RUNS runs of BENCH_EVENTS (default 200,000) after a warm-up.
 * BENCH_BASE=/path/to/a/built/copy/of/the/repo: that build's packages too, in child processes
 * alternated with this one's (decision 0018). BENCH_EXPORT=1: exported for real, as the worker
 * does, to a receiver in another process (the export's CPU counted, the receiver's not).
 * BENCH_ALS=1: the provider registered as the worker's is (NodeTracerProvider, with the
 * AsyncLocalStorage context manager), each batch's write and settle inside its context.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const N = Number(process.env['BENCH_EVENTS'] ?? 200_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 5);
const EVERY = Number(process.env['BENCH_EVERY'] ?? 1);
const BATCH = 500;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
const here = fileURLToPath(import.meta.url);
const ownRoot = path.resolve(path.dirname(here), '..', '..', '..', '..');

async function child(root: string): Promise<void> {
  const { context, trace } = await import('@opentelemetry/api');
  const { AlwaysOnSampler, BasicTracerProvider, ParentBasedSampler } = await import('@opentelemetry/sdk-trace-base');
  const { resourceFromAttributes } = await import('@opentelemetry/resources');
  const internal = (await import(path.join(root, 'packages/outbox/dist/internal.js'))) as typeof import('@loomtrace/outbox/internal');
  const otlp = (await import(path.join(root, 'packages/otlp/dist/index.js'))) as typeof import('@loomtrace/otlp');
  const { WRITTEN } = (await import(path.join(root, 'packages/outbox/dist/index.js'))) as typeof import('@loomtrace/outbox');
  // BENCH_RX (set by the parent with BENCH_EXPORT=1): the spans really exported, as the worker
  // does (up to 4,096 per request with a backlog; the SDK's own spans through OtlpSpanProcessor),
  // to a receiver in another process, whose CPU is not counted.
  const rxUrl = process.env['BENCH_RX'];
  const exporter = new otlp.EventSpanExporter({ url: rxUrl ?? 'http://127.0.0.1:9/v1/traces', headers: {}, protocol: 'http/protobuf', timeoutMs: 10_000, compression: 'none', scheduledDelayMs: 200, maxExportBatchSize: 512, maxQueueSize: 65_536, backlogExportBatchSize: 4096 });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'bench-encode' }),
    sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    spanProcessors: rxUrl ? [new otlp.OtlpSpanProcessor(exporter)] : [],
  });
  // BENCH_ALS=1: registered as the worker process registers its provider (NodeTracerProvider:
  // the AsyncLocalStorage context manager), each batch's write and settle inside its context.
  if (process.env['BENCH_ALS'] === '1') {
    const { NodeTracerProvider } = await import('@opentelemetry/sdk-trace-node');
    new NodeTracerProvider({ resource: resourceFromAttributes({ 'service.name': 'bench-encode' }), sampler: new ParentBasedSampler({ root: new AlwaysOnSampler() }), spanProcessors: rxUrl ? [new otlp.OtlpSpanProcessor(exporter)] : [] }).register();
  } else trace.setGlobalTracerProvider(provider);
  internal.resetTracingProbe();
  let spans = 0;
  const sink = rxUrl ? exporter : { writer: exporter.writer, submit: () => { for (const p of exporter.writer.take()) spans += p.count; } };
  const now = Date.now();
  const batch = Array.from({ length: BATCH }, (_, i) => ({
    id: String(1_000_000 + i), projection: 'search', eventType: 'block.updated', aggregateType: 'block', aggregateId: randomUUID(), aggregateVersion: 3,
    attributes: { 'loomtrace.library.id': randomUUID() }, requestId: randomUUID(),
    traceparent: `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-${i % EVERY === 0 ? '01' : '00'}`, tracestate: null, payload: {},
    attempt: 1, previousOwner: null, previousToken: null, reclaimed: false, previousLeaseMs: null, lastReason: null, lastDelayMs: null, lastAttemptSpan: null,
    readyAtMs: now - 5.25, readySource: 'commit_timestamp' as const, claimedAtMs: now - 1.5,
  }));
  const outcomes = batch.map(() => WRITTEN);
  const settled = batch.map(() => ({ outcome: 'done' as const, ackRows: 1 as const }));
  const once = async (n: number): Promise<number> => {
    const cpu0 = process.cpuUsage();
    for (let done = 0; done < n; done += BATCH) {
      const t0 = Date.now();
      const bt = new internal.BatchTrace('search', 'bench-worker', randomUUID(), batch, t0, t0 + 1, 'none', sink);
      await context.with(bt.batchContext, async () => {
        await new Promise((r) => setImmediate(r));
        bt.finish(outcomes, settled, { writeStart: t0 + 1, writeEnd: t0 + 2, ackStart: t0 + 2, ackEnd: t0 + 3 });
      });
      await new Promise((r) => setImmediate(r));
    }
    if (rxUrl) await exporter.forceFlush();
    const c = process.cpuUsage(cpu0);
    return (c.user + c.system) / n;
  };
  await once(N / 2);
  const r = await once(N);
  if (rxUrl) spans = exporter.exported;
  process.stdout.write(JSON.stringify({ us: r, spansPerEvent: spans / (N * 1.5) }) + '\n');
  await exporter.shutdown();
}

if (process.argv[2] === 'child') {
  await child(process.argv[3]!);
} else {
  const builds = [{ name: 'new', root: ownRoot }, ...(process.env['BENCH_BASE'] ? [{ name: 'base', root: process.env['BENCH_BASE'] }] : [])];
  // BENCH_EXPORT=1: a receiver in a child process that reads and discards, answering 200.
  let rx: import('node:child_process').ChildProcess | undefined;
  if (process.env['BENCH_EXPORT'] === '1') {
    const { spawn } = await import('node:child_process');
    rx = spawn(process.execPath, ['-e', "require('http').createServer((q,s)=>{q.resume();q.on('end',()=>s.end())}).listen(0,'127.0.0.1',function(){console.log(this.address().port)})"], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<string>((r) => rx!.stdout!.once('data', (d: Buffer) => r(d.toString().trim())));
    process.env['BENCH_RX'] = `http://127.0.0.1:${port}/v1/traces`;
  }
  const out = new Map<string, number[]>();
  for (let rep = 0; rep < RUNS; rep++) {
    for (let k = 0; k < builds.length; k++) {
      const b = builds[(k + rep) % builds.length]!;
      const r = spawnSync(process.execPath, ['--max-semi-space-size=4', here, 'child', b.root], { encoding: 'utf8', env: process.env });
      if (r.status !== 0) throw new Error(r.stderr);
      const { us, spansPerEvent } = JSON.parse(r.stdout) as { us: number; spansPerEvent: number };
      (out.get(b.name) ?? out.set(b.name, []).get(b.name)!).push(us);
      console.log(`  ${b.name.padEnd(5)} ${us.toFixed(2)} µs CPU per event (${spansPerEvent.toFixed(2)} spans per event)`);
    }
  }
  console.log(`medians of ${RUNS}, ${N} events, one in ${EVERY} sampled:`);
  for (const [name, v] of out) console.log(`  ${name.padEnd(5)} ${median(v).toFixed(2)} µs CPU per event`);
  rx?.kill();
}
