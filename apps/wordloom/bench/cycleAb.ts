/**
 * The harness of the claim → ack cycle A/B benches (claimAb.ts, claimShapeAb.ts,
 * ackLayoutAb.ts): the same backlog for every variant, the variants alternated run by run on two
 * connections, and per variant the median rate, client CPU, Postgres CPU and WAL per event.
 */
import pg from 'pg';
import { insertEvents } from '@loomtrace/outbox/internal';
import { inTransaction, type Pool } from '@loomtrace/outbox';
import { CostProbe } from './cost.js';
import { benchPayload, fmt, median } from './env.js';
import { breakdownLines, snapshotBreakdown } from './pgBreakdown.js';

/** Commits `n` events (one producer trace context for all) in one transaction. */
export async function enqueueBacklog(pool: Pool, n: number): Promise<void> {
  await inTransaction(pool, async (tx) => {
    for (let from = 0; from < n; from += 5_000) {
      const events = Array.from({ length: Math.min(5_000, n - from) }, (_, k) => ({
        projection: 'search',
        eventType: 'block.updated',
        aggregateType: 'block',
        aggregateId: `00000000-0000-4000-8000-${String(from + k).padStart(12, '0')}`,
        aggregateVersion: 2,
        attributes: { 'loomtrace.library.id': '00000000-0000-4000-8000-000000000002' },
        requestId: `bench-${from + k}`,
        payload: benchPayload(from + k),
      }));
      await insertEvents(tx, events, events.map(() => ({ traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`, tracestate: null })));
    }
    await tx.query('analyze loomtrace.outbox_queue, loomtrace.outbox');
  });
}

export interface CycleAb<V extends string> {
  url: string;
  pool: Pool;
  events: number;
  runs: number;
  batch: number;
  /** The first is the baseline the others are compared with. */
  variants: readonly V[];
  /** Drains the backlog on one connection with variant `v`; returns how many events it claimed. */
  cycle(c: pg.Client, v: V): Promise<number>;
  /** More tables to empty before each run. */
  truncate?: string[];
  /** Run before each run's backlog is enqueued (a variant's schema or settings). */
  prepare?(v: V): Promise<void>;
  /** Run after each run's backlog is committed, before the clock starts. */
  loaded?(v: V): Promise<void>;
  /** Print each run's Postgres CPU by process kind and per statement (pgBreakdown.ts). */
  breakdown?: boolean;
  /** Run after each run's figures are printed. */
  after?(v: V): void;
  /** Also print Postgres CPU and WAL per event of committing the backlog (untimed; its one transaction, 5,000 events a statement). */
  enqueueCost?: boolean;
}

/** Runs every variant `runs` times, alternated, and prints each run and the medians. */
export async function runCycleAb<V extends string>(o: CycleAb<V>): Promise<void> {
  const res = new Map(o.variants.map((v) => [v, { rate: [] as number[], cpu: [] as number[], pgCpu: [] as number[], wal: [] as number[], enqCpu: [] as number[], enqWal: [] as number[] }]));
  const probe = new CostProbe(o.url, !process.env['DATABASE_URL']);
  await probe.open();
  const clients = [new pg.Client({ connectionString: o.url }), new pg.Client({ connectionString: o.url })];
  for (const c of clients) {
    c.on('error', () => undefined); // the server stopping at the end; a failing statement rejects its query
    await c.connect();
  }
  const line = (v: string, rate: number, cpu: number, pgCpu: number, wal: number) =>
    `${v.padEnd(14)} ${fmt(rate).padStart(8)} events/s, client CPU ${fmt(cpu, 1)} µs/event, Postgres CPU ${fmt(pgCpu, 1)} µs/event, ${fmt(wal)} WAL bytes/event`;
  try {
    const tables = ['loomtrace.outbox', 'loomtrace.outbox_attempts', 'loomtrace.outbox_queue', 'loomtrace.outbox_leases', ...(o.truncate ?? [])];
    for (let rep = 0; rep < o.runs; rep++) {
      for (let k = 0; k < o.variants.length; k++) {
        const v = o.variants[(k + rep) % o.variants.length]!;
        await o.prepare?.(v);
        await o.pool.query(`truncate ${tables.join(', ')}`);
        await o.pool.query('checkpoint');
        const enq0 = o.enqueueCost ? await probe.snapshot() : undefined;
        await enqueueBacklog(o.pool, o.events);
        if (enq0) {
          const e = await probe.since(enq0);
          const r = res.get(v)!;
          r.enqCpu.push(((e.pgCpuMs ?? NaN) * 1000) / o.events);
          r.enqWal.push(e.walBytes / o.events);
          console.log(`  ${v.padEnd(14)} enqueue: Postgres CPU ${fmt(r.enqCpu.at(-1)!, 1)} µs/event, ${fmt(r.enqWal.at(-1)!)} WAL bytes/event`);
        }
        await o.loaded?.(v);
        const parts = o.breakdown ? await snapshotBreakdown(clients[0]!) : undefined;
        const before = await probe.snapshot();
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        const counts = await Promise.all(clients.map((c) => o.cycle(c, v)));
        const ms = performance.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        const cost = await probe.since(before);
        const partsAfter = parts ? await snapshotBreakdown(clients[0]!) : undefined;
        const n = counts.reduce((a, b) => a + b, 0);
        if (n !== o.events) throw new Error(`${v}: claimed ${n} of ${o.events}`);
        const r = res.get(v)!;
        r.rate.push((n * 1000) / ms);
        r.cpu.push((cpu.user + cpu.system) / n);
        r.pgCpu.push(((cost.pgCpuMs ?? NaN) * 1000) / n);
        r.wal.push(cost.walBytes / n);
        console.log(`  ${line(v, r.rate.at(-1)!, r.cpu.at(-1)!, r.pgCpu.at(-1)!, r.wal.at(-1)!)}`);
        if (parts && partsAfter) for (const l of breakdownLines(parts, partsAfter, n)) console.log(l);
        o.after?.(v);
      }
    }
  } finally {
    for (const c of clients) await c.end().catch(() => undefined);
    await probe.close();
  }
  const first = o.variants[0]!;
  const base = median(res.get(first)!.rate);
  console.log(`\nclaim → ack alone, ${fmt(o.events)} events, batch ${o.batch}, 2 connections, median of ${o.runs} (alternated):`);
  for (const v of o.variants) {
    const r = res.get(v)!;
    console.log(`  ${line(v, median(r.rate), median(r.cpu), median(r.pgCpu), median(r.wal))} (${fmt(median(r.rate) / base, 2)}× ${first})`);
  }
  if (o.enqueueCost) {
    console.log('the backlog\'s enqueue (untimed), median:');
    for (const v of o.variants) {
      const r = res.get(v)!;
      console.log(`  ${v.padEnd(14)} Postgres CPU ${fmt(median(r.enqCpu), 1)} µs/event, ${fmt(median(r.enqWal))} WAL bytes/event`);
    }
  }
}
