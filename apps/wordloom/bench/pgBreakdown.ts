/**
 * Where Postgres's CPU goes (issue 14, item 3): around a timed part, the CPU of each kind of
 * embedded-server process (client backends, WAL writer, checkpointer, background writer,
 * autovacuum, exited children such as autovacuum workers) read from /proc by process title, and
 * per statement of the bench's database `pg_stat_statements`' execution time, WAL bytes and
 * records, and buffers hit/dirtied. Used by pgCostAb.ts; nothing here is under test.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import { ROOT, fmt } from './env.js';

const TICK_MS = 10; // USER_HZ is 100 on Linux.

/** CPU ms of the embedded server's processes by kind (`exited` = reaped children, from the postmaster's cutime). */
export function serverCpuByKind(): Map<string, number> {
  const out = new Map<string, number>();
  const add = (k: string, ms: number) => out.set(k, (out.get(k) ?? 0) + ms);
  const pid = Number(readFileSync(path.join(ROOT, '.loomtrace', 'bench-pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let stat: string;
    let title: string;
    try {
      stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      title = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
    } catch {
      continue;
    }
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const own = (Number(f[11]) + Number(f[12])) * TICK_MS;
    if (Number(d) === pid) {
      add('postmaster', own);
      add('exited', (Number(f[13]) + Number(f[14])) * TICK_MS);
    } else if (Number(f[1]) === pid) {
      add(kindOf(title), own);
    }
  }
  return out;
}

function kindOf(title: string): string {
  const t = title.replace(/^postgres:\s*/, '');
  for (const k of ['walwriter', 'checkpointer', 'background writer', 'autovacuum launcher', 'autovacuum worker', 'logical replication', 'walsummarizer', 'io worker']) {
    if (t.includes(k)) return k;
  }
  if (t.includes('bench-cost-probe') || t.includes('bench-pgcost-probe')) return 'probe backends';
  return 'client backends';
}

export interface StatementStat {
  query: string;
  calls: number;
  execMs: number;
  walBytes: number;
  walRecords: number;
  walFpi: number;
  hit: number;
  dirtied: number;
}

/** Per-statement counters of the current database, keyed by queryid. */
export async function statementStats(c: pg.Client): Promise<Map<string, StatementStat>> {
  const { rows } = await c.query<{ id: string; query: string; calls: string; ms: number; wb: string; wr: string; fpi: string; hit: string; dirtied: string }>(
    `select queryid::text as id, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) as query, calls::text, total_exec_time as ms,
            wal_bytes::text as wb, wal_records::text as wr, wal_fpi::text as fpi, shared_blks_hit::text as hit, shared_blks_dirtied::text as dirtied
       from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())`,
  );
  return new Map(
    rows.map((r) => [
      r.id,
      { query: r.query, calls: Number(r.calls), execMs: r.ms, walBytes: Number(r.wb), walRecords: Number(r.wr), walFpi: Number(r.fpi), hit: Number(r.hit), dirtied: Number(r.dirtied) },
    ]),
  );
}

export interface Breakdown {
  cpu: Map<string, number>;
  statements: Map<string, StatementStat>;
  /** Per table of the database: `autovacuum_count autoanalyze_count`. */
  autovacuum: Map<string, [number, number]>;
}

async function autovacuumCounts(c: pg.Client): Promise<Map<string, [number, number]>> {
  const { rows } = await c.query<{ t: string; v: string; a: string }>(
    "select schemaname || '.' || relname as t, autovacuum_count::text as v, autoanalyze_count::text as a from pg_stat_user_tables",
  );
  return new Map(rows.map((r) => [r.t, [Number(r.v), Number(r.a)]]));
}

export async function snapshotBreakdown(c: pg.Client): Promise<Breakdown> {
  return { cpu: serverCpuByKind(), statements: await statementStats(c), autovacuum: await autovacuumCounts(c) };
}

/** The difference b − a, per event: CPU µs by process kind, and per statement µs, WAL and buffers. */
export function breakdownLines(a: Breakdown, b: Breakdown, events: number): string[] {
  const lines: string[] = [];
  const kinds = [...new Set([...a.cpu.keys(), ...b.cpu.keys()])].sort();
  const cpu = kinds
    .map((k) => [k, ((b.cpu.get(k) ?? 0) - (a.cpu.get(k) ?? 0)) * 1000 / events] as const)
    .filter(([, us]) => us > 0)
    .map(([k, us]) => `${k} ${fmt(us, 1)}`);
  lines.push(`    Postgres CPU µs/event by process: ${cpu.join(', ') || 'none'}`);
  const av = [...b.autovacuum]
    .map(([t, [v, an]]) => [t, v - (a.autovacuum.get(t)?.[0] ?? 0), an - (a.autovacuum.get(t)?.[1] ?? 0)] as const)
    .filter(([, v, an]) => v > 0 || an > 0)
    .map(([t, v, an]) => `${t} ${v} vacuum(s), ${an} analyze(s)`);
  if (av.length) lines.push(`    autovacuum meanwhile: ${av.join('; ')}`);
  for (const [id, s] of b.statements) {
    const p = a.statements.get(id);
    const calls = s.calls - (p?.calls ?? 0);
    if (calls <= 0) continue;
    const per = (x: number, y: number | undefined) => (x - (y ?? 0)) / events;
    if (/pg_stat_statements|^truncate|^checkpoint|^analyze|^insert into loomtrace.outbox /i.test(s.query)) continue;
    lines.push(
      `    ${String(calls).padStart(5)} × ${s.query.padEnd(70)} exec ${fmt(per(s.execMs, p?.execMs) * 1000, 1)} µs/event, WAL ${fmt(per(s.walBytes, p?.walBytes))} B` +
        ` ${fmt(per(s.walRecords, p?.walRecords), 2)} rec ${fmt(per(s.walFpi, p?.walFpi), 3)} fpi/event, buffers hit ${fmt(per(s.hit, p?.hit), 1)} dirtied ${fmt(per(s.dirtied, p?.dirtied), 2)}/event`,
    );
  }
  return lines;
}
