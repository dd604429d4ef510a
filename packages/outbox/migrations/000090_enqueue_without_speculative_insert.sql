-- A new event's queue row is a plain insert (decision record 0019).
--
-- Before: the enqueue trigger inserted the statement's new events into `outbox_queue` with
-- `on conflict (id) do nothing`. That is a speculative insertion for every event: a
-- speculative-insertion lock taken and released, a probe of the queue's primary key before the
-- insert, and a HEAP_CONFIRM WAL record after it (1 of the 8 WAL records of a Wordloom PATCH).
-- A new event's id comes from the outbox's identity column, so its queue row cannot already
-- exist: only a queue row written by hand for an id not used yet could collide, and that insert
-- now fails with a unique violation instead of sharing the hand-written row. The requeue
-- trigger keeps its upsert (an event that becomes pending again may still have its queue row).
create or replace function loomtrace.outbox_enqueue_inserted() returns trigger language plpgsql as $$
begin
  insert into loomtrace.outbox_queue (id, projection, run_at)
  select id, projection, run_at from new_events where state = 'pending';
  if current_setting('loomtrace.enqueue_notify', true) is distinct from 'off' then
    perform pg_notify('loomtrace_outbox', '');
  end if;
  return null;
end $$;
