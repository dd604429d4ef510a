/**
 * One worker process of a drain or latency run: `node dist/bench/drainChild.js <system> <url>`,
 * forked by the bench with an IPC channel. It prepares, says `ready`, starts consuming on `go`,
 * reports how many events its handler has seen (`progress`), and on `stop` shuts down cleanly
 * (flushing spans when tracing is on) and reports its peak RSS.
 *
 * Systems: `loomtrace` (OutboxWorker, no-op sink), `graphile` (graphile-worker with the fast
 * settings its performance docs give), `pgboss` (pg-boss work() with batch fetch).
 * BENCH_TRACING=1 starts the real OpenTelemetry SDK as the worker process does
 * (src/cli/telemetry.ts, configured by the OTEL_* variables the parent sets).
 */
import { peakRssMb } from './env.js';

const tracing = process.env['BENCH_TRACING'] === '1';
if (tracing) {
  const { startTelemetry } = await import('../src/cli/telemetry.js');
  startTelemetry('bench-worker');
}

const [system, url] = process.argv.slice(2) as [string, string];
const opts = JSON.parse(process.env['BENCH_OPTS'] ?? '{}') as Record<string, number>;
const send = (m: object) => process.send?.(m);

let seen = 0;
let lastSent = -1;
/** Handler start times (epoch ms) keyed by the producer's sample id, for pick-up latency. */
const starts: [number, number][] = [];
const onHandle = (n: number, sampleIds?: (number | undefined)[]) => {
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

let begin: () => Promise<void>;
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
  begin = () => worker.start();
  end = async () => {
    await worker.stop();
    await pool.end();
  };
} else if (system === 'graphile') {
  const { run } = await import('graphile-worker');
  const { Logger } = await import('@graphile/logger');
  let runner: Awaited<ReturnType<typeof run>> | undefined;
  const concurrency = opts['concurrency'] ?? 24;
  begin = async () => {
    runner = await run({
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
  };
  end = async () => {
    await runner?.stop();
  };
} else if (system === 'pgboss') {
  const { default: PgBoss } = await import('pg-boss');
  const boss = new PgBoss({ connectionString: url, max: 6, supervise: false, schedule: false, migrate: false });
  boss.on('error', () => undefined);
  await boss.start();
  begin = async () => {
    const workers = opts['workers'] ?? 2;
    const batchSize = opts['batchSize'] ?? 500;
    for (let i = 0; i < workers; i++) {
      let id = '';
      id = await boss.work<{ sample?: number }>('bench', { batchSize, pollingIntervalSeconds: 0.5 }, async (jobs) => {
        onHandle(jobs.length, latencyMode ? jobs.map((j) => sampleOf(j.data)) : undefined);
        // Burst mode: a full batch means more is waiting, so fetch again at once instead of
        // sleeping out the polling interval (pg-boss 10 has no LISTEN/NOTIFY).
        if (jobs.length === batchSize && id) boss.notifyWorker(id);
      });
    }
  };
  end = async () => {
    await boss.stop({ graceful: true, wait: true, close: true, timeout: 10_000 });
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

/** CPU time at `go`: what the child reports excludes its start-up (module loading, SDK set-up). */
let cpuAtGo = process.cpuUsage();
process.on('message', (m: { type: string }) => {
  if (m.type === 'go') {
    cpuAtGo = process.cpuUsage();
    void begin().then(() => send({ type: 'started' }));
  } else if (m.type === 'stop') {
    void (async () => {
      clearInterval(progress);
      await end();
      if (tracing) {
        const { stopTelemetry } = await import('../src/cli/telemetry.js');
        await stopTelemetry();
      }
      const cpu = process.cpuUsage(cpuAtGo);
      send({ type: 'stopped', seen, rssMb: peakRssMb(process.pid), cpuMs: (cpu.user + cpu.system) / 1000 });
      process.disconnect?.();
      setTimeout(() => process.exit(0), 50).unref();
    })();
  }
});
send({ type: 'ready' });
