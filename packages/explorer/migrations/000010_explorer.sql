-- The explorer's span store: its own schema, written only by the OTLP receiver.
-- Attributes, events and links are `json`, not `jsonb`: kept as received text, they cost nothing
-- to store and are returned verbatim, and the few lookups by key (`->>`) work on json as well.
create schema if not exists explorer;

create table explorer.spans (
  trace_id        text     not null,   -- 32 lowercase hex
  span_id         text     not null,   -- 16 lowercase hex
  parent_span_id  text,
  name            text     not null,
  kind            smallint not null default 0,
  service         text     not null default '',
  scope           text,
  start_ns        bigint   not null,   -- Unix epoch nanoseconds
  end_ns          bigint   not null,
  status_code     smallint not null default 0,   -- 0 unset, 1 ok, 2 error
  status_message  text,
  attributes      json     not null default '{}'::json,
  resource_id     text     not null default '',   -- explorer.resources: stored once, not per span
  events          json     not null default '[]'::json,
  links           json     not null default '[]'::json,
  dropped         integer  not null default 0,   -- attributes/events/links dropped by the sender or by our limits
  -- Lifted out of `attributes` so that search by id uses a small partial index.
  block_id        text,
  aggregate_id    text,
  message_id      text,
  request_id      text,
  library_id      text,
  received_at     timestamptz not null default now(),
  primary key (trace_id, span_id)
);

-- A process's resource (service.name, host, SDK, …) is the same for all its spans: kept once,
-- keyed by a hash of its attributes; last_seen moves (at most once a minute) while it is in use.
create table explorer.resources (
  id         text        primary key,
  attributes json        not null,
  last_seen  timestamptz not null default now()
);

create index spans_start_idx on explorer.spans (start_ns);
create index spans_block_idx on explorer.spans (block_id) where block_id is not null;
create index spans_aggregate_idx on explorer.spans (aggregate_id) where aggregate_id is not null;
create index spans_message_idx on explorer.spans (message_id) where message_id is not null;
create index spans_request_idx on explorer.spans (request_id) where request_id is not null;
create index spans_library_idx on explorer.spans (library_id) where library_id is not null;
-- Retention by age: rows arrive in received_at order, so a BRIN index is tiny and nearly free to keep.
create index spans_received_idx on explorer.spans using brin (received_at);
