import type { Queryable } from '@loomtrace/outbox';
import { blockEventValues, withBlockEvent, type BlockEvent, type ChangedBlock } from './blockEvent.js';

/** The block change alone ($1 id, $2–$4 the patch, $5 the expected version); the benches time it too. */
export const UPDATE_BLOCK = `update wordloom.blocks
      set content = coalesce($2, content),
          block_type = coalesce($3, block_type),
          position = coalesce($4, position),
          version = version + 1,
          updated_at = now()
    where id = $1 and deleted_at is null and ($5::bigint is null or version = $5)`;

const TEXT = withBlockEvent(UPDATE_BLOCK, 5);

/**
 * Applies a patch, raises the version by one and adds the `block.updated` event, in one
 * statement. `expectedVersion` (optional) makes it a compare-and-set. Locks the row, so
 * concurrent patches to one block serialize and each gets its own version.
 */
export async function updateBlock(
  db: Queryable,
  id: string,
  patch: { content?: string | undefined; blockType?: string | undefined; position?: number | undefined; expectedVersion?: number | undefined },
  event: BlockEvent,
): Promise<ChangedBlock | undefined> {
  const { rows } = await db.query<ChangedBlock>({
    name: 'wordloom_update_block',
    text: TEXT,
    values: [id, patch.content ?? null, patch.blockType ?? null, patch.position ?? null, patch.expectedVersion ?? null, ...blockEventValues(event)],
  });
  return rows[0];
}
