-- A worker's presence: each worker process holds a session-level advisory lock
-- (pg_advisory_lock(<loomtrace key>, presence)) on a connection of its own, and every batch it
-- claims records that key in its lease row. When the process dies, Postgres ends its session
-- and drops the lock: the reclaim sweep sees a lease whose holder is gone and takes it over at
-- once, instead of waiting for the lease to expire. A live but slow worker keeps its lock, so
-- its lease is only ever taken when it expires. NULL: no presence (a transaction-pooling
-- PgBouncer, where session locks mean nothing): the lease's expiry alone decides, as before.
alter table loomtrace.outbox_leases add column presence integer;
