import type { Queryable } from '@loomtrace/outbox';
import type { LibraryRow } from '../model.js';

export async function insertLibrary(db: Queryable, name: string): Promise<LibraryRow> {
  const { rows } = await db.query<LibraryRow>({
    name: 'wordloom_insert_library',
    text: 'insert into wordloom.libraries (name) values ($1) returning id, name, created_at',
    values: [name],
  });
  return rows[0]!;
}
