/**
 * `loomtrace check <aggregate-type> <id> [--version N]` (the change's trace from the store),
 * `check <aggregate-type> --trace <trace-id>`, or `check <aggregate-type> --file <otlp.json>
 * [--trace <trace-id>]` (captured OTLP/JSON, one export request per line as a Collector's file
 * exporter writes): which declared span or attribute is missing or out of order. Exit 0 when
 * the trace has the declared shape, 1 when not (or no trace), 2 for bad usage.
 */
import { readFileSync } from 'node:fs';
import { createPool, parseTraceparent, type Pipeline } from '@loomtrace/outbox';
import type { CliContext } from '../context.js';
import { checkTraceShape, formatShapeReport, normalizeSpans, spansFromOtlpJson, tracesWith, type CheckSpan } from '../../check/shape.js';
import { findPipeline, PipelineLookupError, validId } from '../../query/pipelines.js';
import { selectAggregateEvents } from '../../query/sql/pipeline.js';
import { selectTraceJson } from '../../query/sql/traceSpans.js';
import { flag, option, positional } from '../../text/args.js';

const USAGE = 'usage: loomtrace check <aggregate-type> (<id> [--version N] | --trace <trace-id> | --file <otlp.json> [--trace <trace-id>]) [--projection P] [--json]\n';
const fail = (msg: string, code = 2) => (process.stderr.write(msg), code);

export async function run(args: string[], ctx: CliContext): Promise<number> {
  const [type, id, extra] = positional(args, ['--version', '--projection', '--trace', '--file']);
  const file = option(args, '--file');
  const traceArg = option(args, '--trace')?.toLowerCase();
  if (!type || extra !== undefined || (!id && !file && !traceArg) || (id && file)) return fail(USAGE);
  if (traceArg !== undefined && !/^[0-9a-f]{32}$/.test(traceArg)) return fail('--trace takes a trace id (32 hex digits)\n');
  const v = option(args, '--version');
  if (v !== undefined && !/^[1-9]\d{0,15}$/.test(v)) return fail('--version must be a whole number from 1\n');
  // A file needs no database; the pool is made lazily (pg connects on the first query).
  const pool = createPool({ connectionString: ctx.databaseUrl || 'postgres://localhost/unused', max: 2, applicationName: 'loomtrace-cli' });
  try {
    let pipeline: Pipeline;
    try {
      pipeline = findPipeline(ctx.pipelines(pool), type, option(args, '--projection'));
    } catch (err) {
      if (err instanceof PipelineLookupError) return fail(`${err.message}\n`);
      throw err;
    }
    const shape = pipeline.traceShape ?? [];
    if (shape.length === 0) return fail(`the ${pipeline.aggregateType} → ${pipeline.projection} pipeline declares no trace shape\n`);
    let spans: CheckSpan[];
    let traceId = traceArg;
    if (file) {
      try {
        spans = spansFromOtlpJson(readFileSync(file, 'utf8'));
      } catch (err) {
        return fail(`cannot read ${file}: ${(err as Error).message}\n`);
      }
      if (!traceId) {
        const candidates = tracesWith(spans, shape[0]!.name);
        if (candidates.length > 1) return fail(`${candidates.length} traces in ${file} have a "${shape[0]!.name}" span: name one with --trace (${candidates.slice(0, 5).join(', ')})\n`);
        traceId = candidates[0];
      }
    } else {
      if (!ctx.databaseUrl) return fail('set DATABASE_URL (or give --file)\n');
      if (!traceId) {
        if (!validId(pipeline, id!)) return fail(`not a valid ${pipeline.labels?.aggregate ?? pipeline.aggregateType} id\n`);
        const events = await selectAggregateEvents(pool, { projection: pipeline.projection, aggregateType: pipeline.aggregateType, aggregateId: id! });
        const event = v ? events.find((e) => e.aggregate_version === v) : events[0];
        if (!event) return fail(`no outbox event for ${pipeline.aggregateType} ${id}${v ? ` version ${v}` : ''}\n`, 1);
        const ctxt = parseTraceparent(event.traceparent);
        if (!ctxt) return fail(`event ${event.id} carries no trace context (no SDK in the producer?)\n`, 1);
        traceId = ctxt.traceId;
      }
      const t = await selectTraceJson(pool, traceId, 50_000);
      spans = normalizeSpans(JSON.parse(t.spans) as Record<string, unknown>[]);
    }
    if (!traceId || !spans.some((s) => s.traceId === traceId)) return fail(`no spans of ${traceId ? `trace ${traceId}` : `a trace with a "${shape[0]!.name}" span`} ${file ? `in ${file}` : 'are stored (sampled out, not yet received, or past retention)'}\n`, 1);
    const report = checkTraceShape(spans, shape, traceId);
    process.stdout.write(flag(args, '--json') ? `${JSON.stringify(report, null, 2)}\n` : `${formatShapeReport(report)}\n`);
    return report.ok ? 0 : 1;
  } finally {
    await pool.end();
  }
}
