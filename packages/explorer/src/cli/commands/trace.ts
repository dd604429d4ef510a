/** `loomtrace trace <trace-id> [--json] [--width N]`: one trace as a terminal waterfall, N columns wide (the terminal's, $COLUMNS or 80). */
import type { CliContext } from '../context.js';
import { createPool } from '@loomtrace/outbox';
import { selectTraceJson } from '../../query/sql/traceSpans.js';
import { flag, positional } from '../../text/args.js';
import { lineWidth } from '../../text/columns.js';
import { selectTraceOutbox, type TraceOutboxEvent } from '../../query/sql/traceOutbox.js';
import { renderWaterfall, type WaterfallSpan } from '../../text/waterfall.js';

export async function run(args: string[], ctx: CliContext): Promise<number> {
  const [id] = positional(args, ['--width']);
  if (!id || !/^[0-9a-f]{32}$/i.test(id)) {
    process.stderr.write('usage: loomtrace trace <trace-id (32 hex digits)> [--json] [--width N]\n');
    return 2;
  }
  const pool = createPool({ connectionString: ctx.databaseUrl, max: 1, applicationName: 'loomtrace-cli' });
  try {
    const t = await selectTraceJson(pool, id.toLowerCase(), 50_000);
    if (t.count === 0) {
      process.stderr.write(`no spans stored for trace ${id}\n`);
      return 1;
    }
    if (flag(args, '--json')) {
      process.stdout.write(`{"traceId":"${id.toLowerCase()}","spans":${t.spans}}\n`);
      return 0;
    }
    const spans = JSON.parse(t.spans) as WaterfallSpan[];
    let outbox: TraceOutboxEvent[] = [];
    try {
      outbox = await selectTraceOutbox(pool, id.toLowerCase());
    } catch (err) {
      // A span store without the outbox beside it: the spans alone.
      if ((err as { code?: string }).code !== '42P01' && (err as { code?: string }).code !== '3F000') throw err;
    }
    process.stdout.write(`trace ${id.toLowerCase()} · ${spans.length} span(s)\n\n${renderWaterfall(spans, { lineWidth: lineWidth(args), outbox })}\n`);
    return 0;
  } finally {
    await pool.end();
  }
}
