import type { Queryable } from '@loomtrace/outbox';
import { BLOCK_COLUMNS, type BlockRow } from '../model.js';

/** undefined when the book does not exist; otherwise its live blocks in order. */
export async function selectBookBlocks(db: Queryable, bookId: string, limit: number, offset: number): Promise<BlockRow[] | undefined> {
  const { rows } = await db.query<BlockRow & { book_exists: boolean }>({
    name: 'wordloom_select_book_blocks',
    text: `select ${BLOCK_COLUMNS.replace(/(^|, )/g, '$1b.')}
             from wordloom.books k
             left join wordloom.blocks b on b.book_id = k.id and b.deleted_at is null
            where k.id = $1
            order by b.position, b.created_at, b.id
            limit $2 offset $3`,
    values: [bookId, limit, offset],
  });
  if (rows.length === 0) {
    const book = await db.query({ name: 'wordloom_book_exists', text: 'select 1 from wordloom.books where id = $1', values: [bookId] });
    return book.rowCount ? [] : undefined;
  }
  return rows.filter((r) => r.id !== null);
}
