import type { Queryable } from '@loomtrace/outbox';

/**
 * What the waterfall's rows need of a trace, as one compact JSON text built by Postgres: a tuple
 * per span (fields in TRACE_ROW_FIELDS), times as nanoseconds from the trace's first start, no
 * trace id, scope, status message, events or dropped count (the side panel fetches those for the
 * one span it opens: selectSpanDetail). About a third of the full trace's JSON, and about half
 * the work for Postgres on a 10,000-span trace (bench/waterfallRender.ts).
 */
export const TRACE_ROW_FIELDS = ['spanId', 'parentSpanId', 'name', 'kind', 'service', 'start', 'duration', 'status', 'attributes', 'links'] as const;

export async function selectTraceRows(db: Queryable, traceId: string, maxSpans: number): Promise<{ count: number; startNs: string | null; rows: string }> {
  const { rows } = await db.query<{ count: number; start_ns: string | null; rows: string | null }>({
    name: 'explorer_trace_rows',
    text: `select count(*)::int as count, min(t0)::text as start_ns,
                  '[' || string_agg(
                    '["' || span_id || '",' || coalesce('"' || parent_span_id || '"', 'null') || ',' || to_json(name)::text ||
                    ',' || kind || ',' || to_json(service)::text || ',' || (start_ns - t0) || ',' || (end_ns - start_ns) ||
                    ',' || status_code || ',' || attributes::text || ',' || links::text || ']',
                    ',' order by start_ns, span_id) || ']' as rows
             from (select s.*, min(s.start_ns) over () as t0
                     from (select * from explorer.spans where trace_id = $1 order by start_ns, span_id limit $2) s) s`,
    values: [traceId, maxSpans],
  });
  const r = rows[0];
  return { count: r?.count ?? 0, startNs: r?.start_ns ?? null, rows: r?.rows ?? '[]' };
}
