/**
 * The search projection in an Elasticsearch or OpenSearch cluster, through the official
 * clients. One `_bulk` request per claimed batch, external versioning on the aggregate
 * version, an explicit mapping created at start, and a per-item answer:
 *
 *   2xx (and 404 for a delete) → written      409 version conflict → stale (success)
 *   429, 5xx, 408              → retry (the response's Retry-After honoured)
 *   400 mapping errors         → fail (`mapping`, dead-lettered)     other 4xx → fail
 *
 * The client's own retries are off (`maxRetries: 0`): the outbox retries, with backoff, per
 * item, and only the items that need it.
 */
import { SpanKind } from '@opentelemetry/api';
import { ProjectionError, parseRetryAfter, type ItemOutcome } from '@loomtrace/outbox';
import * as sc from '../../semconv.js';
import { withSpan } from '@loomtrace/outbox';
import type { ProjectedState, ProjectionInspector, Sink } from '@loomtrace/outbox';
import type { OutboxEvent } from '@loomtrace/outbox';
import { applyBulkResponse, bulkOperations, type BulkResponseBody } from './bulk.js';
import { projectedFromGet, InspectError, type GetDocumentResponse } from './inspect.js';
import { hitsFromSearch, searchRequest, type ClusterSearchBody, type SearchQuery } from './search.js';
import type { SearchHit } from '../postgres/searchBlocks.js';

/** What the sink needs from a cluster client; one adapter per official client. */
export interface ClusterClient {
  readonly system: 'elasticsearch' | 'opensearch';
  bulk(operations: object[], signal: AbortSignal): Promise<{ statusCode: number; headers: Record<string, unknown>; body: BulkResponseBody }>;
  /** A `_search` on one index (404 answered, not thrown). */
  search(index: string, body: Record<string, unknown>, signal?: AbortSignal): Promise<{ statusCode: number; body: ClusterSearchBody & { error?: unknown } }>;
  /** A document GET without its source (404 answered, not thrown). */
  getDocument(index: string, id: string, signal?: AbortSignal): Promise<GetDocumentResponse>;
  indexExists(index: string): Promise<boolean>;
  createIndex(index: string, body: { settings: object; mappings: object }): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The explicit mapping: unknown fields are refused (`strict`) rather than guessed. */
export const SEARCH_MAPPINGS = Object.freeze({
  dynamic: 'strict',
  properties: {
    block_id: { type: 'keyword' },
    library_id: { type: 'keyword' },
    book_id: { type: 'keyword' },
    version: { type: 'long' },
    block_type: { type: 'keyword' },
    content: { type: 'text' },
  },
});

export interface ClusterSinkOptions {
  index: string;
  /**
   * How long the cluster keeps a delete's versioned tombstone (`index.gc_deletes`, 60s by
   * default in Elasticsearch). An older update arriving later than this after a delete could
   * bring the block back, so keep it above the longest retry chain. Default `1h`.
   */
  gcDeletes?: string;
  /** Called when creating the index at start fails (the sink tries again before its first write). */
  onIndexError?: (err: unknown) => void;
}

/** An error the client threw for a whole request, as the outbox classifies it. */
function statusError(statusCode: number, headers: Record<string, unknown> | undefined, type: string): ProjectionError {
  const retryAfter = parseRetryAfter(typeof headers?.['retry-after'] === 'string' ? (headers['retry-after'] as string) : undefined);
  const message = `bulk request ${statusCode} ${type}`.slice(0, 200);
  if (statusCode === 429) return new ProjectionError(message, 'http_429', true, statusCode, retryAfter);
  if (statusCode >= 500 || statusCode === 408) return new ProjectionError(message, statusCode === 408 ? 'timeout' : 'http_5xx', true, statusCode, retryAfter);
  return new ProjectionError(message, 'http_4xx', false, statusCode);
}

/** Turns a client ResponseError (either client) into a ProjectionError; other errors pass through. */
export function fromClientError(err: unknown): unknown {
  const e = err as { name?: string; meta?: { statusCode?: number; headers?: Record<string, unknown>; body?: { error?: { type?: string } } } };
  if (e?.name === 'ResponseError' && typeof e.meta?.statusCode === 'number') {
    return statusError(e.meta.statusCode, e.meta.headers, e.meta.body?.error?.type ?? 'error');
  }
  return err;
}

export class ClusterSearchSink implements Sink, ProjectionInspector {
  readonly name: string;
  readonly system: string;
  private indexReady: Promise<void> | undefined;

  constructor(
    private readonly client: ClusterClient,
    private readonly options: ClusterSinkOptions,
  ) {
    this.name = client.system;
    this.system = client.system;
  }

  /** Creates the index with its mapping unless it exists. Safe when several workers race. */
  ensureIndex(): Promise<void> {
    this.indexReady ??= (async () => {
      const { index } = this.options;
      if (await this.client.indexExists(index)) return;
      try {
        await this.client.createIndex(index, {
          settings: { 'index.gc_deletes': this.options.gcDeletes ?? '1h' },
          mappings: SEARCH_MAPPINGS,
        });
      } catch (err) {
        const type = (err as { meta?: { body?: { error?: { type?: string } } } }).meta?.body?.error?.type;
        if (type !== 'resource_already_exists_exception') throw fromClientError(err);
      }
    })().catch((err: unknown) => {
      this.indexReady = undefined;
      throw err;
    });
    return this.indexReady;
  }

  async write(events: readonly OutboxEvent[], signal: AbortSignal): Promise<readonly ItemOutcome[]> {
    await this.ensureIndex();
    const outcomes: ItemOutcome[] = new Array(events.length);
    const { operations, eventOf, actions } = bulkOperations(this.options.index, events, outcomes);
    if (operations.length === 0) return outcomes;
    // The bulk request itself: one CLIENT span in the batch's trace, database conventions.
    const res = await withSpan(
      sc.SpanNames.write(events[0]!.projection),
      {
        kind: SpanKind.CLIENT,
        attributes: { [sc.ATTR_DB_SYSTEM_NAME]: this.system, [sc.ATTR_DB_OPERATION_NAME]: 'bulk', [sc.ATTR_DB_OPERATION_BATCH_SIZE]: eventOf.length },
      },
      async (span) => {
        try {
          const r = await this.client.bulk(operations, signal);
          span.setAttribute(sc.ATTR_WRITE_STATUS_CODE, r.statusCode);
          return r;
        } catch (err) {
          const e = fromClientError(err);
          if (e instanceof ProjectionError && e.statusCode !== undefined) span.setAttribute(sc.ATTR_WRITE_STATUS_CODE, e.statusCode);
          throw e;
        }
      },
    );
    applyBulkResponse(res.body ?? {}, eventOf, actions, outcomes);
    // A Retry-After on a partly failed response applies to the items it asks to come back.
    const retryAfter = parseRetryAfter(typeof res.headers?.['retry-after'] === 'string' ? (res.headers['retry-after'] as string) : undefined);
    if (retryAfter !== undefined) {
      for (let i = 0; i < outcomes.length; i++) {
        const o = outcomes[i];
        if (o?.kind === 'retry' && o.retryAfterMs === undefined) outcomes[i] = { ...o, retryAfterMs: retryAfter };
      }
    }
    return outcomes;
  }

  /** What the index holds for one block: its external version, from a document GET. */
  async inspect(blockId: string, signal?: AbortSignal): Promise<ProjectedState | null> {
    return projectedFromGet(this.system, this.options.index, await this.client.getDocument(this.options.index, blockId, signal));
  }

  /** Full-text search on the index the sink writes (an index not created yet: no hits). */
  async search(q: SearchQuery, signal?: AbortSignal): Promise<SearchHit[]> {
    const r = await this.client.search(this.options.index, searchRequest(q), signal);
    if (r.statusCode === 404) return [];
    if (r.statusCode < 200 || r.statusCode >= 300) throw new InspectError(r.statusCode, 'search');
    return hitsFromSearch(r.body);
  }

  async ping(): Promise<void> {
    await this.client.ping();
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
