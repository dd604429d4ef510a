/**
 * Search where the worker writes: a `_search` on the cluster index (match on `content`, a
 * `library_id` term filter), its highlighter marking matches with STX/ETX, turned into the
 * same plain-text snippet and UTF-16 highlight offsets as the Postgres search. The snippet is
 * never HTML (`encoder: default` copies the text as is; the API says: render it as text). A
 * block's own STX/ETX characters would read as a marker here: at worst a wrong highlight
 * range, never markup.
 */
import { splitHeadline, type SearchHit } from '../postgres/searchBlocks.js';

export interface ClusterSearchBody {
  hits?: { hits?: { _id: string; _score: number | null; _source?: Record<string, unknown>; highlight?: Record<string, string[]> }[] };
}

export interface SearchQuery {
  text: string;
  libraryId?: string | undefined;
  limit: number;
}

/** The `_search` request body for one query. */
export function searchRequest(q: SearchQuery): Record<string, unknown> {
  return {
    size: q.limit,
    _source: ['block_id', 'book_id', 'library_id', 'version', 'block_type'],
    query: {
      bool: {
        must: [{ match: { content: { query: q.text } } }],
        filter: q.libraryId ? [{ term: { library_id: q.libraryId } }] : [],
      },
    },
    highlight: {
      pre_tags: ['\u0002'],
      post_tags: ['\u0003'],
      encoder: 'default',
      fields: { content: { number_of_fragments: 1, fragment_size: 160, no_match_size: 160 } },
    },
  };
}

const str = (v: unknown) => (typeof v === 'string' ? v : null);

/** The cluster's hits as the API's search hits. */
export function hitsFromSearch(body: ClusterSearchBody | undefined): SearchHit[] {
  return (body?.hits?.hits ?? []).map((h) => {
    const s = h._source ?? {};
    const { snippet, highlights } = splitHeadline(h.highlight?.['content']?.[0] ?? '');
    return {
      block_id: str(s['block_id']) ?? h._id,
      book_id: str(s['book_id']) ?? '',
      library_id: str(s['library_id']) ?? '',
      version: String(s['version'] ?? ''),
      block_type: str(s['block_type']),
      snippet,
      highlights,
      rank: h._score ?? 0,
    };
  });
}
