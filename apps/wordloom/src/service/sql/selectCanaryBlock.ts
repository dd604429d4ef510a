import type { Queryable } from '@loomtrace/outbox';

/** The probe's canary block: the oldest live block of the library named `name`. */
export async function selectCanaryBlock(db: Queryable, name: string): Promise<string | undefined> {
  const { rows } = await db.query<{ id: string }>({
    name: 'wordloom_canary_block',
    text: `select b.id::text from wordloom.blocks b join wordloom.libraries l on l.id = b.library_id
            where l.name = $1 and b.deleted_at is null order by b.created_at, b.id limit 1`,
    values: [name],
  });
  return rows[0]?.id;
}
