/**
 * Wordloom declares its pipeline like any other user would: blocks (`wordloom.blocks`) →
 * the `search` projection, asked through the sink of the configured backend (the Postgres
 * table, or the Elasticsearch/OpenSearch index through the official client).
 */
import type { Pipeline, Pool, ProjectionInspector } from '@loomtrace/outbox';
import { selectBlockVersion } from './service/sql/selectBlockVersion.js';
import { SEARCH_PROJECTION } from './service/model.js';
import { PostgresSearchSink } from './projection/postgres/sink.js';
import { ClusterSearchSink } from './projection/elasticsearch/sink.js';
import { elasticsearchClient, opensearchClient } from './projection/elasticsearch/clients.js';
import { BLOCK_TRACE_SHAPE } from './traceShape.js';
import { blockCanary } from './canary.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface SearchTarget {
  readonly backend: 'postgres' | 'elasticsearch' | 'opensearch';
  readonly url?: string | undefined;
  readonly index: string;
}

/** The search projection's inspector for the configured backend, and how to release it. */
export function searchInspector(pool: Pool, target: SearchTarget): { inspector: ProjectionInspector; close(): Promise<void> } {
  if (target.backend === 'postgres') return { inspector: new PostgresSearchSink(pool), close: async () => undefined };
  if (!target.url) throw new Error(`search backend ${target.backend} needs a URL`);
  const client = target.backend === 'elasticsearch' ? elasticsearchClient({ url: target.url, requestTimeoutMs: 5_000 }) : opensearchClient({ url: target.url, requestTimeoutMs: 5_000 });
  const sink = new ClusterSearchSink(client, { index: target.index });
  return { inspector: sink, close: () => sink.close() };
}

/** The block → search pipeline; with `apiUrl`, its canary change goes through that API. */
export function blockSearchPipeline(inspector: ProjectionInspector, apiUrl?: string): Pipeline {
  return {
    projection: SEARCH_PROJECTION,
    aggregateType: 'block',
    labels: { aggregate: 'block', projection: 'search', target: 'the index' },
    idPattern: UUID,
    async readSource(db, id) {
      const b = await selectBlockVersion(db, id);
      return b ? { version: Number(b.version), deleted: b.deleted_at !== null, updatedAt: b.updated_at } : null;
    },
    inspector,
    traceShape: BLOCK_TRACE_SHAPE,
    ...(apiUrl ? { canary: blockCanary(apiUrl) } : {}),
  };
}

/** Wordloom's declared pipelines over one pool; `close` releases a cluster client. */
export function wordloomPipelines(pool: Pool, target: SearchTarget = { backend: 'postgres', index: 'wordloom-blocks' }, apiUrl?: string): { pipelines: readonly Pipeline[]; close(): Promise<void> } {
  const s = searchInspector(pool, target);
  return { pipelines: [blockSearchPipeline(s.inspector, apiUrl)], close: s.close };
}

