/**
 * `loomtrace replay`: lists dead-lettered events and puts them back in the queue.
 *
 *   loomtrace replay list [filters]                  what is dead-lettered, and why
 *   loomtrace replay --why "fixed the mapping" [filters] [--dry-run] [--by NAME]
 *
 * filters: --reason R (last reason, e.g. http_5xx, bad_payload), --projection P,
 *          --older-than 10m (ms|s|m|h|d), --id N (repeatable or comma-separated), --limit N
 *
 * Every replay records who (`--by`, default user@host), when and why in
 * `loomtrace.outbox_replays`; the event keeps its traceparent, so the replayed attempt
 * continues the original trace (its span carries `loomtrace.replayed=true`).
 * DATABASE_URL, or the embedded Postgres of `npm start`.
 */
import { hostname, userInfo } from 'node:os';
import type { CliContext } from '../context.js';
import { createPool } from '@loomtrace/outbox';
import { listDeadEvents, type DeadFilter, type DeadRow } from '@loomtrace/outbox';
import { replayDeadEvents } from '@loomtrace/outbox';
import { fit, lineWidth, safe } from '../../text/columns.js';

export interface ReplayArgs {
  list: boolean;
  dryRun: boolean;
  json: boolean;
  by: string;
  why: string | undefined;
  filter: DeadFilter;
}

const USAGE = `usage: loomtrace replay list [filters] [--json]
       loomtrace replay --why TEXT [filters] [--dry-run] [--by NAME] [--json]
filters: --reason R  --projection P  --older-than DURATION (e.g. 90s, 10m, 2h)  --id N[,N…]  --limit N (default 1000)`;

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function parseDuration(raw: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(raw.trim());
  if (!m) throw new Error(`--older-than: "${raw}" is not a duration like 90s, 10m, 2h or 1d`);
  return Math.round(Number(m[1]) * UNITS[m[2]!]!);
}

function defaultBy(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return `${user}@${hostname()}`;
}

/** Parses the command line once, with precise errors. */
export function parseReplayArgs(argv: readonly string[]): ReplayArgs {
  const out: ReplayArgs = { list: false, dryRun: false, json: false, by: defaultBy(), why: undefined, filter: { limit: 1_000 } };
  const ids: string[] = [];
  const args = [...argv];
  if (args[0] === 'list') {
    out.list = true;
    args.shift();
  }
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--dry-run':
        out.dryRun = true;
        break;
      case '--json':
        out.json = true;
        break;
      case '--reason':
        out.filter.reason = value();
        break;
      case '--projection':
        out.filter.projection = value();
        break;
      case '--older-than':
        out.filter.olderThanMs = parseDuration(value());
        break;
      case '--id':
        for (const id of value().split(',')) {
          if (!/^\d{1,18}$/.test(id.trim())) throw new Error(`--id: "${id}" is not an event id`);
          ids.push(id.trim());
        }
        break;
      case '--limit': {
        const v = value();
        const n = Number(v);
        if (!Number.isInteger(n) || n < 1 || n > 1_000_000) throw new Error(`--limit must be an integer from 1 to 1000000, got "${v}"`);
        out.filter.limit = n;
        break;
      }
      case '--by':
        out.by = value().slice(0, 200);
        break;
      case '--why':
        out.why = value().slice(0, 500);
        break;
      default:
        throw new Error(`unknown argument "${a}"`);
    }
  }
  if (ids.length) out.filter.ids = ids;
  if (!out.list && !out.dryRun && !out.why?.trim()) throw new Error('a replay needs --why "…" (recorded with who and when); use --dry-run or `replay list` to look first');
  return out;
}

/** The dead letters as a table, the useful columns first, every line cut to the terminal's width. */
function table(rows: readonly DeadRow[]): string {
  const head = ['id', 'ver', 'tries', 'reason', 'aggregate', 'dead since (UTC)', 'replays', 'event', 'projection'];
  const body = rows.map((r) => [
    r.id,
    r.aggregate_version,
    String(r.attempts),
    r.last_reason ?? '',
    r.aggregate_id,
    r.dead_at ? r.dead_at.toISOString().slice(5, 19).replace('T', ' ') : '',
    String(r.replays),
    r.event_type,
    r.projection,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const width = lineWidth([]);
  return [head, ...body].map((cols) => fit(safe(cols.map((c, i) => c.padEnd(widths[i]!)).join(' ').trimEnd()), width)).join('\n');
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  let args: ReplayArgs;
  try {
    args = parseReplayArgs(argv);
  } catch (err) {
    process.stderr.write(`loomtrace replay: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  const pool = createPool({ connectionString: ctx.databaseUrl, max: 1, applicationName: 'loomtrace-replay' });
  try {
    if (args.list || args.dryRun) {
      const rows = await listDeadEvents(pool, args.filter);
      if (args.json) process.stdout.write(`${JSON.stringify({ dryRun: args.dryRun, events: rows })}\n`);
      else {
        process.stdout.write(rows.length ? `${table(rows)}\n` : 'no dead-lettered events match\n');
        if (args.dryRun) process.stdout.write(`dry run: ${rows.length} event(s) would be replayed\n`);
      }
      return 0;
    }
    const ids = await replayDeadEvents(pool, args.filter, args.by, args.why!);
    if (args.json) process.stdout.write(`${JSON.stringify({ replayed: ids, by: args.by, why: args.why })}\n`);
    else process.stdout.write(`replayed ${ids.length} event(s) as ${args.by}${ids.length ? `: ${ids.join(', ')}` : ''}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`loomtrace replay: ${(err as Error).message.split('\n', 1)[0]}\n`);
    return 1;
  } finally {
    await pool.end().catch(() => undefined);
  }
}
