/**
 * The explorer as one object: the OTLP receiver, the span write queue, the web server and
 * retention, over one pool. The process entry (src/cli/explorer.ts) and the tests both use it.
 */
import type { FastifyInstance } from 'fastify';
import type { Pipeline, Pool } from '@loomtrace/outbox';
import type { ExplorerOptions } from './options.js';
import { OtlpReceiver } from './otlp/receiver.js';
import { pruneByAge, pruneBySize, pruneResources } from './store/sql/pruneSpans.js';
import { SpanWriteQueue } from './store/writeQueue.js';
import { buildExplorerServer } from './web/server.js';

export type ExplorerLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface RunningExplorer {
  uiUrl: string;
  otlpUrl: string;
  /** False when the OTLP port was taken (a Collector or Jaeger already on 4318): the UI runs on. */
  otlpListening: boolean;
  receiver: OtlpReceiver;
  queue: SpanWriteQueue;
  app: FastifyInstance;
  /** Runs retention now (also on a timer). */
  prune(): Promise<{ byAge: number; bySize: number }>;
  close(): Promise<void>;
}

const urlHost = (h: string) => (h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h);

/** What the application gives the explorer beside its options: the pipelines it declared. */
export interface ExplorerDeclarations {
  /** The pipelines the diagnosis can explain; without any, traces, events and health still work. */
  readonly pipelines?: readonly Pipeline[];
}

export async function startExplorer(pool: Pool, options: ExplorerOptions, log: ExplorerLog = () => undefined, declarations: ExplorerDeclarations = {}): Promise<RunningExplorer> {
  const queue = new SpanWriteQueue(pool, {
    capacity: options.queueMaxSpans,
    batchSpans: options.writeBatchSpans,
    concurrency: options.writeConcurrency,
    onError: (err) => log('warn', 'span batch not written', { err: err.message }),
  });
  const receiver = new OtlpReceiver(options, queue, log);
  let otlpPort: number | undefined;
  const app = await buildExplorerServer(pool, options, () => ({ receiver: receiver.stats, queue: queue.stats, otlp: { listening: otlpPort !== undefined, port: otlpPort ?? options.otlpPort } }), declarations.pipelines ?? []);
  try {
    otlpPort = (await receiver.listen()).port;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    log('warn', `OTLP port ${urlHost(options.otlpHost)}:${options.otlpPort} is in use (another Collector or Jaeger?): no traces are received here; set EXPLORER_OTLP_PORT to a free port. The UI still serves what is in the database.`);
  }
  await app.listen({ host: options.host, port: options.port });
  const addr = app.server.address();
  const uiPort = typeof addr === 'object' && addr ? addr.port : options.port;

  let pruning = false;
  const prune = async () => {
    if (pruning) return { byAge: 0, bySize: 0 };
    pruning = true;
    try {
      const byAge = await pruneByAge(pool, options.retentionMs);
      const bySize = await pruneBySize(pool, options.retentionMaxSpans);
      await pruneResources(pool, options.retentionMs);
      if (byAge || bySize) log('info', 'retention pruned spans', { by_age: byAge, by_size: bySize });
      return { byAge, bySize };
    } finally {
      pruning = false;
    }
  };
  const timer = setInterval(() => {
    prune().catch((err: unknown) => log('warn', 'retention failed', { err: err instanceof Error ? err.message : String(err) }));
  }, options.pruneIntervalMs);
  timer.unref();

  return {
    uiUrl: `http://${urlHost(options.host)}:${uiPort}`,
    otlpUrl: `http://${urlHost(options.otlpHost)}:${otlpPort ?? options.otlpPort}`,
    otlpListening: otlpPort !== undefined,
    receiver,
    queue,
    app,
    prune,
    async close() {
      clearInterval(timer);
      await receiver.close();
      await queue.close();
      await app.close();
    },
  };
}
