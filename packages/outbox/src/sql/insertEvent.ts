import type { EnqueueClient, EnqueueInput } from '../types.js';
import type { StoredContext } from '../tracing/carrier.js';

/** Inserts one event in the caller's transaction; returns its id. */
export async function insertEvent(db: EnqueueClient, e: EnqueueInput, ctx: StoredContext): Promise<string> {
  const { rows } = (await db.query({
    name: 'loomtrace_insert_event',
    text: `insert into loomtrace.outbox
             (projection, event_type, aggregate_type, aggregate_id, aggregate_version,
              request_id, attributes, traceparent, tracestate, payload)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           returning id`,
    values: [
      e.projection,
      e.eventType,
      e.aggregateType,
      e.aggregateId,
      e.aggregateVersion,
      e.requestId ?? null,
      e.attributes ?? null,
      ctx.traceparent,
      ctx.tracestate,
      e.payload,
    ],
  })) as { rows: { id: string }[] };
  return String(rows[0]!.id);
}
