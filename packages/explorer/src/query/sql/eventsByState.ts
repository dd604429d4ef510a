import type { Queryable, OutboxEventKey } from '@loomtrace/outbox';

/**
 * Events in one state, newest id first: the dead letters page and `loomtrace events`. The id is
 * ordered as a number (an output column `id::text` would shadow it and sort 259 < 23 < 214 as
 * text, so the order names the table's column). `superseded`: a later version of the same
 * aggregate reached the same projection, so replaying this one changes nothing.
 */
export interface EventListRow extends OutboxEventKey {
  state: string;
  attempts: number;
  reclaims: number;
  enqueued_at: Date;
  dead_at: Date | null;
  done_at: Date | null;
  last_reason: string | null;
  last_error: string | null;
  previous_owner: string | null;
  trace_id: string | null;
  superseded: boolean;
}

export async function selectEventList(db: Queryable, state: string, limit: number): Promise<EventListRow[]> {
  const { rows } = await db.query<EventListRow>({
    name: 'explorer_event_list',
    text: `select o.id::text as id, o.projection, o.event_type, o.aggregate_type, o.aggregate_id, o.aggregate_version::text as aggregate_version,
                  o.state, o.attempts, o.reclaims, o.enqueued_at, o.dead_at, o.done_at, o.last_reason, left(o.last_error, 500) as last_error,
                  o.previous_owner,
                  case when o.traceparent ~ '^00-[0-9a-f]{32}-' then substr(o.traceparent, 4, 32) end as trace_id,
                  exists (select 1 from loomtrace.outbox n
                           where n.aggregate_id = o.aggregate_id and n.projection = o.projection
                             and n.aggregate_version > o.aggregate_version and n.state = 'done') as superseded
             from loomtrace.outbox_current o
            where o.state = $1
            order by o.id desc
            limit $2`,
    values: [state, limit],
  });
  return rows;
}
