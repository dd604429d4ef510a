/**
 * The worker process's OpenTelemetry wiring: what telemetry.ts's NodeSDK sets up, loading only
 * what the worker uses (docs/decisions/0016-worker-export-batches-and-memory.md).
 *
 * When every span goes out through the fast OTLP/HTTP exporter (the common case: telemetry.ts
 * does the same then), the worker needs a tracer provider (the sampler from OTEL_TRACES_SAMPLER,
 * as NodeSDK builds it), the AsyncLocalStorage context manager, the W3C propagators, the
 * resource NodeSDK detects by default (env, process, host) and the pg instrumentation, and not
 * NodeSDK's module graph (every exporter it can choose, gRPC, protobufjs, the metrics and logs
 * SDKs: ~21 MB of RSS). `pg` is then loaded through `require` right away, where the
 * instrumentation's require hook patches it, so the ESM loader hook (a thread of its own,
 * ~16 MB) is not registered. Anything else (another exporter, OTEL_PROPAGATORS or
 * OTEL_NODE_RESOURCE_DETECTORS set, LOOMTRACE_FAST_SDK_SPANS=false) starts telemetry.ts's NodeSDK
 * as before.
 *
 * Start it before anything imports `pg` (worker.ts and bench/drainChild.ts do it first).
 */
import { createRequire } from 'node:module';
import { EventSpanExporter, OtlpSpanProcessor, eventSpanExporterOptionsFromEnv } from '@loomtrace/otlp';
import { createLogger } from './logger.js';

export interface WorkerTelemetry {
  /** The worker's `eventSpans` option. */
  eventSpans: EventSpanExporter | undefined;
  /** Flushes and stops (on shutdown, so the last spans are not lost). */
  stop(): Promise<void>;
}

/** telemetry.ts's pg instrumentation settings (see the reasons there). */
const PG_CONFIG = { requireParentSpan: true, enhancedDatabaseReporting: false, ignoreConnectSpans: true } as const;

const off: WorkerTelemetry = { eventSpans: undefined, stop: async () => undefined };

const set = (v: string | undefined) => v !== undefined && v.trim() !== '';

export async function startWorkerTelemetry(serviceName: string): Promise<WorkerTelemetry> {
  const env = process.env;
  if (env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true') return off;
  const lean = env['LOOMTRACE_FAST_SDK_SPANS']?.trim().toLowerCase() !== 'false' && !set(env['OTEL_PROPAGATORS']) && !set(env['OTEL_NODE_RESOURCE_DETECTORS']);
  env['OTEL_SERVICE_NAME'] ??= serviceName;
  const fast = lean ? eventSpanExporterOptionsFromEnv(env, createLogger(serviceName).child({ component: 'otlp-exporter' })) : undefined;
  if (!fast) {
    const t = await import('./telemetry.js');
    t.startTelemetry(serviceName);
    return { eventSpans: t.fastEventSpans(), stop: t.stopTelemetry };
  }
  const [{ NodeTracerProvider }, res, { registerInstrumentations }, { PgInstrumentation }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/instrumentation'),
    import('@opentelemetry/instrumentation-pg'),
  ]);
  const eventSpans = new EventSpanExporter(fast);
  // As NodeSDK.start(): instrumentations first (they use the global provider's proxy), then the
  // context manager and propagators, the detected resource, the provider.
  const disable = registerInstrumentations({ instrumentations: [new PgInstrumentation(PG_CONFIG)] });
  const resource = res.defaultResource().merge(res.detectResources({ detectors: [res.envDetector, res.processDetector, res.hostDetector] }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new OtlpSpanProcessor(eventSpans)] });
  provider.register();
  // pg through `require`, from where the outbox resolves it: the require hook patches it, and the
  // outbox's `import pg from 'pg'` gets the same (patched) module.
  createRequire(import.meta.resolve('@loomtrace/outbox'))('pg');
  return {
    eventSpans,
    async stop() {
      // The provider first: its spans that end while it shuts down still go through `eventSpans`.
      await provider.shutdown().catch(() => undefined);
      await eventSpans.shutdown().catch(() => undefined);
      disable();
    },
  };
}
