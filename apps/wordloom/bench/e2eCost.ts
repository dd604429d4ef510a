/**
 * Where the machine's time goes per PATCH in the end-to-end run: CPU of each process (the API,
 * the worker, the Postgres server with all its backends, and this bench process, which is the
 * load generator, the poller of search.blocks and the OTLP receiver), read from /proc around the
 * open-loop part, and the statements Postgres ran per PATCH by query (pg_stat_statements), with
 * their mean execution time. CPU per request moves far less than latency on a shared machine.
 */
import pg from 'pg';
import { CostProbe, type CostSnapshot } from './cost.js';
import { procCpuMs } from './env.js';

/** µs of CPU per PATCH, by process. */
export interface CpuPerPatch {
  api: number;
  worker: number;
  postgres: number;
  /** The bench process but its load generator thread: the poll of search.blocks, the OTLP receiver. */
  bench: number;
  /** The load generator thread. */
  load?: number;
  /** Of `postgres`, the execution time of the bench's own poll of search.blocks (an estimate of its CPU). */
  pollPg?: number;
}

/** One statement's share of a PATCH: calls per PATCH and mean execution time. */
export interface StatementCost {
  query: string;
  perPatch: number;
  meanMs: number;
}

interface Stmt {
  calls: number;
  totalMs: number;
  query: string;
}

async function statements(c: pg.Client): Promise<Map<string, Stmt> | undefined> {
  try {
    const { rows } = await c.query<{ id: string; calls: string; total: number; query: string }>(
      `select queryid::text as id, calls::text, total_exec_time as total, query from pg_stat_statements
        where dbid = (select oid from pg_database where datname = current_database())`,
    );
    return new Map(rows.map((r) => [r.id, { calls: Number(r.calls), totalMs: r.total, query: r.query }]));
  } catch {
    return undefined;
  }
}

export class E2eCost {
  private readonly probe: CostProbe;
  private readonly client: pg.Client;
  private t0: { api: number; worker: number; bench: NodeJS.CpuUsage; server: CostSnapshot; stmts: Map<string, Stmt> | undefined } | undefined;

  constructor(url: string, private readonly pids: { api: number; worker: number }) {
    this.probe = new CostProbe(url, !process.env['DATABASE_URL']);
    this.client = new pg.Client({ connectionString: url, application_name: 'bench-e2e-cost' });
  }

  async start(): Promise<void> {
    await this.probe.open();
    await this.client.connect();
    this.t0 = {
      api: procCpuMs(this.pids.api),
      worker: procCpuMs(this.pids.worker),
      bench: process.cpuUsage(),
      server: await this.probe.snapshot(),
      stmts: await statements(this.client),
    };
  }

  /** Per PATCH since start(): CPU by process and the statements that ran (≥ 0.01 per PATCH). */
  async stop(patches: number, loadCpuUs = 0): Promise<{ cpu: CpuPerPatch; statements: StatementCost[]; breakdown?: string[] | undefined }> {
    const t0 = this.t0!;
    const bench = process.cpuUsage(t0.bench);
    const server = await this.probe.since(t0.server, patches);
    const stmts = await statements(this.client);
    const per = (ms: number) => (ms * 1000) / Math.max(1, patches);
    const cpu: CpuPerPatch = {
      api: per(procCpuMs(this.pids.api) - t0.api),
      worker: per(procCpuMs(this.pids.worker) - t0.worker),
      postgres: per(server.pgCpuMs ?? NaN),
      bench: (bench.user + bench.system - (Number.isNaN(loadCpuUs) ? 0 : loadCpuUs)) / Math.max(1, patches),
      load: loadCpuUs / Math.max(1, patches),
    };
    let pollMs = 0;
    const out: StatementCost[] = [];
    for (const [id, s] of stmts ?? []) {
      const before = t0.stmts?.get(id) ?? { calls: 0, totalMs: 0 };
      const calls = s.calls - before.calls;
      if (s.query.includes('from search.blocks where block_id = any')) pollMs += s.totalMs - before.totalMs;
      if (calls / patches < 0.01 || s.query.includes('pg_stat_statements')) continue;
      out.push({ query: s.query.replace(/\s+/g, ' ').slice(0, 90), perPatch: calls / patches, meanMs: (s.totalMs - before.totalMs) / calls });
    }
    out.sort((a, b) => b.perPatch - a.perPatch);
    cpu.pollPg = per(pollMs);
    await this.client.end();
    await this.probe.close();
    return { cpu, statements: out, breakdown: server.breakdown };
  }
}
