import type { Queryable } from '@loomtrace/outbox';
import type { ResourceRow, SpanRow } from '../../otlp/normalize.js';

/**
 * Many spans in one statement: the batch travels as one JSON parameter and Postgres expands
 * it with json_to_recordset (one round trip, no per-row parameters). The batch's resources go
 * in by the same statement, once each. A span sent twice (an exporter retry) is kept once.
 */
export async function insertSpans(db: Queryable, rows: readonly SpanRow[], resources: readonly ResourceRow[]): Promise<number> {
  if (rows.length === 0) return 0;
  const res = await db.query({
    name: 'explorer_insert_spans',
    text: `with res as (
             insert into explorer.resources as r (id, attributes)
             select id, attributes from json_to_recordset($2::json) as x(id text, attributes json)
             on conflict (id) do update set last_seen = now() where r.last_seen < now() - interval '1 minute'
           )
           insert into explorer.spans
             (trace_id, span_id, parent_span_id, name, kind, service, scope, start_ns, end_ns, status_code,
              status_message, attributes, resource_id, events, links, dropped,
              block_id, aggregate_id, message_id, request_id, library_id)
           select trace_id, span_id, parent_span_id, name, kind, service, scope, start_ns, end_ns, status_code,
                  status_message, attributes, resource_id, events, links, dropped,
                  block_id, aggregate_id, message_id, request_id, library_id
             from json_to_recordset($1::json) as r(
                  trace_id text, span_id text, parent_span_id text, name text, kind smallint, service text,
                  scope text, start_ns bigint, end_ns bigint, status_code smallint, status_message text,
                  attributes json, resource_id text, events json, links json, dropped integer,
                  block_id text, aggregate_id text, message_id text, request_id text, library_id text)
           on conflict (trace_id, span_id) do nothing`,
    values: [JSON.stringify(rows), JSON.stringify(resources)],
  });
  return res.rowCount ?? 0;
}
