/**
 * The one place the OpenTelemetry SDK is wired, in the processes (never in the library).
 * Configured by the standard variables: OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf or http/json), OTEL_TRACES_EXPORTER,
 * OTEL_TRACES_SAMPLER(_ARG), OTEL_PROPAGATORS, OTEL_SDK_DISABLED.
 *
 * Import this module first and start it before importing anything that loads `pg`, so the
 * ESM loader hook can instrument it.
 */
import { register } from 'node:module';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { PgInstrumentation } from '@opentelemetry/instrumentation-pg';
import { EventSpanExporter, eventSpanExporterOptionsFromEnv } from '@loomtrace/otlp';
import { OtlpSpanProcessor } from '@loomtrace/otlp';
import { createLogger } from './logger.js';

let sdk: NodeSDK | undefined;
let eventSpans: EventSpanExporter | undefined;

export function startTelemetry(defaultServiceName: string): void {
  if (process.env['OTEL_SDK_DISABLED']?.trim().toLowerCase() === 'true') return;
  process.env['OTEL_SERVICE_NAME'] ??= defaultServiceName;
  // Our metrics go out as Prometheus text and our logs as JSON lines; do not push them by OTLP
  // unless asked to.
  process.env['OTEL_METRICS_EXPORTER'] ??= 'none';
  process.env['OTEL_LOGS_EXPORTER'] ??= 'none';
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, {
    data: { include: ['pg', 'pg-pool'] },
  });
  // The worker's per-event spans skip the SDK's Span objects and OTLP transformer when the
  // SDK exports OTLP over HTTP: same spans, same endpoint, encoded directly
  // (docs/decisions/0007-fast-event-spans.md). Any other exporter keeps the SDK path.
  // Read once, here: the variables and the TLS files. Export failures and partial successes are
  // logged as the process's own JSON lines.
  const fast = eventSpanExporterOptionsFromEnv(process.env, createLogger(defaultServiceName).child({ component: 'otlp-exporter' }));
  if (fast) eventSpans = new EventSpanExporter(fast);
  // The SDK's own spans then go the same way: encoded when they end, in place of the
  // BatchSpanProcessor + OTLP exporter the SDK would make from the same variables
  // (docs/decisions/0009-api-trace-cost.md). LOOMTRACE_FAST_SDK_SPANS=false keeps the SDK's.
  const sdkSpans = eventSpans !== undefined && process.env['LOOMTRACE_FAST_SDK_SPANS']?.trim().toLowerCase() !== 'false';
  sdk = new NodeSDK({
    ...(sdkSpans && eventSpans ? { spanProcessors: [new OtlpSpanProcessor(eventSpans)] } : {}),
    instrumentations: [
      new PgInstrumentation({
        // Only queries inside our spans: an idle worker's polling must not make root traces.
        requireParentSpan: true,
        // Never record parameter values: they carry user content.
        enhancedDatabaseReporting: false,
        // A pool checkout is not a database operation; it tripled the spans of a PATCH.
        ignoreConnectSpans: true,
      }),
    ],
  });
  sdk.start();
}

/** The fast per-event span exporter, when the SDK exports OTLP over HTTP: the worker's `eventSpans` option. */
export function fastEventSpans(): EventSpanExporter | undefined {
  return eventSpans;
}

/** Flushes and stops the SDK (on shutdown, so the last spans are not lost). */
export async function stopTelemetry(): Promise<void> {
  const s = sdk;
  const fast = eventSpans;
  sdk = undefined;
  eventSpans = undefined;
  // The SDK first: its spans that end while it shuts down still go through `fast`.
  await s?.shutdown().catch(() => undefined);
  await fast?.shutdown().catch(() => undefined);
}
