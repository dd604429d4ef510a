import type { Queryable } from '@loomtrace/outbox';
import { BLOCK_COLUMNS, type BlockRow } from '../model.js';

/**
 * Applies a patch and raises the version by one. `expectedVersion` (optional) makes it a
 * compare-and-set. Locks the row, so concurrent patches to one block serialize and each gets
 * its own version.
 */
export async function updateBlock(
  db: Queryable,
  id: string,
  patch: { content?: string | undefined; blockType?: string | undefined; position?: number | undefined; expectedVersion?: number | undefined },
): Promise<BlockRow | undefined> {
  const { rows } = await db.query<BlockRow>({
    name: 'wordloom_update_block',
    text: `update wordloom.blocks
              set content = coalesce($2, content),
                  block_type = coalesce($3, block_type),
                  position = coalesce($4, position),
                  version = version + 1,
                  updated_at = now()
            where id = $1 and deleted_at is null and ($5::bigint is null or version = $5)
           returning ${BLOCK_COLUMNS}`,
    values: [id, patch.content ?? null, patch.blockType ?? null, patch.position ?? null, patch.expectedVersion ?? null],
  });
  return rows[0];
}
