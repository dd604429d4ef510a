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
import { fit, lineWidth, safe, wrap } from '../../text/columns.js';

const MARK: Record<string, string> = { done: '✔', pending: '…', failed: '✘', skipped: '–' };
const USAGE = 'usage: loomtrace why <aggregate-type> <id> [--projection P] [--version N] [--width N] [--json]\n';
/** A step: its mark, label, status and time; its detail after them when the line has room, else below. */
const LABEL = 28;
const STATUS = 8;
const AT = 24;

export async function run(args: string[], ctx: CliContext): Promise<number> {
  const [type, id, extra] = positional(args, ['--version', '--projection', '--width']);
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
      const width = lineWidth(args);
      const out = [`${pipeline.labels?.aggregate ?? pipeline.aggregateType} ${id} → ${pipeline.labels?.projection ?? pipeline.projection} (${d.system})`, '', ...wrap(d.verdict, width, 2), ''];
      // Each step on one line when all fit; else every step's detail under it, wrapped.
      const inline = d.steps.map((s) => `  ${MARK[s.status] ?? '?'} ${s.label.padEnd(LABEL)} ${s.status.padEnd(STATUS)} ${(s.at ?? '').padEnd(AT)} ${s.detail}`.trimEnd());
      if (inline.every((l) => Array.from(l).length <= width)) out.push(...inline);
      else for (const s of d.steps) out.push(`  ${MARK[s.status] ?? '?'} ${s.label.padEnd(LABEL)} ${s.status.padEnd(STATUS)} ${s.at ?? ''}`.trimEnd(), ...wrap(s.detail, width, 6));
      if (d.trace) {
        const t = d.trace;
        out.push('', `  trace ${t.traceId}`, ...wrap(t.storedSpans ? `${t.storedSpans} spans stored: loomtrace trace ${t.traceId}` : t.sampled ? 'no spans stored' : 'sampled out', width, 4));
      }
      if (d.event) out.push(...wrap(`event ${d.event.id}: state ${d.event.state}, ${d.event.attempts} attempt(s)`, width, 2));
      process.stdout.write(`${out.map((l) => fit(safe(l), width)).join('\n')}\n`);
    }
    return holdsVersion(d) ? 0 : 1;
  } finally {
    await pool.end();
  }
}
