import type { Queryable } from '../pool.js';

/**
 * The heartbeat: extends the lease of events still held under this token; returns those ids.
 *
 * With `spans` (one traceparent per id, this attempt's process span), it also records them in
 * `lease_span`, so that if this worker dies, the reclaim hands them to the next attempt as
 * `last_attempt_span` and the new trace links to the abandoned one.
 *
 * A lease that expired but was not reclaimed yet is still ours (nobody else holds it); once a
 * reclaim or a newer claim changed the token, this changes nothing.
 */
/**
 * The batch's lease row first (the order every statement that touches both follows, so none
 * deadlocks with the reclaim sweep); it holds the expiry and the renewals (decision 0013).
 * Without its lease row (the sweep took it) nothing here changes: the batch is lost. The
 * events still held are those the lease row names that no statement settled yet (`pending`).
 */
const LEASE = `lease as (
             update loomtrace.outbox_leases
                set expires_at = clock_timestamp() + make_interval(secs => $3::float8 / 1000),
                    renewals = renewals + 1,
                    last_renewed_at = clock_timestamp()
              where token = $2
             returning event_ids
           )`;

export async function renewLease(
  db: Queryable,
  ids: readonly string[],
  leaseToken: string,
  leaseMs: number,
  spans?: readonly (string | null)[],
): Promise<Set<string>> {
  if (spans) {
    const { rows } = await db.query<{ id: string }>({
      name: 'loomtrace_renew_spans',
      text: `with ${LEASE}
             update loomtrace.outbox o
                set lease_span = coalesce(v.span, o.lease_span)
               from unnest($1::bigint[], $4::text[]) as v(id, span), lease l
              where o.id = v.id and o.id = any(l.event_ids) and o.state = 'pending'
             returning o.id`,
      values: [ids, leaseToken, leaseMs, spans],
    });
    return new Set(rows.map((r) => r.id));
  }
  const { rows } = await db.query<{ id: string }>({
    name: 'loomtrace_renew',
    text: `with ${LEASE}
           select o.id from loomtrace.outbox o, lease l
            where o.id = any($1::bigint[]) and o.id = any(l.event_ids) and o.state = 'pending'`,
    values: [ids, leaseToken, leaseMs],
  });
  return new Set(rows.map((r) => r.id));
}
