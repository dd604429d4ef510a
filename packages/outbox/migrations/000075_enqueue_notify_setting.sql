-- Waking the workers after the commit instead of inside the transaction (decision record 0012).
--
-- A NOTIFY in a transaction takes a lock that Postgres holds until the transaction's commit is
-- flushed to disk (it keeps notifications in commit order): every producer transaction that
-- notifies waits for the previous one's WAL flush, so they commit one flush at a time instead of
-- sharing flushes (group commit). A busy producer session can set `loomtrace.enqueue_notify` to
-- `off` (for example `-c loomtrace.enqueue_notify=off` in its connection options, as
-- `createPool({ notifyAfterCommit: true })` does) and send the wake-up itself after it commits
-- (`OutboxWaker`): a NOTIFY in a transaction that wrote nothing does not wait for a flush.
-- Unset or any other value: the trigger notifies, as before.
create or replace function loomtrace.outbox_enqueue_inserted() returns trigger language plpgsql as $$
begin
  insert into loomtrace.outbox_queue (id, projection, run_at)
  select id, projection, run_at from new_events where state = 'pending'
  on conflict (id) do nothing;
  if current_setting('loomtrace.enqueue_notify', true) is distinct from 'off' then
    perform pg_notify('loomtrace_outbox', '');
  end if;
  return null;
end $$;
