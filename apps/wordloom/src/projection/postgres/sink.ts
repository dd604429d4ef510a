import type { Pool } from '@loomtrace/outbox';
import { ProjectionError, STALE, WRITTEN, type ItemOutcome } from '@loomtrace/outbox';
import type { ProjectedState, ProjectionInspector, Sink } from '@loomtrace/outbox';
import { selectIndexedBlock } from './selectIndexedBlock.js';
import type { OutboxEvent } from '@loomtrace/outbox';
import { upsertBlocks, type BlockDoc } from './upsertBlocks.js';
import { ATTR_LIBRARY_ID } from '../../semconv.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Reads a block event's payload into a document; a malformed payload is a deterministic failure. */
export function toBlockDoc(e: OutboxEvent): BlockDoc {
  const p = e.payload;
  const deleted = e.eventType === 'block.deleted';
  const str = (k: string) => (typeof p[k] === 'string' ? (p[k] as string) : null);
  const bookId = str('book_id');
  const libraryId = str('library_id') ?? (typeof e.attributes?.[ATTR_LIBRARY_ID] === 'string' ? e.attributes[ATTR_LIBRARY_ID] : null);
  if (!UUID.test(e.aggregateId) || !bookId || !UUID.test(bookId) || !libraryId || !UUID.test(libraryId)) {
    throw new ProjectionError('block event payload lacks a valid block, book or library id', 'bad_payload', false);
  }
  if (!deleted && typeof p['content'] !== 'string') {
    throw new ProjectionError('block event payload has no content', 'bad_payload', false);
  }
  return {
    blockId: e.aggregateId,
    libraryId,
    bookId,
    version: e.aggregateVersion,
    deleted,
    blockType: deleted ? null : str('block_type'),
    content: deleted ? null : (p['content'] as string),
    eventId: e.id,
  };
}

/**
 * The embedded search projection: a Postgres full-text index in the `search` schema.
 * Within a batch only the newest version of each block is sent (two versions of one row in
 * one upsert would be an error); the older ones are stale, which is success.
 */
export class PostgresSearchSink implements Sink, ProjectionInspector {
  readonly name = 'postgres-search';
  readonly system = 'postgresql';
  constructor(private readonly pool: Pool) {}

  async write(events: readonly OutboxEvent[]): Promise<readonly ItemOutcome[]> {
    const outcomes: ItemOutcome[] = new Array(events.length);
    const newest = new Map<string, { doc: BlockDoc; index: number }>();
    events.forEach((e, i) => {
      let doc: BlockDoc;
      try {
        doc = toBlockDoc(e);
      } catch (err) {
        const pe = err as ProjectionError;
        outcomes[i] = { kind: 'fail', reason: pe.reason ?? 'bad_payload', message: pe.message };
        return;
      }
      const seen = newest.get(doc.blockId);
      if (!seen || seen.doc.version < doc.version) {
        if (seen) outcomes[seen.index] = STALE;
        newest.set(doc.blockId, { doc, index: i });
      } else {
        outcomes[i] = STALE;
      }
    });
    if (newest.size > 0) {
      // One order for every worker: two batches that touch the same blocks lock them in the
      // same order, so concurrent upserts wait for each other instead of deadlocking.
      const docs = [...newest.values()].sort((a, b) => (a.doc.blockId < b.doc.blockId ? -1 : a.doc.blockId > b.doc.blockId ? 1 : 0));
      const written = await upsertBlocks(this.pool, docs.map((d) => d.doc));
      for (const { doc, index } of docs) outcomes[index] = written.has(doc.blockId) ? WRITTEN : STALE;
    }
    return outcomes;
  }

  /** What `search.blocks` holds for one block: its version, tombstone, write time and event. */
  async inspect(blockId: string): Promise<ProjectedState | null> {
    const r = await selectIndexedBlock(this.pool, blockId);
    return r ? { version: Number(r.version), deleted: r.deleted, at: r.indexed_at, eventId: r.event_id, where: 'search.blocks' } : null;
  }

  async ping(): Promise<void> {
    await this.pool.query('select 1 from search.blocks limit 1');
  }
}
