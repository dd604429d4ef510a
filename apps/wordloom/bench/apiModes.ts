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

/** A library, a book and `n` blocks through the API at `apiUrl`; the blocks' ids. */
export async function seedBlocks(apiUrl: string, n = 200): Promise<string[]> {
  const post = (p: string, body: unknown) =>
    fetch(`${apiUrl}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json() as Promise<{ id: string }>);
  const lib = await post('/api/v1/libraries', { name: 'x' });
  const book = await post('/api/v1/books', { library_id: lib.id, title: 'b' });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await post('/api/v1/blocks', { book_id: book.id, block_type: 'text', content: `b ${i}`, position: i })).id);
  return ids;
}
