import type { Queryable } from '@loomtrace/outbox';

export interface IndexedBlock {
  version: string;
  deleted: boolean;
  indexed_at: Date;
  event_id: string | null;
}

/** What the Postgres search projection holds for one block (a tombstone included). */
export async function selectIndexedBlock(db: Queryable, id: string): Promise<IndexedBlock | undefined> {
  const { rows } = await db.query<IndexedBlock>({
    name: 'search_indexed_block',
    text: `select version::text, deleted, indexed_at, event_id::text from search.blocks where block_id = $1::uuid`,
    values: [id],
  });
  return rows[0];
}
