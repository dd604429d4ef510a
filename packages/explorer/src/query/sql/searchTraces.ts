import type { Queryable } from '@loomtrace/outbox';

export interface TraceFilter {
  service?: string | undefined;
  name?: string | undefined;
  /** An attribute key and the value it must have (compared as text). */
  attribute?: { key: string; value: string } | undefined;
  status?: 'error' | 'ok' | 'unset' | undefined;
  minDurationMs?: number | undefined;
  fromNs?: bigint | undefined;
  toNs?: bigint | undefined;
  /** A process span of this attempt number or later (2: retried events). */
  minAttempt?: number | undefined;
  /** A process span whose attempt ended so: done, retry, dead, lost. */
  outcome?: string | undefined;
  /** A process span that took over an abandoned lease. */
  reclaimed?: boolean | undefined;
  /** Traces of dead-lettered events (from the outbox: the reclaim sweep's dead letters have no span). */
  dead?: boolean | undefined;
  /** Leave out the worker's own traces (batch, reclaim, heartbeat roots). */
  changesOnly?: boolean | undefined;
  limit: number;
}

export interface TraceSummary {
  trace_id: string;
  start_ns: string;
  end_ns: string;
  spans: number;
  errors: number;
  /** Process attempts that failed and were retried, or lost their lease. */
  retries: number;
  max_attempt: number | null;
  version: string | null;
  services: string[];
  root_name: string;
  root_service: string;
}

/** How many of the newest matching spans a search looks at. */
const SCAN_SPANS = 10_000;

/** Attributes lifted into their own indexed columns at ingest. */
const LIFTED: Record<string, string> = {
  'loomtrace.block.id': 'block_id',
  'loomtrace.aggregate.id': 'aggregate_id',
  'messaging.message.id': 'message_id',
  'loomtrace.request.id': 'request_id',
  'loomtrace.library.id': 'library_id',
};

/**
 * Traces having at least one span that matches every filter, newest first, each summarised
 * (root span, span count, errors, services). Conditions are built from a fixed set of
 * column names; every value is a parameter.
 */
export async function searchTraces(db: Queryable, f: TraceFilter): Promise<TraceSummary[]> {
  const where: string[] = [];
  const values: unknown[] = [];
  const p = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  if (f.service) where.push(`service = ${p(f.service)}`);
  if (f.name) where.push(`name = ${p(f.name)}`);
  if (f.attribute) {
    const col = LIFTED[f.attribute.key];
    if (col) where.push(`${col} = ${p(f.attribute.value)}`);
    else where.push(`attributes ->> ${p(f.attribute.key)} = ${p(f.attribute.value)}`);
  }
  if (f.status) where.push(`status_code = ${p(f.status === 'error' ? 2 : f.status === 'ok' ? 1 : 0)}`);
  if (f.minDurationMs !== undefined) where.push(`end_ns - start_ns >= ${p(String(BigInt(Math.round(f.minDurationMs * 1e6))))}::bigint`);
  if (f.fromNs !== undefined) where.push(`start_ns >= ${p(f.fromNs.toString())}::bigint`);
  if (f.toNs !== undefined) where.push(`start_ns <= ${p(f.toNs.toString())}::bigint`);
  if (f.minAttempt !== undefined) where.push(`name like 'process %' and (case when attributes ->> 'loomtrace.attempt' ~ '^[0-9]{1,9}$' then (attributes ->> 'loomtrace.attempt')::int end) >= ${p(f.minAttempt)}`);
  if (f.outcome) where.push(`name like 'process %' and attributes ->> 'loomtrace.outcome' = ${p(f.outcome)}`);
  if (f.reclaimed) where.push(`name like 'process %' and attributes ->> 'loomtrace.reclaimed' = 'true'`);
  if (f.dead) where.push(`trace_id = any(array(select substr(traceparent, 4, 32) from loomtrace.outbox where state = 'dead' and traceparent is not null order by id desc limit 1000))`);
  // Without the worker's own traces, more are read so that the page still fills.
  const want = p(f.limit);
  const read = f.changesOnly ? p(Math.min(1000, f.limit * 4)) : want;
  const noise = `(array_agg(s.name order by (s.parent_span_id is null) desc, s.start_ns))[1] !~ '^(batch|reclaim|heartbeat) '`;
  // The newest matching spans (at most SCAN_SPANS, walked down the start-time index or an id
  // index), grouped into traces: the cost is bounded however large the store grows.
  const text = `with matched as (
      select trace_id, start_ns from explorer.spans
       ${where.length ? `where ${where.join(' and ')}` : ''}
       order by start_ns desc limit ${SCAN_SPANS}
    ), hits as (
      select trace_id, max(start_ns) as last_ns from matched
       group by trace_id order by last_ns desc limit ${read}
    )
    select s.trace_id, min(s.start_ns)::text as start_ns, max(s.end_ns)::text as end_ns, count(*)::int as spans,
           (count(*) filter (where s.status_code = 2))::int as errors,
           (count(*) filter (where s.name like 'process %' and s.attributes ->> 'loomtrace.outcome' in ('retry', 'lost')))::int as retries,
           max(case when s.name like 'process %' and s.attributes ->> 'loomtrace.attempt' ~ '^[0-9]{1,9}$' then (s.attributes ->> 'loomtrace.attempt')::int end) as max_attempt,
           max((s.attributes ->> 'loomtrace.aggregate.version')::bigint) filter (where s.attributes ->> 'loomtrace.aggregate.version' ~ '^[0-9]{1,18}$')::text as version,
           array_agg(distinct s.service) as services,
           (array_agg(s.name order by (s.parent_span_id is null) desc, s.start_ns))[1] as root_name,
           (array_agg(s.service order by (s.parent_span_id is null) desc, s.start_ns))[1] as root_service
      from hits h join explorer.spans s on s.trace_id = h.trace_id
     group by s.trace_id
     ${f.changesOnly ? `having ${noise}` : ''}
     order by max(h.last_ns) desc
     limit ${want}`;
  const { rows } = await db.query<TraceSummary>({ text, values });
  return rows;
}

/** Services seen among the most recent spans (cheap on a large store: newest 20,000 by index). */
export async function listServices(db: Queryable): Promise<string[]> {
  const { rows } = await db.query<{ service: string }>({
    name: 'explorer_services',
    text: `select distinct service from (select service from explorer.spans order by start_ns desc limit 20000) s order by service limit 100`,
  });
  return rows.map((r) => r.service);
}
