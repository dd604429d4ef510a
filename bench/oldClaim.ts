// The claim as it was before the bench work, kept to compare side by side (bench/claimAb.ts).
/* eslint-disable */
export function oldClaimSql(commitTimestamps: boolean): string {
  const committed = commitTimestamps ? 'pg_xact_commit_timestamp(xmin)' : 'null::timestamptz';
  return `with picked as (
      select id, ${committed} as committed_at
        from loomtrace.outbox
       where state = 'pending' and projection = $1 and run_at <= clock_timestamp()
       order by run_at, id
       limit $2
         for update skip locked
    )
    update loomtrace.outbox o
       set state = 'claimed',
           attempts = o.attempts + 1,
           lease_token = $3,
           lease_owner = $4,
           claimed_at = clock_timestamp(),
           lease_expires_at = clock_timestamp() + make_interval(secs => $5::float8 / 1000)
      from picked
     where o.id = picked.id
    returning o.id, o.event_type, o.aggregate_type, o.aggregate_id, o.aggregate_version, o.library_id,
              o.request_id, o.traceparent, o.tracestate, o.payload, o.attempts, o.previous_owner,
              o.previous_token, o.previous_lease_ms, o.last_reason, o.last_delay_ms, o.last_attempt_span,
              extract(epoch from case when o.attempts > 1 then o.run_at
                                      else coalesce(picked.committed_at, o.enqueued_at) end)::float8 * 1000 as ready_at_ms,
              case when o.attempts > 1 then 'run_at'
                   when picked.committed_at is not null then 'commit_timestamp'
                   else 'insert_time' end as ready_source,
              extract(epoch from o.claimed_at)::float8 * 1000 as claimed_at_ms`;
}
