import type { Queryable } from '@loomtrace/outbox';
import { blockEventValues, withBlockEvent, type BlockEvent, type ChangedBlock } from './blockEvent.js';

const TEXT = withBlockEvent(
  `insert into wordloom.blocks (book_id, library_id, block_type, content, position)
   select id, library_id, $2, $3, $4 from wordloom.books where id = $1`,
  4,
);

/** Adds a block and its `block.created` event in one statement; undefined when the book does not exist. */
export async function insertBlock(
  db: Queryable,
  b: { bookId: string; blockType: string; content: string; position: number },
  event: BlockEvent,
): Promise<ChangedBlock | undefined> {
  const { rows } = await db.query<ChangedBlock>({
    name: 'wordloom_insert_block',
    text: TEXT,
    values: [b.bookId, b.blockType, b.content, b.position, ...blockEventValues(event)],
  });
  return rows[0];
}
