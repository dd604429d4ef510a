import type { Queryable } from '@loomtrace/outbox';

export interface BlockDoc {
  blockId: string;
  libraryId: string;
  bookId: string;
  version: number;
  deleted: boolean;
  blockType: string | null;
  content: string | null;
  /** The outbox event that carried this version; null when written by a rebuild. */
  eventId: string | null;
}

/**
 * Version-guarded bulk upsert: a row changes only when the incoming version is newer.
 * Deletes are tombstones (deleted = true) so an older update arriving late cannot revive
 * the block. Returns the ids that were written; the others were stale (already newer).
 */
export async function upsertBlocks(db: Queryable, docs: readonly BlockDoc[]): Promise<Set<string>> {
  const { rows } = await db.query<{ block_id: string }>({
    name: 'search_upsert_blocks',
    text: `insert into search.blocks as b (block_id, library_id, book_id, version, deleted, block_type, content, event_id)
           select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::boolean[], $6::text[], $7::text[], $8::bigint[])
           on conflict (block_id) do update
              set library_id = excluded.library_id, book_id = excluded.book_id, version = excluded.version,
                  deleted = excluded.deleted, block_type = excluded.block_type, content = excluded.content,
                  event_id = excluded.event_id, indexed_at = clock_timestamp()
            where b.version < excluded.version
           returning block_id`,
    values: [
      docs.map((d) => d.blockId),
      docs.map((d) => d.libraryId),
      docs.map((d) => d.bookId),
      docs.map((d) => d.version),
      docs.map((d) => d.deleted),
      docs.map((d) => d.blockType),
      docs.map((d) => d.content),
      docs.map((d) => d.eventId),
    ],
  });
  return new Set(rows.map((r) => r.block_id));
}
