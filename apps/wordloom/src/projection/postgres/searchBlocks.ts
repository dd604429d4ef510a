import type { Queryable } from '@loomtrace/outbox';

export interface SearchHit {
  block_id: string;
  book_id: string;
  library_id: string;
  version: string;
  block_type: string | null;
  snippet: string;
  rank: number;
}

/** Full-text search over the projection (never the source of truth): what users see. */
export async function searchBlocks(db: Queryable, q: { text: string; libraryId?: string | undefined; limit: number }): Promise<SearchHit[]> {
  const { rows } = await db.query<SearchHit>({
    name: 'search_blocks',
    text: `select block_id, book_id, library_id, version::text, block_type,
                  ts_headline('simple', content, query, 'MaxFragments=1,MaxWords=20,MinWords=5') as snippet,
                  ts_rank(tsv, query) as rank
             from search.blocks, websearch_to_tsquery('simple', $1) query
            where not deleted and tsv @@ query and ($2::uuid is null or library_id = $2)
            order by rank desc, block_id
            limit $3`,
    values: [q.text, q.libraryId ?? null, q.limit],
  });
  return rows;
}
