import type { Pool } from '@loomtrace/outbox';
import type { Sink } from '@loomtrace/outbox';
import { PostgresSearchSink } from '../postgres/sink.js';
import { elasticsearchClient, opensearchClient } from './clients.js';
import { ClusterSearchSink } from './sink.js';

export interface SearchBackendChoice {
  backend: 'postgres' | 'elasticsearch' | 'opensearch';
  /** Cluster URL for elasticsearch/opensearch. */
  url?: string | undefined;
  /** Index name for elasticsearch/opensearch. */
  index: string;
  /** Told when the index cannot be created at start (the sink tries again before writing). */
  onIndexError?: (err: unknown) => void;
}

/**
 * The search projection's sink for the configured backend; the embedded Postgres index is the
 * default. A cluster sink creates its index (explicit mapping) at start; when the cluster is
 * not reachable yet, the worker still starts and the first write tries again.
 */
export async function createSearchSink(pool: Pool, choice: SearchBackendChoice): Promise<Sink> {
  if (choice.backend === 'postgres') return new PostgresSearchSink(pool);
  if (!choice.url) throw new Error(`search backend ${choice.backend} needs a URL`);
  const client = choice.backend === 'elasticsearch' ? elasticsearchClient({ url: choice.url }) : opensearchClient({ url: choice.url });
  const sink = new ClusterSearchSink(client, { index: choice.index });
  await sink.ensureIndex().catch((err: unknown) => choice.onIndexError?.(err));
  return sink;
}

/** The cluster index to search (the one the worker writes), or undefined for the Postgres default. */
export function clusterSearch(choice: SearchBackendChoice): ClusterSearchSink | undefined {
  if (choice.backend === 'postgres') return undefined;
  if (!choice.url) throw new Error(`search backend ${choice.backend} needs a URL`);
  const client = choice.backend === 'elasticsearch' ? elasticsearchClient({ url: choice.url, requestTimeoutMs: 10_000 }) : opensearchClient({ url: choice.url, requestTimeoutMs: 10_000 });
  return new ClusterSearchSink(client, { index: choice.index });
}
