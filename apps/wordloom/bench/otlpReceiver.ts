/**
 * A local OTLP/HTTP receiver for the tracing-cost runs: it answers at once and keeps the raw
 * bodies, and only after a timed run decodes them to count spans (so its CPU does not compete
 * with the workers while they are measured).
 */
import { createServer, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import protobuf from 'protobufjs';

// The few fields of opentelemetry-proto's ExportTraceServiceRequest needed to count spans.
const root = protobuf.Root.fromJSON({
  nested: {
    Req: { fields: { resourceSpans: { rule: 'repeated', type: 'RS', id: 1 } } },
    RS: { fields: { scopeSpans: { rule: 'repeated', type: 'SS', id: 2 } } },
    SS: { fields: { spans: { rule: 'repeated', type: 'Span', id: 2 } } },
    Span: { fields: { name: { type: 'string', id: 5 } } },
  },
});
const Req = root.lookupType('Req');

export interface Receiver {
  url: string;
  /** Decodes what arrived since the last reset: spans by name. */
  count(): Map<string, number>;
  bytes(): number;
  reset(): void;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  let bodies: { body: Buffer; json: boolean; gzip: boolean }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push({
        body: Buffer.concat(chunks),
        json: String(req.headers['content-type'] ?? '').includes('json'),
        gzip: req.headers['content-encoding'] === 'gzip',
      });
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bytes: () => bodies.reduce((n, b) => n + b.body.length, 0),
    count() {
      const out = new Map<string, number>();
      for (const b of bodies) {
        const raw = b.gzip ? gunzipSync(b.body) : b.body;
        const msg = (b.json ? JSON.parse(raw.toString('utf8')) : Req.toObject(Req.decode(raw))) as {
          resourceSpans?: { scopeSpans?: { spans?: { name?: string }[] }[] }[];
        };
        for (const rs of msg.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) for (const s of ss.spans ?? []) {
          const name = s.name ?? '';
          out.set(name, (out.get(name) ?? 0) + 1);
        }
      }
      return out;
    },
    reset() {
      bodies = [];
    },
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

/**
 * The traced drain's worker environment (bench/suite.ts's tracing section, bench/traceAb.ts): the
 * real SDK exporting OTLP/protobuf to `receiverUrl` with `sampler`. The queue is big enough that
 * no span is dropped at this rate (the receiver's count proves it).
 */
export function tracedDrainEnv(receiverUrl: string, sampler: string, arg?: string): Record<string, string> {
  return {
    BENCH_TRACING: '1',
    OTEL_SERVICE_NAME: 'bench-worker',
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: receiverUrl,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_TRACES_SAMPLER: sampler,
    ...(arg ? { OTEL_TRACES_SAMPLER_ARG: arg } : {}),
    OTEL_BSP_MAX_QUEUE_SIZE: '65536',
    OTEL_BSP_SCHEDULE_DELAY: '200',
  };
}
