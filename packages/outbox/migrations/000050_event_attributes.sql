-- Span attributes of the producer's choosing (a few low-cardinality ids: a tenant, a library)
-- replace the library_id column, which named one application's concept. Events already in the
-- table keep theirs, under the key that application gave it on its spans.
alter table loomtrace.outbox add column attributes jsonb;
update loomtrace.outbox set attributes = jsonb_build_object('loomtrace.library.id', library_id) where library_id is not null;
alter table loomtrace.outbox drop column library_id;
