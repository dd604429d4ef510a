/**
 * `node dist/bench/e2eRssAb.js --rate 1000 --seconds 20 --runs 3`: the worker's peak RSS in the
 * end-to-end bench (bench/e2e.ts, tracing on), variants alternated in one run, with what the
 * memory was made of (bench/memProbe.ts preloaded into the worker: RSS anonymous / file-backed,
 * V8's heap spaces, external and ArrayBuffer memory, at rest and at the highest sample).
 * BENCH_VARIANTS (JSON, name → variables laid over the worker's, e.g.
 * `{"semi2":{"BENCH_NODE_FLAGS":"--max-semi-space-size=2"}}`; a variable `WORKER_SCRIPT` runs
 * another build's worker.js). Without it: this build alone. Prints per run and the medians of the
 * worker's VmHWM, its CPU per PATCH, the spans received and the p99 (docs/decisions/0024-worker-peak-rss.md).
 */
import { parseArgs } from 'node:util';
import { endToEnd, type E2eResult } from './e2e.js';
import { fmt, percentile, startBenchPostgres } from './env.js';
import { describe } from './memProbe.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '20' },
    runs: { type: 'string', default: '3' },
  },
});
const variants = JSON.parse(process.env['BENCH_VARIANTS'] ?? '{"this":{}}') as Record<string, Record<string, string>>;
const names = Object.keys(variants);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;

const pgh = await startBenchPostgres((s) => console.log(s));
const out = new Map<string, E2eResult[]>();
try {
  const url = await pgh.database('bench_wordloom');
  const runs = Number(values.runs);
  for (let rep = 0; rep < runs; rep++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(k + rep) % names.length]!;
      const { WORKER_SCRIPT: script, ...env } = variants[name]!;
      console.log(`## ${name}, run ${rep + 1}`);
      const r = await endToEnd(url, () => undefined, Number(values.rate), Number(values.seconds), { memory: true, workerEnv: env, ...(script ? { workerScript: script } : {}) });
      const m = r.workerMemory;
      const idle = m?.series.find((s) => s.t >= m.idleAt - 200);
      console.log(`  worker VmHWM ${fmt(r.workerRssMb)} MB, CPU ${fmt(r.cpuUsPerPatch!.worker)} µs/PATCH; ${fmt(r.sent)} PATCHes, ${fmt(r.visible)} visible, spans ${fmt(r.spans)}, p99 ${fmt(percentile(r.samples, 99), 1)} ms`);
      console.log(`    at start:  ${describe(m?.first)}`);
      console.log(`    at rest:   ${describe(idle)}`);
      console.log(`    at peak:   ${describe(m?.peak)} (${m?.peak ? fmt((m.peak.t - m.goAt) / 1000, 1) : '?'} s after go)`);
      if (process.env['BENCH_MEM_SERIES']) {
        for (const s of m?.series ?? []) console.log(`    ${fmt((s.t - m!.goAt) / 1000, 0).padStart(4)} s  ${describe(s)}`);
        console.log(`    at exit, largest anonymous mappings (size/rss MB): ${(m?.anonMaps ?? []).map((a) => `${fmt(a.sizeMb, 1)}/${fmt(a.rssMb, 1)}${a.name ? ` ${a.name}` : ''}`).join(', ')}`);
      }
      out.set(name, [...(out.get(name) ?? []), r]);
    }
  }
  console.log(`\nmedians of ${runs}, ${values.rate} PATCH/s for ${values.seconds} s:`);
  for (const name of names) {
    const rs = out.get(name)!;
    const rss = rs.map((r) => r.workerRssMb);
    console.log(
      `  ${name.padEnd(10)} worker VmHWM ${fmt(median(rss))} MB (${rss.map((x) => fmt(x)).join(', ')})  CPU ${fmt(median(rs.map((r) => r.cpuUsPerPatch!.worker)))} µs/PATCH  ` +
        `spans/PATCH ${fmt(median(rs.map((r) => r.spans / r.sent)), 2)}  p99 ${fmt(median(rs.map((r) => percentile(r.samples, 99))), 1)} ms  API VmHWM ${fmt(median(rs.map((r) => r.apiRssMb)))} MB`,
    );
  }
} finally {
  await pgh.stop();
}
