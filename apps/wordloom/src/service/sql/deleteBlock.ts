import type { Queryable } from '@loomtrace/outbox';
import { blockEventValues, withBlockEvent, type BlockEvent, type ChangedBlock } from './blockEvent.js';

const TEXT = withBlockEvent(
  `update wordloom.blocks
      set deleted_at = now(), version = version + 1, updated_at = now()
    where id = $1 and deleted_at is null`,
  1,
);

/**
 * Soft delete with its `block.deleted` event, in one statement: the row stays (with a new
 * version) so the projection and diagnosis can see it.
 */
export async function deleteBlock(db: Queryable, id: string, event: BlockEvent): Promise<ChangedBlock | undefined> {
  const { rows } = await db.query<ChangedBlock>({ name: 'wordloom_delete_block', text: TEXT, values: [id, ...blockEventValues(event)] });
  return rows[0];
}
