import type { Queryable } from '@loomtrace/outbox';
import type { BookRow } from '../model.js';

/** Returns undefined when the library does not exist. */
export async function insertBook(db: Queryable, libraryId: string, title: string): Promise<BookRow | undefined> {
  const { rows } = await db.query<BookRow>({
    name: 'wordloom_insert_book',
    text: `insert into wordloom.books (library_id, title)
           select id, $2 from wordloom.libraries where id = $1
           returning id, library_id, title, created_at`,
    values: [libraryId, title],
  });
  return rows[0];
}
