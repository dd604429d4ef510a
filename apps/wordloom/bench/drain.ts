/**
 * `npm run bench:drain`: with one worker process started and warmed (bench/runner.ts), enqueue
 * 100,000 events in one transaction, drain them with a no-op sink, tracing off, timed from the
 * first handler start to the last completion persisted; print events/s per run and the median
 * of 3 (issue 2's target: ≥ 20,000/s).
 *
 * Postgres: DATABASE_URL when set, otherwise an embedded one in .loomtrace/bench-pg with its
 * durable default settings. Options: BENCH_EVENTS (default 100000), BENCH_RUNS (default 3),
 * BENCH_PROCS (default 1), BENCH_WARMUP (untimed events first, default 2000), BENCH_BREAKDOWN=1
 * (Postgres's CPU per event by process kind and per statement, bench/pgBreakdown.ts).
 */
import { fmt, median, startBenchPostgres } from './env.js';
import { drain } from './runner.js';
import { producer } from './systems.js';

const N = Number(process.env['BENCH_EVENTS'] ?? 100_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const PROCS = Number(process.env['BENCH_PROCS'] ?? 1);
/** Worker settings to try (BENCH_BATCH, BENCH_CONCURRENCY); the defaults otherwise. */
const OPTS: Record<string, number> = {
  ...(process.env['BENCH_BATCH'] ? { batchSize: Number(process.env['BENCH_BATCH']) } : {}),
  ...(process.env['BENCH_CONCURRENCY'] ? { concurrency: Number(process.env['BENCH_CONCURRENCY']) } : {}),
};

const pgh = await startBenchPostgres((s) => console.log(s));
try {
  const p = await producer('loomtrace', await pgh.database('bench_loomtrace'));
  const rates: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = await drain(p, N, PROCS, OPTS);
    rates.push(r.perSecond);
    console.log(`run ${i + 1}: ${fmt(N)} events in ${fmt(r.ms)} ms = ${fmt(r.perSecond)} events/s (worker peak RSS ${fmt(r.peakRssMb)} MB)`);
    // Where the time went, per event: the worker processes' CPU, Postgres's CPU and WAL.
    const perEvent = (ms: number | undefined) => (ms === undefined ? 'n/a' : ((ms * 1000) / N).toFixed(1));
    console.log(
      `  per event: worker CPU ${perEvent(r.workerCpuMs)} µs, Postgres CPU ${perEvent(r.cost.pgCpuMs)} µs, WAL ${(r.cost.walBytes / N).toFixed(0)} B, statements per 1,000 ${r.cost.statements === undefined ? 'n/a' : ((r.cost.statements * 1000) / N).toFixed(1)}`,
    );
    for (const l of r.cost.breakdown ?? []) console.log(l);
  }
  await p.close();
  const m = median(rates);
  console.log(`loomtrace drain, ${PROCS} worker process(es), tracing off: median ${fmt(m)} events/s over ${RUNS} runs (target ≥ 20,000: ${m >= 20_000 ? 'met' : 'missed'})`);
} finally {
  await pgh.stop();
}
