import type { Queryable } from '@loomtrace/outbox';

export interface BlockVersion {
  version: string;
  deleted_at: Date | null;
  updated_at: Date;
}

/** A block's current version at the source of truth (deleted blocks included). */
export async function selectBlockVersion(db: Queryable, id: string): Promise<BlockVersion | undefined> {
  const { rows } = await db.query<BlockVersion>({
    name: 'wordloom_block_version',
    text: `select version::text, deleted_at, updated_at from wordloom.blocks where id = $1::uuid`,
    values: [id],
  });
  return rows[0];
}
