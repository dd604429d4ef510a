/** `loomtrace trace <trace-id> [--json] [--width N]`: one trace as a terminal waterfall. */
import { embeddedUrl, loadConfig } from '../config.js';
import { createPool } from '../../db/pool.js';
import { selectTraceJson } from '../../explorer/query/sql/traceSpans.js';
import { flag, option, positional } from '../../explorer/text/args.js';
import { renderWaterfall, type WaterfallSpan } from '../../explorer/text/waterfall.js';

export async function run(args: string[]): Promise<number> {
  const [id] = positional(args, ['--width']);
  if (!id || !/^[0-9a-f]{32}$/i.test(id)) {
    process.stderr.write('usage: loomtrace trace <trace-id (32 hex digits)> [--json] [--width N]\n');
    return 2;
  }
  const config = loadConfig();
  const pool = createPool({ connectionString: config.databaseUrl ?? embeddedUrl(config), max: 1, applicationName: 'loomtrace-cli' });
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
    const width = Number(option(args, '--width') ?? (process.stdout.columns ? Math.max(30, process.stdout.columns - 64) : 50));
    process.stdout.write(`trace ${id.toLowerCase()} · ${spans.length} span(s)\n\n${renderWaterfall(spans, { width })}\n`);
    return 0;
  } finally {
    await pool.end();
  }
}
