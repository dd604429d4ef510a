import type { Queryable } from '@loomtrace/outbox';
import { BLOCK_COLUMNS, type BlockRow } from '../model.js';

/** Soft delete: the row stays (with a new version) so the projection and diagnosis can see it. */
export async function deleteBlock(db: Queryable, id: string): Promise<BlockRow | undefined> {
  const { rows } = await db.query<BlockRow>({
    name: 'wordloom_delete_block',
    text: `update wordloom.blocks
              set deleted_at = now(), version = version + 1, updated_at = now()
            where id = $1 and deleted_at is null
           returning ${BLOCK_COLUMNS}`,
    values: [id],
  });
  return rows[0];
}
