import type { Queryable } from '../pool.js';

/**
 * One claimed row, as an array (`rowMode: 'array'`: no object per row for the driver to build;
 * the worker turns it into an `OutboxEvent` once). Order of the final SELECT below.
 */
export type ClaimRow = [
  id: string,
  eventType: string,
  aggregateType: string,
  aggregateId: string,
  aggregateVersion: number,
  requestId: string | null,
  attributes: Record<string, string | number | boolean> | null,
  traceparent: string | null,
  tracestate: string | null,
  payload: Record<string, unknown>,
  attempts: number,
  previousOwner: string | null,
  previousToken: string | null,
  previousLeaseMs: number | null,
  lastReason: string | null,
  lastDelayMs: number | null,
  lastAttemptSpan: string | null,
  /** When the event became due (epoch ms): its commit, its insert, or a retry's run_at. */
  readyAtMs: number,
  /** Whether readyAtMs is the commit timestamp (first attempts on a server that tracks them). */
  fromCommit: boolean,
  claimedAtMs: number,
];

/**
 * The claim: due events of one projection, oldest first, taken out of `outbox_queue` (rows
 * another worker is claiming right now are skipped; the locked rows are deleted by the ctid the
 * locking scan found, not looked up again by id) and named by one new `outbox_leases` row
 * (fresh token, owner, expiry), in one statement. The outbox rows are only read: the statement
 * that ends the attempt writes it into them, once (decision 0013). Only an outbox row still
 * `pending` is claimed, so a stray queue row (an operator's UPDATE that took an event out of
 * `pending`) is dropped, never delivered.
 *
 * The queue wait starts at the event's commit when the server tracks commit timestamps
 * (`track_commit_timestamp=on`; the embedded Postgres does): the queue row was written by the
 * producer's transaction, so its `xmin` commit time is the event's. Otherwise at the insert,
 * and for a retry at its scheduled time.
 */
function claimSql(commitTimestamps: boolean): string {
  const committed = commitTimestamps ? 'pg_xact_commit_timestamp(q.xmin)' : 'null::timestamptz';
  return `with picked as (
      delete from loomtrace.outbox_queue q
       where q.ctid = any(array(
               select ctid from loomtrace.outbox_queue
                where projection = $1 and run_at <= clock_timestamp()
                order by run_at, id
                limit $2
                  for update skip locked))
      returning q.id, ${committed} as committed_at
    ), at as (
      -- One clock reading for the whole batch.
      select clock_timestamp() as t
    ), claimed as (
      -- The outbox rows are read, not written: the lease is the batch's lease row alone, and
      -- the attempt number is the finished attempts + 1 (decision 0013).
      select o.id, o.event_type, o.aggregate_type, o.aggregate_id, o.aggregate_version,
             o.request_id, o.attributes, o.traceparent, o.tracestate, o.payload, o.attempts + 1 as attempts, o.previous_owner,
             o.previous_token, o.previous_lease_ms, o.last_reason, o.last_delay_ms, o.last_attempt_span,
             o.run_at, o.enqueued_at, at.t as claimed_at, at.t + make_interval(secs => $5::float8 / 1000) as lease_expires_at
        from loomtrace.outbox o, at
       where o.id = any(array(select id from picked)) and o.state = 'pending'
    ), lease as (
      insert into loomtrace.outbox_leases (token, projection, owner, claimed_at, expires_at, event_ids, presence)
      select $3, $1, $4, min(claimed_at), min(lease_expires_at), array_agg(id order by id), $6::int
        from claimed
      having count(*) > 0
    )
    select c.id::text, c.event_type, c.aggregate_type, c.aggregate_id, c.aggregate_version::float8,
           c.request_id, c.attributes, c.traceparent, c.tracestate, c.payload, c.attempts, c.previous_owner,
           c.previous_token, c.previous_lease_ms, c.last_reason, c.last_delay_ms, c.last_attempt_span,
           extract(epoch from case when c.attempts > 1 then c.run_at
                                   else coalesce(p.committed_at, c.enqueued_at) end)::float8 * 1000 as ready_at_ms,
           c.attempts <= 1 and p.committed_at is not null as from_commit,
           extract(epoch from c.claimed_at)::float8 * 1000 as claimed_at_ms
      from claimed c join picked p on p.id = c.id
     order by c.id`;
}

const SQL_WITH_COMMIT_TS = claimSql(true);
const SQL_WITHOUT_COMMIT_TS = claimSql(false);

export async function claimEvents(
  db: Queryable,
  args: { projection: string; limit: number; leaseToken: string; owner: string; leaseMs: number; commitTimestamps: boolean; presence?: number | undefined },
): Promise<ClaimRow[]> {
  const { rows } = await db.query<ClaimRow>({
    name: args.commitTimestamps ? 'loomtrace_claim_ct' : 'loomtrace_claim',
    rowMode: 'array',
    text: args.commitTimestamps ? SQL_WITH_COMMIT_TS : SQL_WITHOUT_COMMIT_TS,
    values: [args.projection, args.limit, args.leaseToken, args.owner, args.leaseMs, args.presence ?? null],
  });
  return rows;
}
