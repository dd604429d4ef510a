-- The transactional outbox (library-owned schema).
create schema if not exists loomtrace;

create table loomtrace.outbox (
  id                bigint generated always as identity primary key,
  projection        text        not null,
  event_type        text        not null,
  aggregate_type    text        not null,
  aggregate_id      text        not null,
  aggregate_version bigint      not null,
  library_id        text,
  request_id        text,
  -- W3C trace context of the producer span, so the worker continues the same trace.
  traceparent       text,
  tracestate        text,
  payload           jsonb       not null default '{}'::jsonb,
  state             text        not null default 'pending'
                    check (state in ('pending', 'claimed', 'done', 'dead')),
  attempts          integer     not null default 0,
  enqueued_at       timestamptz not null default clock_timestamp(),
  -- Earliest time the next attempt may start (backoff after a retryable failure).
  run_at            timestamptz not null default clock_timestamp(),
  -- The lease: a fresh token per claim, the owner that holds it, and when it ends.
  lease_token       uuid,
  lease_owner       text,
  claimed_at        timestamptz,
  lease_expires_at  timestamptz,
  -- What the previous attempt left behind.
  previous_owner    text,
  previous_token    uuid,
  reclaims          integer     not null default 0,
  -- How long the previous, abandoned lease had been held when it was reclaimed.
  previous_lease_ms integer,
  last_reason       text,
  last_error        text,
  last_delay_ms     integer,
  -- traceparent of the previous attempt's process span, so attempt N links to N-1.
  last_attempt_span text,
  done_at           timestamptz,
  dead_at           timestamptz
);

-- Claiming reads only pending rows of one projection, oldest due first.
create index outbox_pending_idx on loomtrace.outbox (projection, run_at, id) where state = 'pending';
-- Reclaiming finds expired leases.
create index outbox_claimed_idx on loomtrace.outbox (lease_expires_at) where state = 'claimed';
-- Diagnosis looks events up by aggregate.
create index outbox_aggregate_idx on loomtrace.outbox (aggregate_id, aggregate_version);

-- Wake workers at commit: one notification per inserting statement, not per row.
create function loomtrace.outbox_notify() returns trigger language plpgsql as $$
begin
  perform pg_notify('loomtrace_outbox', '');
  return null;
end $$;

create trigger outbox_notify after insert on loomtrace.outbox
  for each statement execute function loomtrace.outbox_notify();

-- Attempts that did not end in an ack (retries, dead letters, lost leases, reclaims):
-- the happy path writes nothing here, so the replay of an event costs only when it tells a story.
create table loomtrace.outbox_attempts (
  event_id      bigint      not null,
  attempt       integer     not null,
  lease_token   uuid,
  lease_owner   text,
  claimed_at    timestamptz,
  finished_at   timestamptz not null default clock_timestamp(),
  outcome       text        not null,   -- retry | dead | lost | reclaimed | released
  reason        text,
  error         text,
  delay_ms      integer,
  ack_rows      integer,
  traceparent   text,
  primary key (event_id, attempt, finished_at)
);
