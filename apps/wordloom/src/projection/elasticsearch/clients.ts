/**
 * Adapters from the two official clients to `ClusterClient`. Both are created with their own
 * retries off (the outbox retries per item) and a request timeout.
 *
 * Each client is loaded when the first one is made, not with this module: a worker writing to
 * the Postgres index never loads either (together ~33 MB of RSS; decision 0016).
 */
import { createRequire } from 'node:module';
import type { ClusterClient } from './sink.js';

const load = createRequire(import.meta.url);
type EsModule = typeof import('@elastic/elasticsearch');
type OsModule = typeof import('@opensearch-project/opensearch');

export interface ClusterClientOptions {
  url: string;
  /** Per request. Default 30 s. */
  requestTimeoutMs?: number;
}

export function elasticsearchClient(o: ClusterClientOptions): ClusterClient {
  const { Client: EsClient } = load('@elastic/elasticsearch') as EsModule;
  const client = new EsClient({ node: o.url, maxRetries: 0, requestTimeout: o.requestTimeoutMs ?? 30_000 });
  return {
    system: 'elasticsearch',
    async bulk(operations, signal) {
      // The sink makes its own bulk span with the current database conventions (`db.system.name`);
      // the client's built-in span would duplicate it under the older `db.system` key.
      const r = await client.bulk({ operations }, { meta: true, signal, maxRetries: 0, openTelemetry: { enabled: false } });
      return { statusCode: r.statusCode ?? 200, headers: (r.headers ?? {}) as Record<string, unknown>, body: r.body as never };
    },
    async search(index, body, signal) {
      const r = await client.search({ index, ...body } as never, { meta: true, ignore: [404], maxRetries: 0, openTelemetry: { enabled: false }, ...(signal ? { signal } : {}) });
      return { statusCode: r.statusCode ?? 200, body: r.body as never };
    },
    async getDocument(index, id, signal) {
      const r = await client.get({ index, id, _source: false }, { meta: true, ignore: [404], maxRetries: 0, openTelemetry: { enabled: false }, ...(signal ? { signal } : {}) });
      return { statusCode: r.statusCode ?? 200, body: r.body as never };
    },
    async indexExists(index) {
      return client.indices.exists({ index });
    },
    async createIndex(index, body) {
      await client.indices.create({ index, settings: body.settings as never, mappings: body.mappings as never });
    },
    async ping() {
      await client.ping();
    },
    close: () => client.close(),
  };
}

/**
 * The OpenSearch client has no AbortSignal option; its request promise can be aborted. Waits for
 * `req`, aborting it when `signal` fires, and gives its status, headers and body.
 */
async function abortable<R extends { statusCode?: number | null; headers?: unknown; body: unknown }>(req: Promise<R>, signal: AbortSignal | undefined): Promise<R> {
  const onAbort = () => (req as unknown as { abort?: () => void }).abort?.();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await req;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

export function opensearchClient(o: ClusterClientOptions): ClusterClient {
  const { Client: OsClient } = load('@opensearch-project/opensearch') as OsModule;
  const client = new OsClient({ node: o.url, maxRetries: 0, requestTimeout: o.requestTimeoutMs ?? 30_000 });
  return {
    system: 'opensearch',
    async bulk(operations, signal) {
      const r = await abortable(client.bulk({ body: operations as never }, { maxRetries: 0 }), signal);
      return { statusCode: r.statusCode ?? 200, headers: (r.headers ?? {}) as Record<string, unknown>, body: r.body as never };
    },
    async search(index, body, signal) {
      const r = await abortable(client.search({ index, body: body as never }, { ignore: [404], maxRetries: 0 }), signal);
      return { statusCode: r.statusCode ?? 200, body: r.body as never };
    },
    async getDocument(index, id, signal) {
      const r = await abortable(client.get({ index, id, _source: false }, { ignore: [404], maxRetries: 0 }), signal);
      return { statusCode: r.statusCode ?? 200, body: r.body as never };
    },
    async indexExists(index) {
      return (await client.indices.exists({ index })).body === true;
    },
    async createIndex(index, body) {
      await client.indices.create({ index, body: body as never });
    },
    async ping() {
      await client.ping();
    },
    close: () => client.close(),
  };
}
