import type { EnqueueClient, EnqueueInput } from '../types.js';
import type { StoredContext } from '../tracing/carrier.js';

/** Inserts many events with one statement (bulk producers, benchmarks); returns their ids in order. */
export async function insertEvents(db: EnqueueClient, events: readonly EnqueueInput[], ctx: readonly StoredContext[]): Promise<string[]> {
  const { rows } = (await db.query({
    text: `insert into loomtrace.outbox
             (projection, event_type, aggregate_type, aggregate_id, aggregate_version,
              request_id, attributes, traceparent, tracestate, payload)
           select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[],
                                $6::text[], $7::jsonb[], $8::text[], $9::text[], $10::jsonb[])
           returning id`,
    values: [
      events.map((e) => e.projection),
      events.map((e) => e.eventType),
      events.map((e) => e.aggregateType),
      events.map((e) => e.aggregateId),
      events.map((e) => e.aggregateVersion),
      events.map((e) => e.requestId ?? null),
      events.map((e) => (e.attributes ? JSON.stringify(e.attributes) : null)),
      ctx.map((c) => c.traceparent),
      ctx.map((c) => c.tracestate),
      events.map((e) => JSON.stringify(e.payload)),
    ],
  })) as { rows: { id: string }[] };
  return rows.map((r) => String(r.id));
}
