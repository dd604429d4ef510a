-- Outbox upkeep: done events are deleted in batches after a retention period.
-- The purge finds them oldest first through this partial index, so its cost follows what it
-- deletes, never the size of the table.
create index outbox_done_idx on loomtrace.outbox (done_at) where state = 'done';

-- Every event is inserted, updated two or three times and later deleted: the table churns.
-- Vacuum it after 1% of its rows changed (the default is 20%), so dead tuples are reclaimed
-- while they are few and the claim's index scans stay short; leave room on each page for the
-- claim/ack updates.
alter table loomtrace.outbox set (
  autovacuum_vacuum_scale_factor = 0.01,
  autovacuum_vacuum_threshold = 1000,
  autovacuum_vacuum_insert_scale_factor = 0.05,
  autovacuum_analyze_scale_factor = 0.02,
  fillfactor = 90
);
