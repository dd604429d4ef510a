import type { EventSpanExporter } from './otlp/exporter.js';

/**
 * The fast exporter for the worker's per-event spans (src/outbox/attemptTrace.ts), registered
 * by the process that wires the SDK (src/cli/telemetry.ts) when its trace exporter is OTLP over
 * HTTP. Unset, every span goes through the SDK as before.
 */
let registered: EventSpanExporter | undefined;

export function setEventSpanExporter(exporter: EventSpanExporter | undefined): void {
  registered = exporter;
}

export function eventSpanExporter(): EventSpanExporter | undefined {
  return registered;
}
