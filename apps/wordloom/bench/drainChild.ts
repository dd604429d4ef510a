/**
 * One worker process of a drain or latency run: `node dist/bench/drainChild.js <system> <url>`,
 * forked by the bench with an IPC channel. Every system is started the same way before any
 * clock runs: its consumer fully started (loomtrace's OutboxWorker, graphile-worker's runner,
 * pg-boss started with its workers registered), idle on an empty queue, then it says `ready`.
 * The bench warms it with a small drain, then sends `arm`: the child zeroes its counters and
 * reports the epoch time of its first handler start after that (`first`). It reports how many
 * events its handler has seen (`progress`), and on `stop` shuts down cleanly (flushing spans
 * when tracing is on) and reports its peak RSS and CPU time since `arm`.
 *
 * Systems: `loomtrace` (OutboxWorker, no-op sink, LISTEN/NOTIFY), `graphile` (graphile-worker
 * 0.18 with the fast settings of its performance docs, LISTEN/NOTIFY), `pgboss` (pg-boss 12
 * work() with batch fetch, LISTEN/NOTIFY wake-up and burst mode).
 * BENCH_TRACING=1 starts the real OpenTelemetry SDK as the worker process does
 * (src/cli/workerTelemetry.ts, configured by the OTEL_* variables the parent sets).
 */
import { PerformanceObserver, constants as perf, type PerformanceEntry } from 'node:perf_hooks';
import { peakRssMb } from './env.js';

const tracing = process.env['BENCH_TRACING'] === '1';
/** The worker's `eventSpans` option, as dist/src/cli/worker.js passes it (the fast path of decision 0007). */
let eventSpans: import('@loomtrace/otlp').EventSpanExporter | undefined;
let stopTelemetry = async (): Promise<void> => undefined;
if (tracing) {
  const { startWorkerTelemetry } = await import('../src/cli/workerTelemetry.js');
  ({ eventSpans, stop: stopTelemetry } = await startWorkerTelemetry('bench-worker'));
}

const [system, url] = process.argv.slice(2) as [string, string];
const opts = JSON.parse(process.env['BENCH_OPTS'] ?? '{}') as Record<string, number>;
const send = (m: object) => process.send?.(m);

let seen = 0;
let lastSent = -1;
/** Epoch ms of the first handler start since `arm` (the drain's clock starts there). */
let first: number | undefined;
/** Handler start times (epoch ms) keyed by the producer's sample id, for pick-up latency. */
const starts: [number, number][] = [];
const onHandle = (n: number, sampleIds?: (number | undefined)[]) => {
  if (first === undefined) {
    first = performance.timeOrigin + performance.now();
    send({ type: 'first', t: first });
  }
  seen += n;
  if (sampleIds) {
    const t = performance.timeOrigin + performance.now();
    for (const id of sampleIds) if (id !== undefined) starts.push([id, t]);
    send({ type: 'picked', starts: starts.splice(0) });
  }
};
const sampleOf = (payload: unknown): number | undefined => {
  const s = (payload as { sample?: unknown } | null)?.sample;
  return typeof s === 'number' ? s : undefined;
};
const latencyMode = opts['latency'] === 1;

let end: () => Promise<void>;

if (system === 'loomtrace') {
  const { createPool } = await import('@loomtrace/outbox');
  const { OutboxWorker } = await import('@loomtrace/outbox');
  const { WRITTEN } = await import('@loomtrace/outbox');
  const concurrency = opts['concurrency'] ?? 2;
  const pool = createPool({ connectionString: url, max: concurrency + 4, applicationName: 'bench-loomtrace' });
  const worker = new OutboxWorker({
    pool,
    projection: 'search',
    ...(opts['batchSize'] ? { batchSize: opts['batchSize'] } : {}),
    concurrency,
    eventSpans,
    sink: {
      name: 'noop',
      system: 'none',
      async write(events) {
        onHandle(events.length, latencyMode ? events.map((e) => sampleOf(e.payload)) : undefined);
        return events.map(() => WRITTEN);
      },
    },
  });
  await pool.query('select 1');
  await worker.start();
  end = async () => {
    await worker.stop();
    await pool.end();
  };
} else if (system === 'graphile') {
  const { run } = await import('graphile-worker');
  const { Logger } = await import('@graphile/logger');
  const concurrency = opts['concurrency'] ?? 24;
  const runner = await run({
      connectionString: url,
      concurrency,
      maxPoolSize: concurrency + 1,
      noHandleSignals: true,
      pollInterval: 1000,
      logger: new Logger(() => () => undefined),
      taskList: {
        bench: async (payload) => {
          onHandle(1, latencyMode ? [sampleOf(payload)] : undefined);
        },
      },
      preset: {
        worker: {
          // The fast settings of https://worker.graphile.org/docs/performance (0.17+).
          ...(opts['localQueue'] !== 0 ? { localQueue: { size: opts['localQueue'] ?? 500 } } : {}),
          completeJobBatchDelay: 0,
          failJobBatchDelay: 0,
        },
      },
    });
  end = async () => {
    await runner.stop();
  };
} else if (system === 'pgboss') {
  const { PgBoss } = await import('pg-boss');
  // pg-boss 12: `useListenNotify` wakes the workers of a `notify` queue (bench/systems.ts
  // creates it so) the moment a job is inserted; polling stays as the backstop.
  const boss = new PgBoss({ connectionString: url, max: 6, supervise: false, schedule: false, migrate: false, useListenNotify: true });
  boss.on('error', () => undefined);
  await boss.start();
  await boss.work<{ sample?: number }>(
    'bench',
    {
      batchSize: opts['batchSize'] ?? 500,
      // Two fetch loops in this process, like loomtrace's two batches in flight.
      localConcurrency: opts['workers'] ?? 2,
      pollingIntervalSeconds: 0.5,
      // Burst mode: while a fetch comes back full, fetch again at once.
      burstWhenBatchFull: true,
    },
    async (jobs) => {
      onHandle(jobs.length, latencyMode ? jobs.map((j) => sampleOf(j.data)) : undefined);
    },
  );
  end = async () => {
    await boss.stop({ graceful: true, close: true, timeout: 10_000 });
  };
} else {
  throw new Error(`unknown system ${system}`);
}

const progress = setInterval(() => {
  if (seen !== lastSent) {
    lastSent = seen;
    send({ type: 'progress', seen });
  }
}, 2);
progress.unref();

/** CPU time at `arm`: what the child reports excludes its start-up and warm-up. */
let cpuAtGo = process.cpuUsage();
/** Garbage collection since `arm`: pause time (ms) and counts of scavenges and full collections. */
const gc = { ms: 0, minor: 0, major: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.ms += e.duration;
    const kind = (e as PerformanceEntry & { detail?: { kind?: number } }).detail?.kind;
    if (kind === perf.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
    else if (kind === perf.NODE_PERFORMANCE_GC_MAJOR) gc.major++;
  }
}).observe({ entryTypes: ['gc'] });
process.on('message', (m: { type: string }) => {
  if (m.type === 'arm') {
    cpuAtGo = process.cpuUsage();
    gc.ms = gc.minor = gc.major = 0;
    seen = 0;
    lastSent = -1;
    first = undefined;
    send({ type: 'armed' });
  } else if (m.type === 'stop') {
    void (async () => {
      clearInterval(progress);
      await end();
      await stopTelemetry();
      const cpu = process.cpuUsage(cpuAtGo);
      send({ type: 'stopped', seen, rssMb: peakRssMb(process.pid), cpuMs: (cpu.user + cpu.system) / 1000, gc });
      process.disconnect?.();
      setTimeout(() => process.exit(0), 50).unref();
    })();
  }
});
send({ type: 'ready' });
