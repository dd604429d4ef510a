/**
 * The `_bulk` request and the per-item classification of its answer, shared by the
 * Elasticsearch and OpenSearch sinks (both speak the same bulk protocol).
 *
 * Every action carries `version_type=external` with the aggregate's version, so the cluster
 * itself is the version guard: an older version than the stored one answers 409, which for us
 * is success (`stale`). Deletes carry the version too and leave a tombstone for
 * `index.gc_deletes`, so a late, older update within that window cannot bring the block back.
 */
import { STALE, WRITTEN, classifyStatus, type ItemOutcome } from '@loomtrace/outbox';
import type { OutboxEvent } from '@loomtrace/outbox';
import { toBlockDoc } from '../postgres/sink.js';

/** The document stored per block: ids, version, type and text. */
export interface SearchDocument {
  block_id: string;
  library_id: string;
  book_id: string;
  version: number;
  block_type: string | null;
  content: string | null;
}

/**
 * Builds the bulk operations (action line, then the document for `index`) for the events
 * that parse; events that do not get their outcome (`fail`, bad_payload) right away.
 * Returns, per operation, the index of the event it stands for.
 */
export function bulkOperations(
  index: string,
  events: readonly OutboxEvent[],
  outcomes: ItemOutcome[],
): { operations: object[]; eventOf: number[]; actions: ('index' | 'delete')[] } {
  const operations: object[] = [];
  const eventOf: number[] = [];
  const actions: ('index' | 'delete')[] = [];
  events.forEach((e, i) => {
    let doc;
    try {
      doc = toBlockDoc(e);
    } catch (err) {
      outcomes[i] = { kind: 'fail', reason: 'bad_payload', message: (err as Error).message };
      return;
    }
    const meta = { _index: index, _id: doc.blockId, version: doc.version, version_type: 'external' };
    if (doc.deleted) {
      operations.push({ delete: meta });
      actions.push('delete');
    } else {
      operations.push({ index: meta });
      actions.push('index');
      const body: SearchDocument = {
        block_id: doc.blockId,
        library_id: doc.libraryId,
        book_id: doc.bookId,
        version: doc.version,
        block_type: doc.blockType,
        content: doc.content,
      };
      operations.push(body);
    }
    eventOf.push(i);
  });
  return { operations, eventOf, actions };
}

/** One item of a bulk response (`items[n].index` or `items[n].delete`). */
export interface BulkItemResult {
  status?: number;
  result?: string;
  error?: { type?: string; reason?: string } | string;
}

export interface BulkResponseBody {
  errors?: boolean;
  items?: Record<string, BulkItemResult>[];
}

/** Error types that mean the document does not fit the mapping: retrying cannot help. */
const MAPPING_ERRORS = new Set([
  'mapper_parsing_exception',
  'strict_dynamic_mapping_exception',
  'document_parsing_exception',
  'illegal_argument_exception',
  'mapper_exception',
]);

/** Classifies one bulk item. Only the error's type goes into the message: never document text. */
export function classifyBulkItem(item: BulkItemResult | undefined, action: 'index' | 'delete'): ItemOutcome {
  if (!item || typeof item.status !== 'number') return { kind: 'retry', reason: 'unknown', message: 'bulk response has no item for this operation' };
  const status = item.status;
  if (status >= 200 && status < 300) return { ...WRITTEN, statusCode: status };
  // A delete of a block the index never had still records the versioned tombstone.
  if (status === 404 && action === 'delete') return { ...WRITTEN, statusCode: status };
  if (status === 409) return { ...STALE, statusCode: status };
  const type = typeof item.error === 'string' ? 'error' : (item.error?.type ?? 'error');
  const message = `bulk item ${status} ${type}`.slice(0, 200);
  if (status >= 400 && status < 500 && status !== 408 && status !== 429 && MAPPING_ERRORS.has(type)) {
    return { kind: 'fail', reason: 'mapping', message, statusCode: status };
  }
  return classifyStatus(status, message);
}

/** Maps a bulk response back onto the events; fills every outcome not already decided. */
export function applyBulkResponse(body: BulkResponseBody, eventOf: readonly number[], actions: readonly ('index' | 'delete')[], outcomes: ItemOutcome[]): void {
  const items = body.items ?? [];
  for (let k = 0; k < eventOf.length; k++) {
    const item = items[k];
    const action = actions[k]!;
    outcomes[eventOf[k]!] = classifyBulkItem(item?.[action] ?? (item ? Object.values(item)[0] : undefined), action);
  }
}
