-- The queue moves out of the event rows (decision record 0008).
--
-- Before: the claim and the ack each changed `state`, which partial indexes filter on, so both
-- updates were non-HOT: a new row version plus an entry in every index, twice per event. Now
-- a pending event has one narrow row in `outbox_queue`; the claim deletes it (cheap: no index
-- insert) and the outbox row's claim and ack touch no indexed column, so Postgres updates it
-- in place on the same page (HOT) when the page has room. Batch leases live in
-- `outbox_leases`, one row per claimed batch, which is what the reclaim sweep reads.
--
-- What stays: every event row keeps its full story (state, attempts, lease, previous owner,
-- times) for the diagnosis and the replay.

-- Due events, one narrow row each. An event is here exactly while its outbox row is pending
-- (the triggers below put it here; the claim takes it out).
create table loomtrace.outbox_queue (
  id         bigint      primary key,
  projection text        not null,
  run_at     timestamptz not null
) with (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000);
create index outbox_queue_due_idx on loomtrace.outbox_queue (projection, run_at, id);

-- One row per claimed batch: who holds it, until when, and which events.
create table loomtrace.outbox_leases (
  token      uuid        primary key,
  projection text        not null,
  owner      text        not null,
  claimed_at timestamptz not null,
  expires_at timestamptz not null,
  event_ids  bigint[]    not null
) with (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 200);
create index outbox_leases_expiry_idx on loomtrace.outbox_leases (projection, expires_at);

-- What is in flight now moves over.
insert into loomtrace.outbox_queue (id, projection, run_at)
select id, projection, run_at from loomtrace.outbox where state = 'pending';
insert into loomtrace.outbox_leases (token, projection, owner, claimed_at, expires_at, event_ids)
select lease_token, min(projection), min(lease_owner), min(claimed_at), min(lease_expires_at), array_agg(id order by id)
  from loomtrace.outbox where state = 'claimed' and lease_token is not null
 group by lease_token;

-- New events enter the queue in the producer's transaction, whatever statement inserted them
-- (one trigger call per statement, set-based), and wake the workers at commit.
drop trigger outbox_notify on loomtrace.outbox;
create or replace function loomtrace.outbox_enqueue_inserted() returns trigger language plpgsql as $$
begin
  insert into loomtrace.outbox_queue (id, projection, run_at)
  select id, projection, run_at from new_events where state = 'pending'
  on conflict (id) do nothing;
  perform pg_notify('loomtrace_outbox', '');
  return null;
end $$;
create trigger outbox_enqueue_inserted after insert on loomtrace.outbox
  referencing new table as new_events
  for each statement execute function loomtrace.outbox_enqueue_inserted();

-- An event that becomes pending again (retry, reclaim, hand-over, replay, or an operator's own
-- UPDATE) re-enters the queue at its run_at. The WHEN clause is checked in C: the claim and
-- the ack, which never set `pending`, do not call the function.
create or replace function loomtrace.outbox_requeue() returns trigger language plpgsql as $$
begin
  insert into loomtrace.outbox_queue (id, projection, run_at)
  values (new.id, new.projection, new.run_at)
  on conflict (id) do update set run_at = excluded.run_at, projection = excluded.projection;
  return null;
end $$;
create trigger outbox_requeue after update of state on loomtrace.outbox
  for each row when (new.state = 'pending' and old.state is distinct from 'pending')
  execute function loomtrace.outbox_requeue();

-- No index may name a column the claim or the ack changes (state, lease, done_at), or those
-- updates stop being HOT. Dead letters are found by dead_at (set only when dead-lettered);
-- the purge and the health series find acked events by done_at through a BRIN index, which
-- Postgres 16+ keeps without breaking HOT (a summarizing index). On older servers everything
-- works; the ack is then a non-HOT update, as before.
drop index loomtrace.outbox_pending_idx;
drop index loomtrace.outbox_claimed_idx;
drop index loomtrace.outbox_done_idx;
drop index loomtrace.outbox_dead_idx;
create index outbox_dead_idx on loomtrace.outbox (dead_at, id) where dead_at is not null;
create index outbox_done_brin on loomtrace.outbox using brin (done_at) with (autosummarize = on);

-- Room on every page for the claim's and the ack's new row versions (HOT needs the same page);
-- applies to pages written from now on.
alter table loomtrace.outbox set (fillfactor = 50);
