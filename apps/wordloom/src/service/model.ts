export interface LibraryRow {
  id: string;
  name: string;
  created_at: Date;
}

export interface BookRow {
  id: string;
  library_id: string;
  title: string;
  created_at: Date;
}

export interface BlockRow {
  id: string;
  book_id: string;
  library_id: string;
  block_type: string;
  content: string;
  position: number;
  version: string;
  created_at: Date;
  updated_at: Date;
}

export const BLOCK_COLUMNS = 'id, book_id, library_id, block_type, content, position, version, created_at, updated_at';

export const BLOCK_TYPES = ['text', 'heading', 'code', 'quote', 'list', 'todo'] as const;

/** Longest block content accepted, in characters. Longer content gets 422 CONTENT_TOO_LONG. */
export const MAX_CONTENT_CHARS = 65_536;

/** The projection block events go to. */
export const SEARCH_PROJECTION = 'search';

export function blockJson(b: BlockRow) {
  return {
    id: b.id,
    book_id: b.book_id,
    library_id: b.library_id,
    block_type: b.block_type,
    content: b.content,
    position: b.position,
    version: Number(b.version),
    created_at: b.created_at,
    updated_at: b.updated_at,
  };
}
