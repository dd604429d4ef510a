/** `loomtrace why block <id> [--version N] [--json]`: why is this block (not) in search? */
import { embeddedUrl, loadConfig } from '../config.js';
import { createPool } from '../../db/pool.js';
import { diagnoseBlock, isUuid } from '../../explorer/query/diagnosis.js';
import { flag, option, positional } from '../../explorer/text/args.js';

const MARK: Record<string, string> = { done: '✔', pending: '…', failed: '✘', skipped: '–' };

export async function run(args: string[]): Promise<number> {
  const [what, id] = positional(args, ['--version']);
  if (what !== 'block' || !id) {
    process.stderr.write('usage: loomtrace why block <block-id> [--version N] [--json]\n');
    return 2;
  }
  if (!isUuid(id)) {
    process.stderr.write(`not a block id (a UUID): ${id}\n`);
    return 2;
  }
  const v = option(args, '--version');
  const config = loadConfig();
  const pool = createPool({ connectionString: config.databaseUrl ?? embeddedUrl(config), max: 4, applicationName: 'loomtrace-cli' });
  try {
    const d = await diagnoseBlock(pool, id, v ? { version: Number(v) } : {});
    if (flag(args, '--json')) {
      process.stdout.write(`${JSON.stringify(d, null, 2)}\n`);
    } else {
      const out = [`block ${id}`, '', `  ${d.verdict}`, ''];
      for (const s of d.steps) out.push(`  ${MARK[s.status] ?? '?'} ${s.label.padEnd(28)} ${s.status.padEnd(8)} ${(s.at ?? '').padEnd(25)} ${s.detail}`);
      if (d.trace) out.push('', `  trace ${d.trace.traceId} (${d.trace.storedSpans ? `${d.trace.storedSpans} spans stored: loomtrace trace ${d.trace.traceId}` : d.trace.sampled ? 'no spans stored' : 'sampled out'})`);
      if (d.event) out.push(`  event ${d.event.id}: state ${d.event.state}, ${d.event.attempts} attempt(s)`);
      process.stdout.write(`${out.join('\n')}\n`);
    }
    return d.kind === 'visible' || d.kind === 'deleted_and_removed' || d.kind === 'superseded' ? 0 : 1;
  } finally {
    await pool.end();
  }
}
