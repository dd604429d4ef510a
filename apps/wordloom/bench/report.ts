/** Renders docs/BENCHMARKS.md from one suite run: figures, ratios, and each target met or missed. */
import { analysis } from './analysis.js';
import { fmt, median, percentile } from './env.js';
import type { ApiResult, E2eResult } from './e2e.js';
import { LABEL, SYSTEMS } from './systems.js';

/** A drain's cost per event (bench/cost.ts); null where it could not be read. */
export interface PerEvent {
  workerCpuUs: number;
  statements: number | null;
  walBytes: number;
  pgCpuUs: number | null;
}

export interface Report {
  date: string;
  machine: string;
  /** Cores of the machine (older reports: read from `machine`). */
  cores?: number;
  node: string;
  postgres: string;
  events: number;
  runs: number;
  samples: number;
  /** events/s per run, keyed `system:procs`. */
  drain: Record<string, number[]>;
  /** Cost per event of each drain run, keyed `system:procs` or `tracing <mode>`. */
  cost: Record<string, PerEvent[]>;
  tracing: { rates: Record<string, number[]>; cpuUs: Record<string, number[]>; spans: Record<string, number[]>; spansPerEvent: Record<string, number> } | undefined;
  /** pick-up latency samples (ms) per system. */
  latency: Record<string, number[]>;
  /** One run per rate. */
  e2e: E2eResult[];
  api: ApiResult | undefined;
  workerRssMb: Record<string, number>;
  versions?: Record<string, string>;
  /** Untimed events drained first by every drain. */
  warmup?: number;
}

const x = (a: number, b: number) => (b > 0 ? a / b : NaN);

/** The machine's cores. */
export const coresOf = (r: Report): number => r.cores ?? (Number.parseInt(r.machine, 10) || NaN);

/** µs of CPU per PATCH summed over every process of the end-to-end run, and the share of the machine's cores it keeps busy at the run's rate. */
export function e2eLoad(r: Report, e: E2eResult): { totalUs: number; share: number } | undefined {
  const c = e.cpuUsPerPatch;
  if (!c) return undefined;
  const totalUs = c.api + c.worker + c.postgres + (c.load ?? 0) + c.bench;
  return { totalUs, share: (totalUs * e.rate) / 1e6 / coresOf(r) };
}
const med = (xs: (number | null)[]) => {
  const v = xs.filter((n): n is number => n !== null);
  return v.length ? median(v) : NaN;
};

/** Median cost per event of one series of drains (bench/cost.ts). */
export function costOf(r: Report, key: string): PerEvent {
  const c = r.cost?.[key] ?? [];
  return { workerCpuUs: med(c.map((e) => e.workerCpuUs)), statements: med(c.map((e) => e.statements)), walBytes: med(c.map((e) => e.walBytes)), pgCpuUs: med(c.map((e) => e.pgCpuUs)) };
}

function costTable(r: Report): string[] {
  if (!r.cost || Object.keys(r.cost).length === 0) return [];
  const L = ['Where the time goes per event (medians; read from the backlog\'s commit to the end of the drain: worker processes\' CPU from `process.cpuUsage()` (shutdown included), the Postgres server\'s CPU from /proc (all its backends), statements from `pg_stat_statements` for the system\'s database (BEGIN/COMMIT included, the bench\'s progress polls excluded), WAL from `pg_current_wal_lsn()`):', ''];
  L.push('| drain | worker CPU µs/event | Postgres CPU µs/event | statements per 1,000 events | WAL bytes/event |');
  L.push('|---|---:|---:|---:|---:|');
  for (const key of Object.keys(r.cost)) {
    const c = costOf(r, key);
    const [sys, procs] = key.split(':');
    const name = procs ? `${LABEL[sys as keyof typeof LABEL] ?? sys}, ${procs} process${procs === '1' ? '' : 'es'}` : key;
    L.push(`| ${name} | ${fmt(c.workerCpuUs, 1)} | ${fmt(c.pgCpuUs ?? NaN, 1)} | ${fmt((c.statements ?? NaN) * 1000, 1)} | ${fmt(c.walBytes)} |`);
  }
  L.push('');
  return L;
}
const verdict = (ok: boolean, detail: string) => `${ok ? '**met**' : '**missed**'} (${detail})`;

export function renderReport(r: Report, versions: Record<string, string> = r.versions ?? {}): string {
  const L: string[] = [];
  const rate = (k: string) => median(r.drain[k] ?? []);
  L.push('# Benchmarks', '');
  L.push('Written by `npm run bench` (bench/suite.ts); do not edit by hand. Re-run to refresh.', '');
  L.push('## Setup', '');
  L.push(`- Date: ${r.date}`);
  L.push(`- Machine: ${r.machine}. The machine is shared with other work: figures are noisy, compare the ratios. A load average well above 2 means the 2 cores are oversubscribed and every absolute figure (events/s, req/s, latencies) is far below what the same code does on a quiet machine.`);
  L.push(`- Node ${r.node}; PostgreSQL ${r.postgres}, one server for every system, one database each`);
  L.push(`- Versions: ${Object.entries(versions).map(([k, v]) => `${k} ${v}`).join(', ')}`);
  L.push(`- Command: \`npm run bench\` (one system at a time, order rotated every repetition; each figure is the median of ${r.runs} runs). \`npm run bench:drain\` runs issue 2's drain alone (loomtrace, 1 worker process, tracing off, median of 3, same method). \`DATABASE_URL\` makes both use that server instead of the embedded one.`);
  L.push('- Settings: loomtrace worker defaults (batch 500, 2 batches in flight per process, LISTEN/NOTIFY); graphile-worker 0.18 with the fast settings of its performance docs (`concurrency: 24`, `localQueue: { size: 500 }`, `completeJobBatchDelay: 0`, `failJobBatchDelay: 0`; LISTEN/NOTIFY); pg-boss 12 `work()` with `batchSize: 500`, `localConcurrency: 2` (two fetch loops per process, like loomtrace\'s two batches in flight), `burstWhenBatchFull: true` (a full batch fetches again at once), LISTEN/NOTIFY wake-up (`useListenNotify: true`, the queue created with `notify: true`) and `pollingIntervalSeconds: 0.5` as the backstop. Postgres has `pg_stat_statements` loaded (for the statement counts; its cost falls on every system alike).');
  L.push('');

  L.push(`## 1. Drain: ${fmt(r.events)} events, no-op handler, tracing off`, '');
  L.push(`Every system is started and warmed the same way before the clock: its worker processes start on an empty queue (loomtrace's OutboxWorker, graphile-worker's runner, pg-boss started with its workers registered), drain ${fmt(r.warmup ?? 2000)} untimed events (JIT, pools, listeners warm), then the bench commits the ${fmt(r.events)} events in one transaction. Timed from the first handler start (in any process) to the moment the database shows every event finished (acked / completed / deleted), polled every millisecond.`, '');
  L.push('| worker processes | ' + SYSTEMS.map((s) => LABEL[s]).join(' | ') + ' | loomtrace ÷ graphile-worker |');
  L.push('|---|' + SYSTEMS.map(() => '---:').join('|') + '|---:|');
  for (const procs of [1, 2]) {
    L.push(`| ${procs} | ` + SYSTEMS.map((s) => `${fmt(rate(`${s}:${procs}`))}/s`).join(' | ') + ` | ${fmt(x(rate(`loomtrace:${procs}`), rate(`graphile:${procs}`)), 2)}× |`);
  }
  L.push('', 'Runs (events/s): ' + Object.entries(r.drain).map(([k, v]) => `${k} [${v.map((n) => fmt(n)).join(', ')}]`).join('; '), '');
  L.push(...costTable(r));

  const t = r.tracing;
  if (t) {
    const off = median(t.rates['off'] ?? []);
    const on100 = median(t.rates['on100'] ?? []);
    const on10 = median(t.rates['on10'] ?? []);
    const gw = median(t.rates['graphile'] ?? []);
    L.push('## 2. Tracing cost (loomtrace drain, 1 worker process)', '');
    L.push('The worker process starts the real OpenTelemetry SDK exactly as `dist/src/cli/worker.js` does (src/cli/workerTelemetry.ts: the tracer provider, pg instrumentation, OTLP http/protobuf, without NodeSDK; with the Node flags of src/cli/workerFlags.ts; the SDK\'s spans and each sampled event\'s five spans encoded to OTLP by @loomtrace/otlp, passed to the worker as its `eventSpans` option as worker.js does; export requests up to 4,096 spans with a backlog; decisions 0007, 0009, 0014 and 0016) and exports to a local OTLP receiver that counts every span afterwards. Each event carries its own producer trace context (as the API stores it), sampled for all events (100%) or one in ten (10%, `parentbased_traceidratio`).', '');
    const cpu = (k: string) => fmt(median(t.cpuUs[k] ?? []), 1);
    L.push('| mode | events/s | ratio to tracing off | worker CPU per event (from the backlog commit to shutdown, flush included) | spans received per run |');
    L.push('|---|---:|---:|---:|---:|');
    L.push(`| tracing off | ${fmt(off)} | 1.00 | ${cpu('off')} µs | – |`);
    L.push(`| tracing on, 100% | ${fmt(on100)} | ${fmt(x(on100, off), 2)} | ${cpu('on100')} µs | ${fmt(median(t.spans['on100'] ?? []))} |`);
    L.push(`| tracing on, 10% parent-based | ${fmt(on10)} | ${fmt(x(on10, off), 2)} | ${cpu('on10')} µs | ${fmt(median(t.spans['on10'] ?? []))} |`);
    L.push(`| graphile-worker, untraced (same alternation) | ${fmt(gw)} | ${fmt(x(gw, off), 2)} | ${cpu('graphile')} µs | – |`);
    L.push('', 'Spans per event at 100%: ' + Object.entries(t.spansPerEvent).sort().map(([n, c]) => `\`${n}\` ${fmt(c, 3)}`).join(', '), '');
  }

  L.push('## 3. Pick-up latency: enqueue commit → handler start, idle worker', '');
  L.push(`${r.samples} samples each, after 20 untimed ones that warm each system; the producer (this process) times from just before its autocommit enqueue statement to the handler's start in the worker process (same host clock), with a 15–25 ms pause between samples. The three systems' workers run side by side the whole time, each woken by LISTEN/NOTIFY, and take turns sample by sample.`, '');
  L.push('| system | p50 | p99 | max |');
  L.push('|---|---:|---:|---:|');
  for (const s of SYSTEMS) {
    const v = r.latency[s] ?? [];
    L.push(`| ${LABEL[s]} | ${fmt(percentile(v, 50), 2)} ms | ${fmt(percentile(v, 99), 2)} ms | ${fmt(Math.max(...v), 2)} ms |`);
  }
  L.push('');

  for (const e of r.e2e) {
    const traced = e.tracing !== false;
    L.push(`## 4. End to end: PATCH /api/v1/blocks/:id → visible in search, ${e.rate} req/s for ${e.seconds} s, ${traced ? 'tracing on (100%)' : 'tracing off (a reference: what the machine does untraced)'}`, '');
    L.push(`Real processes (dist/src/cli/api.js and worker.js, default settings, ${traced ? 'OTLP http/protobuf to a local receiver' : 'the OpenTelemetry SDK disabled (`OTEL_SDK_DISABLED=true`) in both'}). Open loop as wrk2 runs it: request i is due at start + i/${e.rate} s and is timed from then, sent by a load generator in its own thread (node:http, 64 keep-alive connections; a request waiting for a free one counts its wait) after 3 s of untimed PATCHes at the rate that warm the API, and a CHECKPOINT; "visible" is the commit time of the worker's write of \`search.blocks\` that holds the PATCH's version or newer (\`pg_xact_commit_timestamp(xmin)\`, read by a poll of the pending blocks every 10 ms).`, '');
    L.push(`| PATCHes | seen in search | errors | p50 | p99 | max | spans exported | peak RSS API | peak RSS worker |`);
    L.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    L.push(`| ${fmt(e.sent)} | ${fmt(e.visible)} | ${e.errors} | ${fmt(percentile(e.samples, 50), 1)} ms | ${fmt(percentile(e.samples, 99), 1)} ms | ${fmt(Math.max(...e.samples), 1)} ms | ${fmt(e.spans)} | ${fmt(e.apiRssMb)} MB | ${fmt(e.workerRssMb)} MB |`);
    L.push('', 'Where the time goes:', '');
    L.push('| part | p50 | p99 |');
    L.push('|---|---:|---:|');
    L.push(`| due → PATCH response (the API: one statement for the change and its outbox event) | ${fmt(percentile(e.responses, 50), 1)} ms | ${fmt(percentile(e.responses, 99), 1)} ms |`);
    L.push(`| PATCH response → visible (the outbox: notify, claim, search write, commit) | ${fmt(percentile(e.afterResponse, 50), 1)} ms | ${fmt(percentile(e.afterResponse, 99), 1)} ms |`);
    L.push('');
    if (e.cpuUsPerPatch) {
      const c = e.cpuUsPerPatch;
      const all = e2eLoad(r, e);
      L.push(`CPU per PATCH (/proc, over the run and its drain): API ${fmt(c.api)} µs, worker ${fmt(c.worker)} µs, Postgres ${fmt(c.postgres)} µs, the load generator thread ${fmt(c.load ?? NaN)} µs, the rest of this bench process (the poll of search.blocks, the OTLP receiver) ${fmt(c.bench)} µs; of Postgres's, the bench's poll ≈ ${fmt(c.pollPg ?? NaN)} µs (its statements' execution time). In all ${fmt(all?.totalUs ?? NaN)} µs per PATCH: at ${fmt(e.rate)} PATCH/s, ${fmt((all?.share ?? NaN) * 100)}% of the machine's ${coresOf(r)} cores.`, '');
    }
    if (e.errorKinds && e.errors) L.push(`Failed PATCHes by cause: ${Object.entries(e.errorKinds).map(([k, n]) => `${k} ×${n}`).join(', ')}.`, '');
    if (e.spansPerPatch && Object.keys(e.spansPerPatch).length > 0) {
      L.push('Spans exported per PATCH (API and worker): ' + Object.entries(e.spansPerPatch).sort((a, b) => b[1] - a[1]).map(([n, c]) => `\`${n}\` ${fmt(c, 2)}`).join(', '), '');
    }
  }
  if (r.api) {
    const a = r.api;
    L.push(`## 5. API throughput: PATCH, autocannon, ${a.connections} connections, ${a.seconds} s per run after a 2 s warm-up, the PATCHed table vacuumed before each, tracing on (100%) vs off, alternated`, '');
    L.push('| tracing | req/s (median) | runs | peak RSS API |');
    L.push('|---|---:|---|---:|');
    L.push(`| off | ${fmt(median(a.off))} | ${a.off.map((n) => fmt(n)).join(', ')} | ${fmt(a.apiRssMb.off)} MB |`);
    L.push(`| on | ${fmt(median(a.on))} | ${a.on.map((n) => fmt(n)).join(', ')} | ${fmt(a.apiRssMb.on)} MB |`);
    L.push('', `Ratio on ÷ off: ${fmt(x(median(a.on), median(a.off)), 2)}. autocannon runs in the bench process on the same 2 cores as the API and Postgres.`, '');
  }

  L.push('## 6. Memory: peak RSS (VmHWM)', '');
  L.push('The traced drains (`drain traced …`) run with `OTEL_BSP_MAX_QUEUE_SIZE=65536` so that no span is dropped while the backlog drains in a few seconds; the spans waiting for export hold part of their extra memory, the old generation\'s growth between full collections the rest (decision 0024, which itemizes a worker\'s peak: `node apps/wordloom/dist/bench/e2eRssAb.js` prints it). With the default of @loomtrace/otlp (16,384 spans; the SDK has 2,048, which dropped about a tenth of the spans at 100% while a backlog drained) a drain of this size could still drop spans instead of holding them.', '');
  L.push('| process | peak RSS |');
  L.push('|---|---:|');
  for (const [k, v] of Object.entries(r.workerRssMb)) L.push(`| ${k} | ${fmt(v)} MB |`);
  L.push('');

  L.push('## Targets (issue 14; issue 2 for the drain floor)', '');
  const g1 = rate('graphile:1');
  const g2 = rate('graphile:2');
  const l1 = rate('loomtrace:1');
  const l2 = rate('loomtrace:2');
  L.push(`- Drain ≥ 20,000 events/s (issue 2), 1 process: ${verdict(l1 >= 20_000, `${fmt(l1)}/s`)}`);
  L.push(`- Drain with tracing off ≥ 2.0× graphile-worker fast settings: 1 process ${verdict(x(l1, g1) >= 2, `${fmt(x(l1, g1), 2)}×`)}; 2 processes ${verdict(x(l2, g2) >= 2, `${fmt(x(l2, g2), 2)}×`)}`);
  if (t) {
    const off = median(t.rates['off'] ?? []);
    const on100 = median(t.rates['on100'] ?? []);
    const on10 = median(t.rates['on10'] ?? []);
    const gw = median(t.rates['graphile'] ?? []);
    L.push(`- Traced 100% ≥ 1.0× graphile-worker untraced (issue 6): ${verdict(x(on100, gw) >= 1, `${fmt(x(on100, gw), 2)}×`)}`);
    L.push(`- Traced ÷ untraced drain ≥ 0.80 at 100%: ${verdict(x(on100, off) >= 0.8, fmt(x(on100, off), 2))}; ≥ 0.95 at 10% parent-based: ${verdict(x(on10, off) >= 0.95, fmt(x(on10, off), 2))}`);
  }
  const lt = r.latency['loomtrace'] ?? [];
  const gl = r.latency['graphile'] ?? [];
  if (lt.length && gl.length) {
    L.push(`- Pick-up p50 and p99 no worse than graphile-worker: p50 ${verdict(percentile(lt, 50) <= percentile(gl, 50), `${fmt(percentile(lt, 50), 2)} vs ${fmt(percentile(gl, 50), 2)} ms`)}; p99 ${verdict(percentile(lt, 99) <= percentile(gl, 99), `${fmt(percentile(lt, 99), 2)} vs ${fmt(percentile(gl, 99), 2)} ms`)}`);
  }
  for (const e of r.e2e.filter((e) => e.tracing !== false)) L.push(`- End to end p99 ≤ 25 ms at ${fmt(e.rate)} PATCH/s: ${verdict(percentile(e.samples, 99) <= 25, `${fmt(percentile(e.samples, 99), 1)} ms`)}`);
  if (r.api) L.push(`- API PATCH throughput traced ≥ 0.90× untraced: ${verdict(x(median(r.api.on), median(r.api.off)) >= 0.9, `${fmt(x(median(r.api.on), median(r.api.off)), 2)}×`)}`);
  // The target is about measurements 1 (drain) and 4 (end to end); the traced drains hold a
  // 65,536-span export queue on purpose and are shown apart.
  const workerPeaks = Object.entries(r.workerRssMb).filter(([k]) => k.startsWith('drain loomtrace') || /^e2e .*worker$/.test(k)).map(([, v]) => v);
  L.push(`- Worker peak RSS ≤ 150 MB (issue 6; during 1 and 4): ${verdict(Math.max(...workerPeaks) <= 150, `highest ${fmt(Math.max(...workerPeaks))} MB`)}`);
  L.push('');
  L.push(...analysis(r));
  return L.join('\n');
}
