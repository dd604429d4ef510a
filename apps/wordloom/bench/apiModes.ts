/**
 * The API's environment per A/B mode, shared by apiTraceAb and apiPairAb: `off` (SDK disabled),
 * `on` (100 % parent-based to the local receiver), `stock` (the SDK's own span path),
 * `sampledOff`, and any `EXTRA='{"name":{"VAR":"value"}}'` on top of `on`.
 */
import type { Receiver } from './otlpReceiver.js';

export const API_BASE_ENV: Record<string, string> = { LOG_LEVEL: 'warn', METRICS_PORT: '0' };

export function apiModes(rx: Receiver): Record<string, Record<string, string>> {
  const on = { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_TRACES_SAMPLER: 'parentbased_always_on' };
  const extra = process.env['EXTRA'] ? (JSON.parse(process.env['EXTRA']) as Record<string, Record<string, string>>) : {};
  return {
    off: { OTEL_SDK_DISABLED: 'true' },
    on,
    stock: { ...on, LOOMTRACE_FAST_SDK_SPANS: 'false' },
    sampledOff: { ...on, OTEL_TRACES_SAMPLER: 'always_off' },
    ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, { ...on, ...v }])),
  };
}
