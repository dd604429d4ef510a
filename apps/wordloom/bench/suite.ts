/**
 * `npm run bench`: the whole side-by-side suite in one run, on one Postgres, A/B alternated,
 * then docs/BENCHMARKS.md. Sections (BENCH_ONLY=drain,tracing,latency,e2e,api to pick some;
 * the document is written only when all ran): drain, tracing cost, pick-up latency, end to end,
 * API throughput with tracing on and off. Memory is read from /proc (VmHWM) along the way.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { apiThroughput, endToEnd, type ApiResult, type E2eResult } from './e2e.js';
import { ROOT, fmt, percentile, startBenchPostgres } from './env.js';
import { startReceiver, tracedDrainEnv } from './otlpReceiver.js';
import { drain, pickupLatency, type DrainResult } from './runner.js';
import { renderReport, type PerEvent, type Report } from './report.js';
import { LABEL, SYSTEMS, producer, type Producer, type SystemName } from './systems.js';

const N = Number(process.env['BENCH_EVENTS'] ?? 100_000);
/** End-to-end rates (PATCH/s), each its own run: BENCH_E2E_RATES=200,1000. */
const E2E_RATES = (process.env['BENCH_E2E_RATES'] ?? '200,1000').split(',').map(Number).filter((n) => n > 0);
/**
 * Rates also run untraced, as a reference for what the machine does without tracing:
 * BENCH_E2E_UNTRACED_RATES=1000 (empty: none).
 */
const E2E_UNTRACED_RATES = (process.env['BENCH_E2E_UNTRACED_RATES'] ?? '1000').split(',').map(Number).filter((n) => n > 0);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
/** Pick-up samples per system: with 1,000 the p99 is the 10th slowest, not the 2nd of 200. */
const SAMPLES = Number(process.env['BENCH_SAMPLES'] ?? 1_000);
const only = (process.env['BENCH_ONLY'] ?? '').split(',').filter(Boolean);
const want = (s: string) => only.length === 0 || only.includes(s);
const log = (s: string) => console.log(s);

/** Settings per system: loomtrace's defaults; the peers' fast settings. */
const SETTINGS: Record<SystemName, Record<string, number>> = {
  // BENCH_LOOMTRACE_OPTS='{"batchSize":500}' tries other worker options.
  loomtrace: JSON.parse(process.env['BENCH_LOOMTRACE_OPTS'] ?? '{}') as Record<string, number>,
  graphile: { concurrency: 24, localQueue: 500 },
  pgboss: { batchSize: 500, workers: 2 },
};

/** A drain's cost per event: worker CPU, Postgres statements, WAL bytes, Postgres CPU. */
const costOf = (r: DrainResult): PerEvent => ({
  workerCpuUs: (r.workerCpuMs * 1000) / r.events,
  statements: r.cost.statements === undefined ? null : r.cost.statements / r.events,
  walBytes: r.cost.walBytes / r.events,
  pgCpuUs: r.cost.pgCpuMs === undefined ? null : (r.cost.pgCpuMs * 1000) / r.events,
});
const costLine = (c: PerEvent) =>
  `worker CPU ${fmt(c.workerCpuUs, 1)} µs/event, Postgres CPU ${c.pgCpuUs === null ? 'n/a' : fmt(c.pgCpuUs, 1)} µs/event, ${c.statements === null ? 'n/a' : fmt(c.statements * 1000, 0)} statements/1,000 events, ${fmt(c.walBytes, 0)} WAL bytes/event`;

const pgh = await startBenchPostgres(log);
const report: Report = {
  date: new Date().toISOString(),
  cores: cpus().length,
  machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${fmt(totalmem() / 2 ** 30, 1)} GiB RAM, ${process.platform} ${process.arch}; load average ${loadavg().map((l) => l.toFixed(2)).join(' / ')} (1 / 5 / 15 min) when the run started`,
  node: process.version,
  postgres: `${pgh.serverVersion} (${pgh.kind})`,
  events: N,
  runs: RUNS,
  samples: SAMPLES,
  drain: {},
  cost: {},
  warmup: Number(process.env['BENCH_WARMUP'] ?? 2_000),
  tracing: undefined,
  latency: {},
  e2e: [],
  api: undefined,
  workerRssMb: {},
  versions: Object.fromEntries(
    ['graphile-worker', 'pg-boss', 'pg', '@opentelemetry/sdk-node', '@opentelemetry/sdk-trace-base', 'autocannon'].map((m) => [
      m,
      (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', m, 'package.json'), 'utf8')) as { version: string }).version,
    ]),
  ),
};

const producers = {} as Record<SystemName, Producer>;
try {
  for (const s of SYSTEMS) producers[s] = await producer(s, await pgh.database(`bench_${s}`));

  if (want('drain')) {
    log(`\n## Drain: ${fmt(N)} events, no-op handler, tracing off, median of ${RUNS}, systems alternated`);
    for (const procs of [1, 2]) {
      const rates: Record<SystemName, number[]> = { loomtrace: [], graphile: [], pgboss: [] };
      for (let rep = 0; rep < RUNS; rep++) {
        const order = SYSTEMS.map((_, k) => SYSTEMS[(k + rep) % SYSTEMS.length]!);
        for (const s of order) {
          const r = await drain(producers[s], N, procs, SETTINGS[s]);
          rates[s].push(r.perSecond);
          (report.cost[`${s}:${procs}`] ??= []).push(costOf(r));
          report.workerRssMb[`drain ${LABEL[s]} ×${procs}`] = Math.max(report.workerRssMb[`drain ${LABEL[s]} ×${procs}`] ?? 0, r.peakRssMb);
          log(`  ${procs} proc  ${LABEL[s].padEnd(16)} ${fmt(r.perSecond).padStart(8)} events/s  (rss ${fmt(r.peakRssMb)} MB; ${costLine(costOf(r))})`);
        }
      }
      for (const s of SYSTEMS) report.drain[`${s}:${procs}`] = rates[s];
    }
  }

  if (want('tracing')) {
    log(`\n## Tracing cost: loomtrace drain, 1 worker process, real SDK + OTLP/protobuf exporter to a local receiver`);
    const rx = await startReceiver();
    const traced = (sampler: string, arg?: string) => tracedDrainEnv(rx.url, sampler, arg);
    const modes = [
      { key: 'off', env: {} as Record<string, string>, every: 1 },
      { key: 'on100', env: traced('parentbased_always_on'), every: 1 },
      { key: 'on10', env: traced('parentbased_traceidratio', '0.1'), every: 10 },
      { key: 'graphile', env: {}, every: 1 },
    ];
    const rates: Record<string, number[]> = { off: [], on100: [], on10: [], graphile: [] };
    const cpuUs: Record<string, number[]> = { off: [], on100: [], on10: [], graphile: [] };
    const spans: Record<string, number[]> = { on100: [], on10: [] };
    let perEvent: Record<string, number> = {};
    for (let rep = 0; rep < RUNS; rep++) {
      for (let k = 0; k < modes.length; k++) {
        const m = modes[(k + rep) % modes.length]!;
        rx.reset();
        const r = m.key === 'graphile'
          ? await drain(producers.graphile, N, 1, SETTINGS.graphile)
          : await drain(producers.loomtrace, N, 1, SETTINGS.loomtrace, m.env, m.every);
        rates[m.key]!.push(r.perSecond);
        cpuUs[m.key]!.push((r.workerCpuMs * 1000) / N);
        (report.cost[`tracing ${m.key}`] ??= []).push(costOf(r));
        let note = `; ${costLine(costOf(r))}`;
        if (m.key.startsWith('on')) {
          const counts = rx.count();
          const total = [...counts.values()].reduce((a, b) => a + b, 0);
          spans[m.key]!.push(total);
          if (m.key === 'on100') perEvent = Object.fromEntries([...counts].map(([name, c]) => [name, c / N]));
          note += `, ${fmt(total)} spans received (${fmt(rx.bytes() / 2 ** 20, 1)} MiB)`;
          report.workerRssMb[`drain traced ${m.key}`] = Math.max(report.workerRssMb[`drain traced ${m.key}`] ?? 0, r.peakRssMb);
        }
        log(`  ${m.key.padEnd(9)} ${fmt(r.perSecond).padStart(8)} events/s${note}`);
      }
    }
    await rx.close();
    report.tracing = { rates, cpuUs, spans, spansPerEvent: perEvent };
  }

  if (want('latency')) {
    log(`\n## Pick-up latency: enqueue commit → handler start, idle worker, ${SAMPLES} samples`);
    const res = await pickupLatency(SYSTEMS.map((s) => ({ p: producers[s], opts: SETTINGS[s] })), SAMPLES);
    for (const s of SYSTEMS) {
      const v = res.get(s) ?? [];
      report.latency[s] = v;
      log(`  ${LABEL[s].padEnd(16)} p50 ${fmt(percentile(v, 50), 2)} ms  p99 ${fmt(percentile(v, 99), 2)} ms`);
    }
  }

  if (want('e2e')) {
    const runs = [...E2E_RATES.map((rate) => ({ rate, tracing: true })), ...E2E_UNTRACED_RATES.map((rate) => ({ rate, tracing: false }))];
    for (const { rate, tracing } of runs) {
      const seconds = Number(process.env['BENCH_E2E_SECONDS'] ?? 30);
      log(`\n## End to end: PATCH → visible in search, ${fmt(rate)} req/s for ${seconds} s, tracing ${tracing ? 'on' : 'off'}`);
      const e2e: E2eResult = await endToEnd(await pgh.database('bench_wordloom'), log, rate, seconds, { tracing });
      report.e2e.push(e2e);
      const key = `e2e ${rate}/s${tracing ? '' : ' untraced'}`;
      report.workerRssMb[`${key} worker`] = e2e.workerRssMb;
      report.workerRssMb[`${key} api`] = e2e.apiRssMb;
    }
  }
  let api: ApiResult | undefined;
  if (want('api')) {
    log(`\n## API throughput: PATCH with autocannon, tracing on vs off, alternated`);
    api = await apiThroughput(await pgh.database('bench_wordloom'), RUNS, log);
    report.api = api;
  }

  if (only.length === 0) {
    const file = path.join(ROOT, 'docs', 'BENCHMARKS.md');
    writeFileSync(file, renderReport(report));
    log(`\nwrote ${path.relative(ROOT, file)}`);
  } else {
    log('\n(BENCH_ONLY set: docs/BENCHMARKS.md not written)');
  }
  // The figures behind the document (bench/render.ts re-renders from them); a partial run
  // (BENCH_ONLY) keeps its own file so that it never replaces a full run's.
  writeFileSync(path.join(ROOT, '.loomtrace', only.length === 0 ? 'bench-last.json' : 'bench-partial.json'), JSON.stringify(report, null, 1));
} finally {
  for (const p of Object.values(producers)) await p.close().catch(() => undefined);
  await pgh.stop();
}
