import type { Queryable } from '../../db/pool.js';

/** The heartbeat: extends the lease of events still held under this token; returns those ids. */
export async function renewLease(db: Queryable, ids: readonly string[], leaseToken: string, leaseMs: number): Promise<Set<string>> {
  const { rows } = await db.query<{ id: string }>({
    name: 'loomtrace_renew',
    text: `update loomtrace.outbox
              set lease_expires_at = clock_timestamp() + make_interval(secs => $3::float8 / 1000)
            where id = any($1::bigint[]) and lease_token = $2 and state = 'claimed'
           returning id`,
    values: [ids, leaseToken, leaseMs],
  });
  return new Set(rows.map((r) => r.id));
}
