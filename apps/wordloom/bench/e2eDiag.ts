/**
 * Where the end-to-end run's slow PATCHes come from (`--diagnose`): a timeline of stall episodes
 * (runs of PATCHes slower than the target, by due time) set against the API's, the worker's and
 * this bench process's event-loop delay and GC pauses (bench/loopProbe.ts), what the server's
 * active sessions were waiting on (pg_stat_activity sampled every 20 ms: a cost of its own, which
 * is why it is off by default) and the checkpoints that ran.
 */
import pg from 'pg';
import { epochMs, fmt, sleep } from './env.js';
import type { LoopProbeData } from './loopProbe.js';

/** One PATCH: due, when this process handed it to the socket, when its response ended (epoch ms). */
export interface Timed {
  due: number;
  sent: number;
  resp: number;
}

export class PgSampler {
  private readonly client: pg.Client;
  private running = false;
  private loop: Promise<void> | undefined;
  /** [epoch ms, "who wait" labels of the active sessions] */
  readonly samples: [number, string[]][] = [];
  checkpoints: { before: Record<string, unknown>; after: Record<string, unknown> } | undefined;

  constructor(url: string) {
    this.client = new pg.Client({ connectionString: url, application_name: 'bench-e2e-sampler' });
  }

  private async stats(): Promise<Record<string, unknown>> {
    const { rows } = await this.client.query<Record<string, unknown>>(
      `select c.num_timed, c.num_requested, c.write_time, c.sync_time, c.buffers_written,
              w.wal_records, w.wal_bytes::text, w.wal_sync, w.wal_write,
              (select sum(autovacuum_count + autoanalyze_count) from pg_stat_all_tables)::int as autovacuums
         from pg_stat_checkpointer c, pg_stat_wal w`,
    );
    return rows[0] ?? {};
  }

  async start(): Promise<void> {
    await this.client.connect();
    const before = await this.stats().catch(() => ({}));
    this.checkpoints = { before, after: {} };
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const { rows } = await this.client.query<{ w: string }>({
          name: 'bench_sample_waits',
          text: `select coalesce(nullif(application_name, ''), backend_type) || ' ' || coalesce(wait_event_type || ':' || wait_event, 'CPU') as w
                   from pg_stat_activity
                  where state is distinct from 'idle' and pid <> pg_backend_pid()
                    and backend_type in ('client backend', 'autovacuum worker', 'checkpointer', 'walwriter')`,
        });
        this.samples.push([epochMs(), rows.map((r) => r.w)]);
        await sleep(20);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    if (this.checkpoints) this.checkpoints.after = await this.stats().catch(() => ({}));
    await this.client.end();
  }
}

const maxIn = (ws: [number, number][] | undefined, a: number, b: number) =>
  (ws ?? []).reduce((m, [t, d]) => (t >= a && t - 100 <= b ? Math.max(m, d) : m), 0);
const gcIn = (gcs: [number, number, number][] | undefined, a: number, b: number) => {
  let ms = 0;
  let n = 0;
  for (const [t, d] of gcs ?? []) if (t + d >= a && t <= b) (ms += d), n++;
  return `${n} GC ${fmt(ms, 1)} ms`;
};

/**
 * Episodes of PATCHes slower than `slowMs` (due → response), merged when less than 200 ms apart,
 * each with what every process and the server did over it. Returns printable lines.
 */
export function stallTimeline(
  reqs: Timed[],
  start: number,
  slowMs: number,
  probes: { api?: LoopProbeData; worker?: LoopProbeData; bench?: LoopProbeData },
  sampler: PgSampler | undefined,
): string[] {
  const slow = reqs.filter((r) => r.resp - r.due > slowMs).sort((a, b) => a.due - b.due);
  const episodes: Timed[][] = [];
  for (const r of slow) {
    const last = episodes.at(-1);
    if (last && r.due - last.at(-1)!.due < 200) last.push(r);
    else episodes.push([r]);
  }
  const out: string[] = [`  ${slow.length} of ${reqs.length} PATCHes over ${slowMs} ms (due → response), in ${episodes.length} episodes:`];
  const lateSend = reqs.map((r) => r.sent - r.due).sort((a, b) => a - b);
  out.push(`  load generator: send later than due p50 ${fmt(lateSend[lateSend.length >> 1] ?? NaN, 2)} ms, p99 ${fmt(lateSend[Math.floor(lateSend.length * 0.99)] ?? NaN, 1)} ms, max ${fmt(lateSend.at(-1) ?? NaN, 1)} ms`);
  for (const ep of episodes.slice(0, 25)) {
    const a = ep[0]!.due;
    const b = Math.max(...ep.map((r) => r.resp));
    const worst = Math.max(...ep.map((r) => r.resp - r.due));
    const late = Math.max(...ep.map((r) => r.sent - r.due));
    const waits = new Map<string, number>();
    for (const [t, ws] of sampler?.samples ?? []) if (t >= a && t <= b) for (const w of ws) waits.set(w, (waits.get(w) ?? 0) + 1);
    const top = [...waits].sort((x, y) => y[1] - x[1]).slice(0, 4).map(([w, n]) => `${w} ×${n}`).join(', ');
    out.push(
      `   t=${fmt((a - start) / 1000, 2)} s for ${fmt(b - a, 0)} ms: ${ep.length} slow, worst ${fmt(worst, 0)} ms, sent late ≤ ${fmt(late, 1)} ms; ` +
        `loop delay api ${fmt(maxIn(probes.api?.windows, a, b), 0)} ms (${gcIn(probes.api?.gcs, a, b)}), worker ${fmt(maxIn(probes.worker?.windows, a, b), 0)} ms, bench ${fmt(maxIn(probes.bench?.windows, a, b), 0)} ms (${gcIn(probes.bench?.gcs, a, b)})` +
        (top ? `; pg: ${top}` : ''),
    );
  }
  const worst = (p?: LoopProbeData) => fmt(Math.max(0, ...(p?.windows ?? []).filter(([t]) => t >= start).map(([, d]) => d)), 0);
  out.push(`  largest event-loop delay over the run: api ${worst(probes.api)} ms, worker ${worst(probes.worker)} ms, bench ${worst(probes.bench)} ms`);
  // perf_hooks GC kinds: 1 minor (scavenge), 2 major (mark-compact), 4 incremental marking, 8 weak callbacks.
  const gcLine = (p?: LoopProbeData) => {
    const by = new Map<number, { n: number; ms: number; max: number }>();
    for (const [t, d, k] of p?.gcs ?? []) {
      if (t < start) continue;
      const e = by.get(k) ?? { n: 0, ms: 0, max: 0 };
      by.set(k, { n: e.n + 1, ms: e.ms + d, max: Math.max(e.max, d) });
    }
    const name: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weak' };
    return [...by].map(([k, e]) => `${name[k] ?? k} ×${e.n} ${fmt(e.ms, 0)} ms (max ${fmt(e.max, 1)})`).join(', ') || 'none';
  };
  out.push(`  GC over the run: api ${gcLine(probes.api)}; worker ${gcLine(probes.worker)}; bench ${gcLine(probes.bench)}`);
  if (sampler?.checkpoints) out.push(`  server before → after: ${JSON.stringify(sampler.checkpoints.before)} → ${JSON.stringify(sampler.checkpoints.after)}`);
  return out;
}
