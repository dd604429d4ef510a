/** `loomtrace events [--dead | --state S] [--limit N] [--json]`, or `events <id>` for one event's replay. */
import { embeddedUrl, loadConfig } from '../config.js';
import { createPool } from '../../db/pool.js';
import { listEvents, replayEvent } from '../../explorer/query/replay.js';
import { flag, option, positional } from '../../explorer/text/args.js';

const STATES = ['pending', 'claimed', 'done', 'dead'] as const;

export async function run(args: string[]): Promise<number> {
  const [id] = positional(args, ['--state', '--limit']);
  const state = flag(args, '--dead') ? 'dead' : (option(args, '--state') ?? 'dead');
  if (!STATES.includes(state as (typeof STATES)[number]) || (id !== undefined && !/^\d{1,18}$/.test(id))) {
    process.stderr.write('usage: loomtrace events [--dead | --state pending|claimed|done|dead] [--limit N] [--json]\n       loomtrace events <event-id> [--json]\n');
    return 2;
  }
  const limit = Math.min(1000, Math.max(1, Number(option(args, '--limit') ?? 50) || 50));
  const config = loadConfig();
  const pool = createPool({ connectionString: config.databaseUrl ?? embeddedUrl(config), max: 2, applicationName: 'loomtrace-cli' });
  const json = flag(args, '--json');
  try {
    if (id !== undefined) {
      const r = await replayEvent(pool, id);
      if (!r) {
        process.stderr.write(`no event ${id}\n`);
        return 1;
      }
      if (json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else {
        const e = r.event;
        const out = [`event ${e.id} · ${e.eventType} ${e.aggregateType} ${e.aggregateId} v${e.aggregateVersion} · ${e.state} · ${e.attempts} attempt(s)${r.traceId ? ` · trace ${r.traceId}` : ''}`, ''];
        for (const x of r.timeline) out.push(`  ${x.at}  ${x.what.padEnd(9)} ${x.attempt === null ? '' : `#${x.attempt}`.padEnd(4)} ${(x.owner ?? '').padEnd(20)} ${x.reason ?? ''} ${x.detail}`);
        process.stdout.write(`${out.join('\n')}\n`);
      }
      return 0;
    }
    const events = await listEvents(pool, state as (typeof STATES)[number], limit);
    if (json) {
      process.stdout.write(`${JSON.stringify({ state, events }, null, 2)}\n`);
      return 0;
    }
    if (events.length === 0) {
      process.stdout.write(`no ${state} events\n`);
      return 0;
    }
    process.stdout.write(`${'event'.padEnd(10)} ${'type'.padEnd(15)} ${'aggregate'.padEnd(38)} ${'ver'.padStart(4)} ${'tries'.padStart(5)}  last reason\n`);
    for (const e of events) {
      process.stdout.write(`${e.id.padEnd(10)} ${e.eventType.padEnd(15)} ${e.aggregateId.padEnd(38)} ${String(e.aggregateVersion).padStart(4)} ${String(e.attempts).padStart(5)}  ${e.lastReason ?? ''}${e.lastError ? `: ${e.lastError.slice(0, 80)}` : ''}\n`);
    }
    return 0;
  } finally {
    await pool.end();
  }
}
