import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { OutboxWorker, WRITTEN, type OutboxEvent, type Pool, type Sink } from '@loomtrace/outbox';
import { resetTracingProbe } from '@loomtrace/outbox/internal';
import { until } from './wait.js';

/**
 * An SDK that keeps every finished span in memory, registered globally with its context manager
 * (AsyncLocalStorage), so a span made active around a transaction is the parent of `send`.
 */
export function memoryTracing(): { exporter: InMemorySpanExporter; provider: NodeTracerProvider } {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  provider.register();
  resetTracingProbe();
  return { exporter, provider };
}

/** A sink that keeps every event it is handed and writes them all. */
export function recordingSink(): Sink & { events: OutboxEvent[] } {
  const events: OutboxEvent[] = [];
  return {
    name: 'recording',
    system: 'test',
    events,
    async write(batch: readonly OutboxEvent[]) {
      events.push(...batch);
      return batch.map(() => WRITTEN);
    },
  };
}

/**
 * Runs a real OutboxWorker on `projection` until the events `ids` are acked and nothing of the
 * projection is left pending or claimed, then stops it. Returns what its sink was handed.
 */
export async function deliver(pool: Pool, projection: string, ids: readonly string[]): Promise<OutboxEvent[]> {
  const sink = recordingSink();
  const worker = new OutboxWorker({ pool, projection, sink, listen: false, pollIntervalMs: 20, concurrency: 1 });
  await worker.start();
  try {
    await until(`events ${ids.join(', ')} of ${projection} acked`, 15_000, async () => {
      const { rows } = await pool.query<{ done: number; open: number }>(
        `select count(*) filter (where id = any($1::bigint[]) and state = 'done')::int as done,
                count(*) filter (where state in ('pending', 'claimed'))::int as open
           from loomtrace.outbox where projection = $2`,
        [ids, projection],
      );
      return rows[0]!.done === ids.length && rows[0]!.open === 0;
    });
  } finally {
    await worker.stop();
  }
  return sink.events;
}

/** The worker's `process <projection>` span of one event. */
export function processSpan(spans: readonly ReadableSpan[], projection: string, id: string): ReadableSpan {
  const span = spans.find((s) => s.name === `process ${projection}` && s.attributes['messaging.message.id'] === id);
  if (!span) throw new Error(`no process ${projection} span for event ${id}; spans: ${spans.map((s) => s.name).join(', ')}`);
  return span;
}
