import type { Queryable } from '../pool.js';
import { PRESENCE_LOCK_CLASS } from '../presence.js';

/**
 * Puts events whose lease expired, or whose worker's session is gone (its presence lock with
 * it: `worker_gone`), back in the queue, remembering who held them and for how
 * long, so that the next attempt's trace can tell the story (and link to the abandoned
 * attempt's span when its heartbeat recorded one). An event that already used its
 * `maxAttempts` is dead-lettered instead: an event that kills every worker that touches it
 * must not be reclaimed forever. Reads at most `limit` expired batch leases. Returns how many
 * events were reclaimed and how many dead-lettered.
 */
export async function reclaimExpired(
  db: Queryable,
  projection: string,
  limit: number,
  maxAttempts: number,
): Promise<{ reclaimed: number; dead: number }> {
  const { rows } = await db.query<{ reclaimed: number; dead: number }>({
    name: 'loomtrace_reclaim',
    // The lease rows are locked first, then the outbox rows (the order of every statement that
    // touches both). Events of the lease already settled are not touched; the rest go back
    // to the queue (the requeue trigger) or to the dead letter.
    text: `with expired as (
             delete from loomtrace.outbox_leases l
              where l.token = any(array(
                      select token from loomtrace.outbox_leases
                       where projection = $1
                         and (expires_at < clock_timestamp()
                              -- Its worker's session is gone (decision 0011): its presence lock with it.
                              or (presence is not null and not exists (
                                    select 1 from pg_locks k
                                     where k.locktype = 'advisory' and k.granted and k.objsubid = 2
                                       and k.database = (select oid from pg_database where datname = current_database())
                                       and k.classid = $4::int::oid and k.objid = presence::oid)))
                       order by expires_at
                       limit $2
                         for update skip locked))
             returning l.token, l.event_ids, l.owner, l.claimed_at, l.expires_at, l.renewals, l.last_renewed_at,
                       case when l.expires_at < clock_timestamp() then 'lease_expired' else 'worker_gone' end as why
           ), held as (
             select unnest(event_ids) as id, token, owner, claimed_at, expires_at, renewals, last_renewed_at, why from expired
           ), upd as (
             -- The abandoned attempt counts (attempts + 1) and its lease goes into the row
             -- (decision 0013); an event still pending is one no statement of its worker settled.
             update loomtrace.outbox o
                set state = case when o.attempts + 1 >= $3 then 'dead' else 'pending' end,
                    attempts = o.attempts + 1,
                    dead_at = case when o.attempts + 1 >= $3 then clock_timestamp() end,
                    run_at = clock_timestamp(),
                    lease_owner = held.owner,
                    claimed_at = held.claimed_at,
                    lease_expires_at = held.expires_at,
                    renewals = held.renewals,
                    last_renewed_at = held.last_renewed_at,
                    previous_owner = held.owner,
                    previous_token = held.token,
                    previous_lease_ms = (extract(epoch from clock_timestamp() - held.claimed_at) * 1000)::int,
                    reclaims = o.reclaims + 1,
                    last_reason = held.why,
                    last_error = null,
                    last_delay_ms = 0,
                    -- The abandoned attempt's span if its heartbeat recorded one; otherwise none
                    -- (an older attempt's span would be a wrong link).
                    last_attempt_span = o.lease_span,
                    lease_span = null,
                    lease_token = null
               from held
              where o.id = held.id and o.state = 'pending'
             returning o.id, o.attempts, o.state, o.previous_token, o.previous_owner, o.claimed_at,
                       o.previous_lease_ms, o.last_attempt_span, o.renewals, o.last_renewed_at, o.last_reason
           ), rec as (
             insert into loomtrace.outbox_attempts
                    (event_id, attempt, lease_token, lease_owner, claimed_at, outcome, reason, delay_ms, traceparent,
                     renewals, last_renewed_at)
             select id, attempts, previous_token, previous_owner, claimed_at,
                    case when state = 'dead' then 'dead' else 'lost' end, last_reason, previous_lease_ms,
                    last_attempt_span, renewals, last_renewed_at
               from upd
           )
           select count(*) filter (where state = 'pending')::int as reclaimed,
                  count(*) filter (where state = 'dead')::int as dead
             from upd`,
    values: [projection, limit, maxAttempts, PRESENCE_LOCK_CLASS],
  });
  return { reclaimed: rows[0]?.reclaimed ?? 0, dead: rows[0]?.dead ?? 0 };
}
