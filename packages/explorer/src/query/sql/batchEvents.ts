import type { Queryable } from '@loomtrace/outbox';

/**
 * The event traces a batch trace served: the process spans that share a batch span's lease
 * token, looked for only within the batch's own time window (the start-time index bounds the
 * read however large the store is), at most `limit`.
 */
export interface BatchEventRow {
  trace_id: string;
  span_id: string;
  message_id: string | null;
  outcome: string | null;
}
export async function selectBatchEvents(db: Queryable, traceId: string, limit: number): Promise<BatchEventRow[]> {
  const { rows } = await db.query<BatchEventRow>({
    name: 'explorer_batch_events',
    text: `select p.trace_id, p.span_id, p.message_id, p.attributes ->> 'loomtrace.outcome' as outcome
             from explorer.spans b
             join explorer.spans p
               on p.start_ns between b.start_ns and b.end_ns
              and p.name = 'process ' || substr(b.name, 7)
              and p.attributes ->> 'loomtrace.lease.token' = b.attributes ->> 'loomtrace.lease.token'
            where b.trace_id = $1 and b.parent_span_id is null and b.name like 'batch %'
              and b.attributes ->> 'loomtrace.lease.token' is not null
            order by p.start_ns
            limit $2`,
    values: [traceId, limit],
  });
  return rows;
}
