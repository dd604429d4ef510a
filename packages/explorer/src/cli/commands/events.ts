/** `loomtrace events [--dead | --state S] [--limit N] [--json]`, or `events <id>` for one event's replay. */
import type { CliContext } from '../context.js';
import { createPool } from '@loomtrace/outbox';
import { listEvents, replayEvent } from '../../query/replay.js';
import { flag, option, positional } from '../../text/args.js';
import { fit, lineWidth, pad, safe } from '../../text/columns.js';

const STATES = ['pending', 'claimed', 'done', 'dead'] as const;
const why = (r: string) => (r === 'worker_gone' ? 'worker gone' : r === 'lease_expired' ? 'lease expired' : r);

export async function run(args: string[], ctx: CliContext): Promise<number> {
  const [id] = positional(args, ['--state', '--limit', '--width']);
  const width = lineWidth(args);
  const out = (lines: string[]) => process.stdout.write(`${lines.map((l) => fit(safe(l), width)).join('\n')}\n`);
  const state = flag(args, '--dead') ? 'dead' : (option(args, '--state') ?? 'dead');
  if (!STATES.includes(state as (typeof STATES)[number]) || (id !== undefined && !/^\d{1,18}$/.test(id))) {
    process.stderr.write('usage: loomtrace events [--dead | --state pending|claimed|done|dead] [--limit N] [--json] [--width N]\n       loomtrace events <event-id> [--json] [--width N]\n');
    return 2;
  }
  const limit = Math.min(1000, Math.max(1, Number(option(args, '--limit') ?? 50) || 50));
  const pool = createPool({ connectionString: ctx.databaseUrl, max: 2, applicationName: 'loomtrace-cli' });
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
        const lines = [`event ${e.id} · ${e.eventType} v${e.aggregateVersion} · ${e.state} · ${e.attempts} attempt(s)`, `${e.aggregateType} ${e.aggregateId}`];
        if (r.traceId) lines.push(`trace ${r.traceId}`);
        lines.push('', `${pad('time (UTC)', 12)} ${pad('step', 9)} ${pad('#', 3)} ${pad('worker', 12)} detail`);
        let day = '';
        for (const x of r.timeline) {
          // The date once, when it changes; then times only, so the detail keeps its room.
          if (x.at.slice(0, 10) !== day) lines.push(`${(day = x.at.slice(0, 10))}`);
          const detail = [x.reason ? why(x.reason) : '', x.detail].filter(Boolean).join(': ');
          lines.push(`${x.at.slice(11, 23)} ${pad(x.what, 9)} ${pad(x.attempt === null ? '' : String(x.attempt), 3)} ${pad(x.owner ?? '', 12)} ${detail}`);
        }
        if (e.lastError) lines.push('', `last error: ${e.lastError}`);
        out(lines);
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
    // Newest (highest id) first. The error goes on its own indented line, cut to the width.
    const lines = [`${'event'.padStart(10)} ${'ver'.padStart(4)} ${'tries'.padStart(5)} ${pad('reason', 14)} aggregate`];
    let superseded = 0;
    for (const e of events) {
      if (e.superseded) superseded++;
      lines.push(`${e.id.padStart(10)} ${String(e.aggregateVersion).padStart(4)} ${String(e.attempts).padStart(5)} ${pad(why(e.lastReason ?? ''), 14)} ${e.aggregateId}${e.superseded ? ' *' : ''}`);
      if (e.lastError || e.traceId) lines.push(`${' '.repeat(11)}${[e.eventType, e.lastError, e.traceId ? `trace ${e.traceId}` : ''].filter(Boolean).join(' · ')}`);
    }
    if (superseded) lines.push('', `* superseded: a later version reached ${events[0]!.projection}; replaying changes nothing (${superseded})`);
    out(lines);
    return 0;
  } finally {
    await pool.end();
  }
}
