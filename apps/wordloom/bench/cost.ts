/**
 * Where the time of a drain goes, per event, read around the timed part of each drain:
 * statements Postgres ran for the system's database (pg_stat_statements, BEGIN/COMMIT
 * included, the bench's own progress polls excluded), WAL bytes written (pg_current_wal_lsn
 * delta: the whole server, and nothing else runs on the bench's server), and the Postgres
 * server's CPU time (every backend of the embedded server, exited ones included, from /proc).
 * Each figure is undefined where it cannot be read (DATABASE_URL without pg_stat_statements,
 * or a server that is not this machine's embedded one).
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { ROOT } from './env.js';
import { breakdownLines, snapshotBreakdown, type Breakdown } from './pgBreakdown.js';

export interface CostSnapshot {
  lsn: string;
  statements: number | undefined;
  pgCpuMs: number | undefined;
  /** With BENCH_BREAKDOWN=1 (embedded server): CPU by process kind and per-statement counters. */
  parts?: Breakdown | undefined;
}

export interface CostDelta {
  statements: number | undefined;
  walBytes: number;
  pgCpuMs: number | undefined;
  /** `since(a, events)` with BENCH_BREAKDOWN=1: Postgres's CPU by process kind and per statement, per event. */
  breakdown?: string[] | undefined;
}

const TICK_MS = 10; // USER_HZ is 100 on Linux.

/** CPU time (ms) of the embedded server: the postmaster, its live children, and its reaped ones. */
function embeddedServerCpuMs(): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(ROOT, '.loomtrace', 'bench-pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
    let ticks = 0;
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      } catch {
        continue;
      }
      // Fields after the command name (which may hold spaces): state ppid … utime(14) stime(15) cutime(16) cstime(17).
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      if (Number(d) === pid) ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      else if (ppid === pid) ticks += Number(f[11]) + Number(f[12]);
    }
    return ticks * TICK_MS;
  } catch {
    return undefined;
  }
}

export class CostProbe {
  private readonly client: pg.Client;
  private hasStatements = false;

  constructor(url: string, private readonly embedded: boolean) {
    this.client = new pg.Client({ connectionString: url, application_name: 'bench-cost-probe' });
  }

  async open(): Promise<void> {
    await this.client.connect();
    try {
      await this.client.query('create extension if not exists pg_stat_statements');
      await this.client.query('select 1 from pg_stat_statements limit 1');
      this.hasStatements = true;
    } catch {
      this.hasStatements = false;
    }
  }

  async snapshot(): Promise<CostSnapshot> {
    const { rows } = await this.client.query<{ lsn: string; n: string | null }>(
      this.hasStatements
        ? `select pg_current_wal_lsn()::text as lsn,
                  (select sum(calls) from pg_stat_statements
                    where dbid = (select oid from pg_database where datname = current_database())
                      and query not like 'select count(*)::int as n from loomtrace.outbox where%'
                      and query not like 'select count(*)::int as n from graphile_worker._private_jobs%'
                      and query not like 'select count(*)::int as n from pgboss.job where%'
                      and query not like '%pg_stat_statements%')::text as n`
        : 'select pg_current_wal_lsn()::text as lsn, null::text as n',
    );
    const parts = this.embedded && this.hasStatements && process.env['BENCH_BREAKDOWN'] === '1' ? await snapshotBreakdown(this.client) : undefined;
    return { lsn: rows[0]!.lsn, statements: rows[0]!.n === null ? undefined : Number(rows[0]!.n), pgCpuMs: this.embedded ? embeddedServerCpuMs() : undefined, parts };
  }

  async since(a: CostSnapshot, events = 0): Promise<CostDelta> {
    const b = await this.snapshot();
    const { rows } = await this.client.query<{ d: string }>('select pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::text as d', [b.lsn, a.lsn]);
    return {
      statements: a.statements !== undefined && b.statements !== undefined ? b.statements - a.statements : undefined,
      walBytes: Number(rows[0]!.d),
      pgCpuMs: a.pgCpuMs !== undefined && b.pgCpuMs !== undefined ? b.pgCpuMs - a.pgCpuMs : undefined,
      breakdown: a.parts && b.parts && events > 0 ? breakdownLines(a.parts, b.parts, events) : undefined,
    };
  }

  close(): Promise<void> {
    return this.client.end();
  }
}
