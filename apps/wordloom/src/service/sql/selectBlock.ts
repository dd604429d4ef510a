import type { Queryable } from '@loomtrace/outbox';
import { BLOCK_COLUMNS, type BlockRow } from '../model.js';

export async function selectBlock(db: Queryable, id: string): Promise<BlockRow | undefined> {
  const { rows } = await db.query<BlockRow>({
    name: 'wordloom_select_block',
    text: `select ${BLOCK_COLUMNS} from wordloom.blocks where id = $1 and deleted_at is null`,
    values: [id],
  });
  return rows[0];
}
