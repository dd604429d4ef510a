-- The claim leaves the outbox row alone; the attempt's end is the row's only update
-- (decision record 0013).
--
-- Before: the claim HOT-updated every claimed row (state 'claimed', attempts, lease token,
-- owner, times) and the ack updated it again (state 'done', done_at): two new versions of the
-- whole row, payload included, per event. Now a claimed event's lease lives only in its batch's
-- `outbox_leases` row (token, owner, claimed_at, expiry, renewals, event ids); its outbox row
-- stays as it was (`state = 'pending'`, `attempts` = finished attempts) until the attempt ends.
-- The statement that ends it (ack, retry, dead letter, release, reclaim) deletes the lease row
-- and writes the attempt into the outbox row in one update: state, attempts, lease token and
-- owner, claimed_at, lease expiry, renewals, done_at. An event is claimed exactly while it is
-- `pending` in the outbox and named by a lease row; `loomtrace.outbox_current` derives that.

alter table loomtrace.outbox_leases
  add column renewals integer not null default 0,
  add column last_renewed_at timestamptz;

-- Batches claimed before this migration move over: their rows go back to `pending` with the
-- attempt uncounted (the claim counts it from now on: attempts + 1) and their heartbeats go to
-- the lease row. The requeue trigger is replaced first, so this does not queue them again
-- (they are still leased; the reclaim sweep hands them back if their worker is gone).
drop trigger outbox_requeue on loomtrace.outbox;

update loomtrace.outbox_leases l
   set renewals = coalesce(o.renewals, 0), last_renewed_at = o.last_renewed_at
  from (select lease_token, max(renewals) as renewals, max(last_renewed_at) as last_renewed_at
          from loomtrace.outbox where state = 'claimed' group by lease_token) o
 where o.lease_token = l.token;

update loomtrace.outbox o
   set state = 'pending', attempts = greatest(o.attempts - 1, 0)
 where o.state = 'claimed';

-- A claimed row without a lease row (none should exist) would be held by nobody: queue it.
insert into loomtrace.outbox_queue (id, projection, run_at)
select o.id, o.projection, clock_timestamp() from loomtrace.outbox o
 where o.state = 'pending'
   and not exists (select 1 from loomtrace.outbox_queue q where q.id = o.id)
   and not exists (select 1 from loomtrace.outbox_leases l where o.id = any(l.event_ids))
on conflict (id) do nothing;

-- An event re-enters the queue when it becomes pending again, or when a pending event is
-- rescheduled: the retry, the reclaim and the release end the lease and set a new run_at on a
-- row that is already `pending`. The ack, which sets `done`, and the heartbeat, which changes
-- neither column, do not call the function (the WHEN clause is checked in C).
create trigger outbox_requeue after update of state, run_at on loomtrace.outbox
  for each row when (new.state = 'pending' and (old.state is distinct from 'pending' or new.run_at is distinct from old.run_at))
  execute function loomtrace.outbox_requeue();

-- Each event with its current state, its live lease included: what the diagnosis, the replay
-- and the event lists read. A pending row named by a lease row is `claimed`, by that lease, in
-- attempt attempts + 1. (A row an operator set to `claimed` by hand reads as it is written.)
create view loomtrace.outbox_current as
select o.id, o.projection, o.event_type, o.aggregate_type, o.aggregate_id, o.aggregate_version,
       o.request_id, o.attributes, o.traceparent, o.tracestate, o.payload,
       case when l.token is null then o.state else 'claimed' end as state,
       case when l.token is null then o.attempts else o.attempts + 1 end as attempts,
       o.enqueued_at, o.run_at,
       case when l.token is null then o.lease_token else l.token end as lease_token,
       case when l.token is null then o.lease_owner else l.owner end as lease_owner,
       case when l.token is null then o.claimed_at else l.claimed_at end as claimed_at,
       case when l.token is null then o.lease_expires_at else l.expires_at end as lease_expires_at,
       case when l.token is null then o.renewals else l.renewals end as renewals,
       case when l.token is null then o.last_renewed_at else l.last_renewed_at end as last_renewed_at,
       o.lease_span, o.previous_owner, o.previous_token, o.reclaims, o.previous_lease_ms,
       o.last_reason, o.last_error, o.last_delay_ms, o.last_attempt_span, o.replays,
       o.done_at, o.dead_at
  from loomtrace.outbox o
  left join (select unnest(event_ids) as event_id, token, owner, claimed_at, expires_at, renewals, last_renewed_at
               from loomtrace.outbox_leases) l
    on l.event_id = o.id and o.state = 'pending';
