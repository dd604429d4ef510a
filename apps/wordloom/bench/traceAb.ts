/**
 * `node dist/bench/traceAb.js`: the tracing cost of the loomtrace drain (1 worker process, the
 * real SDK and the fast event-span exporter to a local receiver, as bench/suite.ts's tracing
 * section), for this build and optionally another (BENCH_BASE=/path/to/a/copy/of/the/repo with
 * its dist built; its worker child gets the same Node flags unless BENCH_BASE_FLAGS=off), modes and builds alternated in one run. Prints per mode the median events/s,
 * the ratio to the same build's untraced drain, worker CPU per event, the worker's garbage
 * collections (scavenges and full ones, counted by perf_hooks in bench/drainChild.ts; a base
 * build's child that does not count them shows 0), peak RSS and spans received. BENCH_EVENTS (default 50,000), BENCH_RUNS (default 3), BENCH_MODES (off,on100,on10; on0: the SDK on, nearly every batch quiet; on10runs: a tenth sampled in runs of 500, so a tenth of the batches hold them),
 * BENCH_TRACE_ENV (JSON: extra variables for the traced modes), BENCH_VARIANTS (JSON: more
 * builds, this one's child with extra variables, e.g. `{"semi4":{"NODE_OPTIONS":"--max-semi-space-size=4"}}`).
 */
import path from 'node:path';
import { fmt, startBenchPostgres } from './env.js';
import { startReceiver, tracedDrainEnv } from './otlpReceiver.js';
import { drain } from './runner.js';
import { producer } from './systems.js';

const N = Number(process.env['BENCH_EVENTS'] ?? 50_000);
const RUNS = Number(process.env['BENCH_RUNS'] ?? 3);
const MODES = (process.env['BENCH_MODES'] ?? 'off,on100,on10').split(',');
const BASE = process.env['BENCH_BASE'];
const extra = JSON.parse(process.env['BENCH_TRACE_ENV'] ?? '{}') as Record<string, string>;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;

const pgh = await startBenchPostgres((s) => console.log(s));
const rx = await startReceiver();
const p = await producer('loomtrace', await pgh.database('bench_loomtrace'));
const traced = (sampler: string, arg?: string): Record<string, string> => ({ ...tracedDrainEnv(rx.url, sampler, arg), ...extra });
const modeEnv: Record<string, { env: Record<string, string>; every: number }> = {
  off: { env: {}, every: 1 },
  on100: { env: traced('parentbased_always_on'), every: 1 },
  on10: { env: traced('parentbased_traceidratio', '0.1'), every: 10 },
  // A tenth of the events sampled too, but in runs of 500: a tenth of the batches hold them all.
  on10runs: { env: traced('parentbased_traceidratio', '0.1'), every: -10 },
  // The SDK on with (almost) nothing sampled: only the first event of a run, so nearly every
  // batch is quiet; what the SDK costs when it is merely on.
  on0: { env: traced('parentbased_traceidratio', '0.1'), every: Number.MAX_SAFE_INTEGER },
};
const variants = JSON.parse(process.env['BENCH_VARIANTS'] ?? '{}') as Record<string, Record<string, string>>;
const builds: { name: string; child?: string; env?: Record<string, string> }[] = [{ name: 'new' }, ...Object.entries(variants).map(([name, env]) => ({ name, env }))];
if (BASE) builds.unshift({ name: 'base', child: path.join(BASE, 'apps', 'wordloom', 'dist', 'bench', 'drainChild.js') });
const runs = builds.flatMap((b) => MODES.map((m) => ({ b, m })));
const out = new Map<string, { rate: number[]; cpu: number[]; gc: number[]; rss: number[]; spans: number[] }>();
try {
  for (let rep = 0; rep < RUNS; rep++) {
    for (let k = 0; k < runs.length; k++) {
      const { b, m } = runs[(k + rep) % runs.length]!;
      const mode = modeEnv[m]!;
      rx.reset();
      const r = await drain(p, N, 1, {}, { ...mode.env, ...b.env, ...(b.child ? { BENCH_CHILD: b.child } : {}) }, mode.every);
      const spans = m === 'off' ? 0 : [...rx.count().values()].reduce((a, c) => a + c, 0);
      const key = `${b.name} ${m}`;
      const o = out.get(key) ?? { rate: [], cpu: [], gc: [], rss: [], spans: [] };
      o.rate.push(r.perSecond);
      o.cpu.push((r.workerCpuMs * 1000) / N);
      o.gc.push(r.workerGc.minor);
      o.rss.push(r.peakRssMb);
      o.spans.push(spans);
      out.set(key, o);
      console.log(`  ${key.padEnd(12)} ${fmt(r.perSecond).padStart(8)} events/s  cpu ${fmt((r.workerCpuMs * 1000) / N, 1)} µs/event  gc ${r.workerGc.minor} scavenges, ${r.workerGc.major} full  rss ${fmt(r.peakRssMb)} MB  spans ${fmt(spans)}`);
    }
  }
  console.log(`\nmedians of ${RUNS}, ${fmt(N)} events:`);
  for (const b of builds) {
    const off = out.get(`${b.name} off`);
    for (const m of MODES) {
      const o = out.get(`${b.name} ${m}`)!;
      const ratio = off ? median(o.rate) / median(off.rate) : NaN;
      console.log(`  ${`${b.name} ${m}`.padEnd(12)} ${fmt(median(o.rate)).padStart(8)} events/s  ratio ${ratio.toFixed(2)}  cpu ${fmt(median(o.cpu), 1)} µs/event  gc ${fmt(median(o.gc))} scavenges  rss max ${fmt(Math.max(...o.rss))} MB  spans ${fmt(median(o.spans))}`);
    }
  }
} finally {
  await rx.close();
  await pgh.stop();
}
