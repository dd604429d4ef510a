import type { Queryable, OutboxEventKey } from '@loomtrace/outbox';

/**
 * Reads of the outbox that the diagnosis and the replay join (the source of truth and the
 * projection are read through the pipeline's declaration). Read-only; each statement is named for the pg instrumentation.
 * An event's current state, its live lease included, is read from the view `loomtrace.outbox_current`
 * (a claimed event's lease lives in its batch's lease row until the attempt ends: decision 0013).
 */

export interface OutboxRow extends OutboxEventKey {
  library_id: string | null;
  request_id: string | null;
  traceparent: string | null;
  state: 'pending' | 'claimed' | 'done' | 'dead';
  attempts: number;
  enqueued_at: Date;
  run_at: Date;
  lease_owner: string | null;
  claimed_at: Date | null;
  lease_expires_at: Date | null;
  previous_owner: string | null;
  reclaims: number;
  last_reason: string | null;
  last_error: string | null;
  last_delay_ms: number | null;
  done_at: Date | null;
  /** Lease renewals (heartbeats) of the current attempt. */
  renewals: number;
  last_renewed_at: Date | null;
  dead_at: Date | null;
  now: Date;
}
const OUTBOX_COLUMNS = `id::text, projection, event_type, aggregate_type, aggregate_id, aggregate_version::text, attributes->>'loomtrace.library.id' as library_id,
  request_id, traceparent, state, attempts, enqueued_at, run_at, lease_owner, claimed_at, lease_expires_at, previous_owner,
  reclaims, last_reason, last_error, last_delay_ms, done_at, dead_at, renewals, last_renewed_at, clock_timestamp() as now`;

/** The newest events of one aggregate for one projection, newest version first. */
export async function selectAggregateEvents(db: Queryable, q: { projection: string; aggregateType: string; aggregateId: string }, limit = 10): Promise<OutboxRow[]> {
  const { rows } = await db.query<OutboxRow>({
    name: 'explorer_aggregate_events',
    text: `select ${OUTBOX_COLUMNS} from loomtrace.outbox_current
            where aggregate_id = $1 and projection = $2 and aggregate_type = $3
            order by aggregate_version desc, id desc limit $4`,
    values: [q.aggregateId, q.projection, q.aggregateType, limit],
  });
  return rows;
}

export async function selectEvent(db: Queryable, id: string): Promise<OutboxRow | undefined> {
  const { rows } = await db.query<OutboxRow>({
    name: 'explorer_event',
    text: `select ${OUTBOX_COLUMNS} from loomtrace.outbox_current where id = $1::bigint`,
    values: [id],
  });
  return rows[0];
}

export async function selectEventsByState(db: Queryable, state: string, limit: number): Promise<OutboxRow[]> {
  const { rows } = await db.query<OutboxRow>({
    name: 'explorer_events_by_state',
    text: `select ${OUTBOX_COLUMNS} from loomtrace.outbox_current where state = $1 order by id desc limit $2`,
    values: [state, limit],
  });
  return rows;
}

export interface AttemptRow {
  attempt: number;
  lease_token: string | null;
  lease_owner: string | null;
  claimed_at: Date | null;
  finished_at: Date;
  outcome: string;
  reason: string | null;
  error: string | null;
  delay_ms: number | null;
  ack_rows: number | null;
  traceparent: string | null;
  renewals: number | null;
  last_renewed_at: Date | null;
}
export async function selectAttempts(db: Queryable, eventId: string): Promise<AttemptRow[]> {
  const { rows } = await db.query<AttemptRow>({
    name: 'explorer_attempts',
    text: `select attempt, lease_token::text, lease_owner, claimed_at, finished_at, outcome, reason, error, delay_ms, ack_rows, traceparent,
                  renewals, last_renewed_at
             from loomtrace.outbox_attempts where event_id = $1::bigint order by finished_at, attempt`,
    values: [eventId],
  });
  return rows;
}

export interface QueueState {
  depth: number;
  ahead: number;
  oldest_pending_s: number | null;
  workers: number;
}
/** Queue depth for one projection, events queued before `eventId`, and connected workers. */
export async function selectQueueState(db: Queryable, projection: string, eventId: string): Promise<QueueState> {
  const { rows } = await db.query<QueueState>({
    name: 'explorer_queue_state',
    // Each part reads the queue table or the batch leases, so the answer costs the queue's
    // size, not the outbox's history. Ids follow enqueue order.
    text: `select (select count(*)::int from loomtrace.outbox_queue where projection = $1)
                + (select coalesce(sum(cardinality(event_ids)), 0)::int from loomtrace.outbox_leases where projection = $1) as depth,
                  (select count(*)::int from loomtrace.outbox_queue where projection = $1 and id < $2::bigint) as ahead,
                  (select extract(epoch from clock_timestamp() - enqueued_at)::float8 from loomtrace.outbox
                    where id = (select min(id) from loomtrace.outbox_queue where projection = $1)) as oldest_pending_s,
                  (select count(*)::int from pg_stat_activity
                    where datname = current_database() and application_name like '%worker%') as workers`,
    values: [projection, eventId],
  });
  return rows[0]!;
}
