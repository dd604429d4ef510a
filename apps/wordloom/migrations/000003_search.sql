-- The embedded search projection: written only by the worker, guarded by version.
create schema if not exists search;

create table search.blocks (
  block_id   uuid primary key,
  library_id uuid   not null,
  book_id    uuid   not null,
  version    bigint not null,
  -- A delete leaves a tombstone so that a late, older update cannot bring the block back.
  deleted    boolean not null default false,
  block_type text,
  content    text,
  tsv        tsvector generated always as (to_tsvector('simple', coalesce(content, ''))) stored,
  event_id   bigint,
  indexed_at timestamptz not null default clock_timestamp()
);
create index search_blocks_tsv_idx on search.blocks using gin (tsv);
create index search_blocks_library_idx on search.blocks (library_id) where not deleted;
