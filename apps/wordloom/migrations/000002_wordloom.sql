-- Wordloom's source of truth: libraries, books, blocks.
create schema if not exists wordloom;

create table wordloom.libraries (
  id         uuid primary key default gen_random_uuid(),
  name       text not null,
  created_at timestamptz not null default now()
);

create table wordloom.books (
  id         uuid primary key default gen_random_uuid(),
  library_id uuid not null references wordloom.libraries(id),
  title      text not null,
  created_at timestamptz not null default now()
);
create index books_library_idx on wordloom.books (library_id);

create table wordloom.blocks (
  id         uuid primary key default gen_random_uuid(),
  book_id    uuid not null references wordloom.books(id),
  library_id uuid not null references wordloom.libraries(id),
  block_type text not null,
  content    text not null,
  position   integer not null default 0,
  -- Rises with every change, deletes included; the projection's version guard compares it.
  version    bigint not null default 1,
  deleted_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index blocks_book_idx on wordloom.blocks (book_id, position) where deleted_at is null;
