-- Lease renewals (heartbeats) of the current attempt, and of each finished attempt, so an
-- event's replay can say "renewed 3 times, last at …" even when no trace was sampled.
alter table loomtrace.outbox
  add column renewals integer not null default 0,
  add column last_renewed_at timestamptz;

alter table loomtrace.outbox_attempts
  add column renewals integer,
  add column last_renewed_at timestamptz;
