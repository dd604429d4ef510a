import type { Queryable } from '../pool.js';

/** Which dead-lettered events a listing or a replay applies to. */
export interface DeadFilter {
  /** Only events dead-lettered with this last reason (e.g. `http_5xx`, `bad_payload`). */
  reason?: string | undefined;
  projection?: string | undefined;
  /** Only events dead for longer than this. */
  olderThanMs?: number | undefined;
  ids?: readonly string[] | undefined;
  limit: number;
}

/** The columns that name an outbox event, as rows read them (ids and the version as text). */
export interface OutboxEventKey {
  id: string;
  projection: string;
  event_type: string;
  aggregate_type: string;
  aggregate_id: string;
  aggregate_version: string;
}

export interface DeadRow extends OutboxEventKey {
  attempts: number;
  last_reason: string | null;
  last_error: string | null;
  dead_at: Date | null;
  replays: number;
  traceparent: string | null;
}

/**
 * The filter as SQL over `loomtrace.outbox o`, parameters $1..$4. Shared with the replay.
 * `dead_at is not null` lets it use the dead-letter index (the only column it names).
 */
export const DEAD_WHERE = `o.dead_at is not null and o.state = 'dead'
   and ($1::text is null or o.last_reason = $1)
   and ($2::text is null or o.projection = $2)
   and ($3::float8 is null or o.dead_at < clock_timestamp() - make_interval(secs => $3::float8 / 1000))
   and ($4::bigint[] is null or o.id = any($4::bigint[]))`;

export function deadFilterValues(f: DeadFilter): unknown[] {
  return [f.reason ?? null, f.projection ?? null, f.olderThanMs ?? null, f.ids ? [...f.ids] : null];
}

/** Dead-lettered events, oldest dead first. Never reads the payload (user content). */
export async function listDeadEvents(db: Queryable, f: DeadFilter): Promise<DeadRow[]> {
  const { rows } = await db.query<DeadRow>({
    text: `select o.id, o.projection, o.event_type, o.aggregate_type, o.aggregate_id, o.aggregate_version,
                  o.attempts, o.last_reason, o.last_error, o.dead_at, o.replays, o.traceparent
             from loomtrace.outbox o
            where ${DEAD_WHERE}
            order by o.dead_at, o.id
            limit $5`,
    values: [...deadFilterValues(f), f.limit],
  });
  return rows;
}
