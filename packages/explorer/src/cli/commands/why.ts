/**
 * `loomtrace why <aggregate-type> <id> [--projection P] [--version N] [--json]`: why is this
 * aggregate (not) in its projection? Exit 0 when the projection holds the asked version (or
 * its removal, or a newer one), 1 otherwise, 2 for bad usage.
 */
import type { CliContext } from '../context.js';
import { createPool } from '@loomtrace/outbox';
import { diagnose, holdsVersion } from '../../query/diagnosis.js';
import { validId } from '../../query/pipelines.js';
import { namedPipeline } from '../namedPipeline.js';
import { flag, option, positional } from '../../text/args.js';

const MARK: Record<string, string> = { done: '✔', pending: '…', failed: '✘', skipped: '–' };
const USAGE = 'usage: loomtrace why <aggregate-type> <id> [--projection P] [--version N] [--json]\n';

export async function run(args: string[], ctx: CliContext): Promise<number> {
  const [type, id, extra] = positional(args, ['--version', '--projection']);
  if (!type || !id || extra !== undefined) {
    process.stderr.write(USAGE);
    return 2;
  }
  const v = option(args, '--version');
  if (v !== undefined && (!/^\d{1,16}$/.test(v) || Number(v) < 1 || Number(v) > Number.MAX_SAFE_INTEGER)) {
    process.stderr.write(`--version must be a whole number from 1, got ${JSON.stringify(v.slice(0, 40))}\n`);
    return 2;
  }
  const pool = createPool({ connectionString: ctx.databaseUrl, max: 4, applicationName: 'loomtrace-cli' });
  try {
    const pipeline = namedPipeline(ctx, pool, type, option(args, '--projection'));
    if (!pipeline) return 2;
    if (!validId(pipeline, id)) {
      process.stderr.write(`not a valid ${pipeline.labels?.aggregate ?? pipeline.aggregateType} id: ${JSON.stringify(id.slice(0, 80))}\n`);
      return 2;
    }
    const d = await diagnose(pool, pipeline, id, v ? { version: Number(v) } : {});
    if (flag(args, '--json')) {
      process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
    } else {
      const out = [`${pipeline.labels?.aggregate ?? pipeline.aggregateType} ${id} → ${pipeline.labels?.projection ?? pipeline.projection} (${d.system})`, '', `  ${d.verdict}`, ''];
      for (const s of d.steps) out.push(`  ${MARK[s.status] ?? '?'} ${s.label.padEnd(28)} ${s.status.padEnd(8)} ${(s.at ?? '').padEnd(25)} ${s.detail}`);
      if (d.trace) out.push('', `  trace ${d.trace.traceId} (${d.trace.storedSpans ? `${d.trace.storedSpans} spans stored: loomtrace trace ${d.trace.traceId}` : d.trace.sampled ? 'no spans stored' : 'sampled out'})`);
      if (d.event) out.push(`  event ${d.event.id}: state ${d.event.state}, ${d.event.attempts} attempt(s)`);
      process.stdout.write(`${out.join('\n')}\n`);
    }
    return holdsVersion(d) ? 0 : 1;
  } finally {
    await pool.end();
  }
}
