import type { Queryable } from '@loomtrace/outbox';

/** A matched word in a snippet: UTF-16 offsets (JavaScript string indices), `end` exclusive. */
export interface Highlight {
  start: number;
  end: number;
}

export interface SearchHit {
  block_id: string;
  book_id: string;
  library_id: string;
  version: string;
  block_type: string | null;
  /** Plain text, never HTML: render it as text. */
  snippet: string;
  highlights: Highlight[];
  rank: number;
}

/*
 * The snippet is plain text with match offsets, not HTML. ts_headline copies the content's text
 * around the matches as is (it drops only what its parser reads as a well-formed tag, so
 * `<img src=x onerror=alert(1)>` survives), which made its HTML output stored XSS for anyone
 * rendering it. Plain text has the same contract as a block's `content`: the consumer renders it
 * as text (textContent, a terminal), needs no unescaping outside a browser, and marks the
 * `highlights` its own way. ts_headline marks matches with STX (U+0002) and ETX (U+0003), which
 * its parser reads like any other control character: a blank between words. So that a marker
 * can only be ours, the content's own STX and ETX become SUB (U+001A, "substitute"), also a
 * control character, before ts_headline runs: the words, and so the matches, stay the same.
 */
const START = '\u0002';
const STOP = '\u0003';

/** Splits ts_headline's output (START/STOP around matches) into plain text and offsets. */
export function splitHeadline(marked: string): { snippet: string; highlights: Highlight[] } {
  let snippet = '';
  const highlights: Highlight[] = [];
  let open: number | undefined;
  let from = 0;
  for (let i = 0; i < marked.length; i++) {
    const ch = marked[i];
    if (ch !== START && ch !== STOP) continue;
    snippet += marked.slice(from, i);
    from = i + 1;
    if (ch === START) open = snippet.length;
    else if (open !== undefined) {
      if (snippet.length > open) highlights.push({ start: open, end: snippet.length });
      open = undefined;
    }
  }
  snippet += marked.slice(from);
  return { snippet, highlights };
}

/** Full-text search over the projection (never the source of truth): what users see. */
export async function searchBlocks(db: Queryable, q: { text: string; libraryId?: string | undefined; limit: number }): Promise<SearchHit[]> {
  const { rows } = await db.query<Omit<SearchHit, 'highlights'>>({
    name: 'search_blocks',
    text: `select block_id, book_id, library_id, version::text, block_type,
                  ts_headline('simple', translate(content, chr(2) || chr(3), chr(26) || chr(26)), query,
                              'StartSel=' || chr(2) || ', StopSel=' || chr(3) || ', MaxFragments=1, MaxWords=20, MinWords=5') as snippet,
                  ts_rank(tsv, query) as rank
             from search.blocks, websearch_to_tsquery('simple', $1) query
            where not deleted and tsv @@ query and ($2::uuid is null or library_id = $2)
            order by rank desc, block_id
            limit $3`,
    values: [q.text, q.libraryId ?? null, q.limit],
  });
  return rows.map((r) => ({ ...r, ...splitHeadline(r.snippet) }));
}
