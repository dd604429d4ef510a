import type { Queryable } from '@loomtrace/outbox';
import { BLOCK_COLUMNS, type BlockRow } from '../model.js';

/** Returns undefined when the book does not exist. */
export async function insertBlock(
  db: Queryable,
  b: { bookId: string; blockType: string; content: string; position: number },
): Promise<BlockRow | undefined> {
  const { rows } = await db.query<BlockRow>({
    name: 'wordloom_insert_block',
    text: `insert into wordloom.blocks (book_id, library_id, block_type, content, position)
           select id, library_id, $2, $3, $4 from wordloom.books where id = $1
           returning ${BLOCK_COLUMNS}`,
    values: [b.bookId, b.blockType, b.content, b.position],
  });
  return rows[0];
}
