-- Failure semantics: heartbeat span refs (so a reclaimed attempt links to the abandoned one)
-- and the replay of dead-lettered events (who, when, why).

-- traceparent of the process span of the attempt that holds the lease now, written by the
-- heartbeat. A reclaim moves it to last_attempt_span, so the next attempt links to the
-- abandoned one; every other way out of `claimed` clears it.
alter table loomtrace.outbox add column lease_span text;
-- How many times an operator replayed this event out of the dead letter.
alter table loomtrace.outbox add column replays integer not null default 0;

-- Listing and replaying dead letters reads only dead rows.
create index outbox_dead_idx on loomtrace.outbox (projection, dead_at) where state = 'dead';

-- One row per event replayed: who, when, why, and what the dead letter said before.
create table loomtrace.outbox_replays (
  id              bigint generated always as identity primary key,
  event_id        bigint      not null,
  replayed_at     timestamptz not null default clock_timestamp(),
  replayed_by     text        not null,
  why             text        not null,
  dead_reason     text,
  dead_error      text,
  dead_at         timestamptz,
  attempts_before integer     not null
);
create index outbox_replays_event_idx on loomtrace.outbox_replays (event_id);

-- When a retry was scheduled to run (the backoff's end), so the replay can show the designed
-- wait next to the real one: the next attempt's claim is never before it.
alter table loomtrace.outbox_attempts add column run_at timestamptz;
