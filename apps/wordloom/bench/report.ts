/** Renders docs/BENCHMARKS.md from one suite run: figures, ratios, and each target met or missed. */
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
  L.push(`- Machine: ${r.machine}. The machine is shared with other work: figures are noisy, compare the ratios.`);
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
    L.push('The worker process starts the real OpenTelemetry SDK exactly as `dist/src/cli/worker.js` does (src/cli/telemetry.ts: NodeSDK, pg instrumentation, OTLP http/protobuf; the SDK\'s spans and each sampled event\'s five spans encoded to OTLP by src/tracing/otlp, decisions 0007 and 0009) and exports to a local OTLP receiver that counts every span afterwards. Each event carries its own producer trace context (as the API stores it), sampled for all events (100%) or one in ten (10%, `parentbased_traceidratio`).', '');
    const cpu = (k: string) => fmt(median(t.cpuUs[k] ?? []), 1);
    L.push('| mode | events/s | ratio to tracing off | worker CPU per event (from go to shutdown, flush included) | spans received per run |');
    L.push('|---|---:|---:|---:|---:|');
    L.push(`| tracing off | ${fmt(off)} | 1.00 | ${cpu('off')} µs | – |`);
    L.push(`| tracing on, 100% | ${fmt(on100)} | ${fmt(x(on100, off), 2)} | ${cpu('on100')} µs | ${fmt(median(t.spans['on100'] ?? []))} |`);
    L.push(`| tracing on, 10% parent-based | ${fmt(on10)} | ${fmt(x(on10, off), 2)} | ${cpu('on10')} µs | ${fmt(median(t.spans['on10'] ?? []))} |`);
    L.push(`| graphile-worker, untraced (same alternation) | ${fmt(gw)} | ${fmt(x(gw, off), 2)} | ${cpu('graphile')} µs | – |`);
    L.push('', 'Spans per event at 100%: ' + Object.entries(t.spansPerEvent).sort().map(([n, c]) => `\`${n}\` ${fmt(c, 3)}`).join(', '), '');
  }

  L.push('## 3. Pick-up latency: enqueue commit → handler start, idle worker', '');
  L.push(`${r.samples} samples each; the producer (this process) times from just before its autocommit enqueue statement to the handler's start in the worker process (same host clock), with a 15–25 ms pause between samples. The three systems' workers run side by side the whole time and take turns sample by sample.`, '');
  L.push('| system | p50 | p99 | max |');
  L.push('|---|---:|---:|---:|');
  for (const s of SYSTEMS) {
    const v = r.latency[s] ?? [];
    L.push(`| ${LABEL[s]} | ${fmt(percentile(v, 50), 2)} ms | ${fmt(percentile(v, 99), 2)} ms | ${fmt(Math.max(...v), 2)} ms |`);
  }
  L.push('');

  for (const e of r.e2e) {
    L.push(`## 4. End to end: PATCH /api/v1/blocks/:id → visible in search, ${e.rate} req/s for ${e.seconds} s, tracing on (100%)`, '');
    L.push(`Real processes (dist/src/cli/api.js and worker.js, default settings, OTLP http/protobuf to a local receiver). Open loop: request i is due at start + i/${e.rate} s and is timed from then; "visible" is the first poll (every ~1 ms) of \`search.blocks\` that shows the block at the PATCH's version or newer.`, '');
    L.push(`| PATCHes | seen in search | errors | p50 | p99 | max | spans exported | peak RSS API | peak RSS worker |`);
    L.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
    L.push(`| ${fmt(e.sent)} | ${fmt(e.visible)} | ${e.errors} | ${fmt(percentile(e.samples, 50), 1)} ms | ${fmt(percentile(e.samples, 99), 1)} ms | ${fmt(Math.max(...e.samples), 1)} ms | ${fmt(e.spans)} | ${fmt(e.apiRssMb)} MB | ${fmt(e.workerRssMb)} MB |`);
    L.push('', 'Where the time goes:', '');
    L.push('| part | p50 | p99 |');
    L.push('|---|---:|---:|');
    L.push(`| due → PATCH response (the API: transaction with the outbox insert, commit) | ${fmt(percentile(e.responses, 50), 1)} ms | ${fmt(percentile(e.responses, 99), 1)} ms |`);
    L.push(`| PATCH response → visible (the outbox: notify, claim, search write, poll) | ${fmt(percentile(e.afterResponse, 50), 1)} ms | ${fmt(percentile(e.afterResponse, 99), 1)} ms |`);
    L.push('');
    if (e.spansPerPatch) {
      L.push('Spans exported per PATCH (API and worker): ' + Object.entries(e.spansPerPatch).sort((a, b) => b[1] - a[1]).map(([n, c]) => `\`${n}\` ${fmt(c, 2)}`).join(', '), '');
    }
  }
  if (r.api) {
    const a = r.api;
    L.push(`## 5. API throughput: PATCH, autocannon, ${a.connections} connections, ${a.seconds} s per run, tracing on (100%) vs off, alternated`, '');
    L.push('| tracing | req/s (median) | runs | peak RSS API |');
    L.push('|---|---:|---|---:|');
    L.push(`| off | ${fmt(median(a.off))} | ${a.off.map((n) => fmt(n)).join(', ')} | ${fmt(a.apiRssMb.off)} MB |`);
    L.push(`| on | ${fmt(median(a.on))} | ${a.on.map((n) => fmt(n)).join(', ')} | ${fmt(a.apiRssMb.on)} MB |`);
    L.push('', `Ratio on ÷ off: ${fmt(x(median(a.on), median(a.off)), 2)}. autocannon runs in the bench process on the same 2 cores as the API and Postgres.`, '');
  }

  L.push('## 6. Memory: peak RSS (VmHWM)', '');
  L.push('The traced drains (`drain traced …`) run with `OTEL_BSP_MAX_QUEUE_SIZE=65536` so that no span is dropped while the backlog drains in a few seconds; the spans waiting for export are what their extra memory holds. With the SDK default (2,048) memory stays lower and spans are dropped instead.', '');
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
    L.push(`- Traced 100% ≥ 1.0× graphile-worker untraced: ${verdict(x(on100, gw) >= 1, `${fmt(x(on100, gw), 2)}×`)}`);
    L.push(`- Traced ÷ untraced drain ≥ 0.80 at 100%: ${verdict(x(on100, off) >= 0.8, fmt(x(on100, off), 2))}; ≥ 0.95 at 10% parent-based: ${verdict(x(on10, off) >= 0.95, fmt(x(on10, off), 2))}`);
  }
  const lt = r.latency['loomtrace'] ?? [];
  const gl = r.latency['graphile'] ?? [];
  if (lt.length && gl.length) {
    L.push(`- Pick-up p50 and p99 no worse than graphile-worker: p50 ${verdict(percentile(lt, 50) <= percentile(gl, 50), `${fmt(percentile(lt, 50), 2)} vs ${fmt(percentile(gl, 50), 2)} ms`)}; p99 ${verdict(percentile(lt, 99) <= percentile(gl, 99), `${fmt(percentile(lt, 99), 2)} vs ${fmt(percentile(gl, 99), 2)} ms`)}`);
  }
  for (const e of r.e2e) L.push(`- End to end p99 ≤ 25 ms at ${fmt(e.rate)} PATCH/s: ${verdict(percentile(e.samples, 99) <= 25, `${fmt(percentile(e.samples, 99), 1)} ms`)}`);
  if (r.api) L.push(`- API PATCH throughput traced ≥ 0.90× untraced: ${verdict(x(median(r.api.on), median(r.api.off)) >= 0.9, `${fmt(x(median(r.api.on), median(r.api.off)), 2)}×`)}`);
  // The target is about measurements 1 (drain) and 4 (end to end); the traced drains hold a
  // 65,536-span export queue on purpose and are shown apart.
  const workerPeaks = Object.entries(r.workerRssMb).filter(([k]) => k.startsWith('drain loomtrace') || /^e2e .*worker$/.test(k)).map(([, v]) => v);
  L.push(`- Worker peak RSS ≤ 150 MB (during 1 and 4): ${verdict(Math.max(...workerPeaks) <= 150, `highest ${fmt(Math.max(...workerPeaks))} MB`)}`);
  L.push('');
  L.push(...analysis(r));
  return L.join('\n');
}

/** Why the misses happen and what would close them, with this run's figures. */
function analysis(r: Report): string[] {
  const L: string[] = ['## Why, and what would close the gaps', ''];
  const t = r.tracing;
  if (t) {
    const cpu = (k: string) => median(t.cpuUs[k] ?? []);
    const off = cpu('off');
    const on100 = cpu('on100');
    const on10 = cpu('on10');
    const spans = Object.entries(t.spansPerEvent).filter(([n]) => !n.startsWith('batch') && !n.startsWith('pg')).reduce((a, [, c]) => a + c, 0);
    const perSpan = (on100 - off) / Math.max(1, spans);
    const d1 = x(median(r.drain['loomtrace:1'] ?? []), median(r.drain['graphile:1'] ?? []));
    const d2 = x(median(r.drain['loomtrace:2'] ?? []), median(r.drain['graphile:2'] ?? []));
    L.push(`- **Drain.** ${fmt(d1, 2)}× graphile-worker with one worker process and ${fmt(d2, 2)}× with two (target 2.0×). Since migration 000040 (decision 0008) a pending event waits as a narrow row in \`outbox_queue\` that the claim deletes, each batch has one lease row, and the claim and the ack update the outbox row in place (HOT: no index entries); before it both updates wrote a new row version into every index and the ratio was 1.11× / 1.03×. The claim → ack cycle alone now runs 2.4× the old layout (\`node dist/bench/queueLayout.js\`), so what is left of each event is spread over both sides: the loomtrace worker process spends ${fmt(off, 1)} µs of CPU per event (graphile-worker's: ${fmt(cpu('graphile'), 1)} µs), mostly the driver parsing the claimed rows (each carries its payload and trace context) and garbage collection, and Postgres a comparable amount (the queue row's delete, two HOT updates with their WAL, the commits), on the same 2 cores. A fully successful batch is acked by its lease token (the lease row names its events), so the ack no longer sends or reads back 500 ids (with the array-mode claim: −12% worker CPU per event, +6% drain, A/B). Measured and not taken: \`synchronous_commit=off\` for the queue's own statements (+5–8%; it would be safe — a Postgres crash could only re-deliver, never lose, an event — but it changes what an acked row promises); batch 1,000 instead of 500 (no gain); a third batch in flight (no gain). What would close the rest: fewer bytes per claimed row (the payload fetched by the sink only when it needs it, at the cost of a second query for sinks that do), or Postgres on its own cores.`);
    L.push(`- **Tracing at 100%.** Each sampled event keeps the ${fmt(spans, 1)} spans design.md asks for (process, queue wait, claim, write, ack) plus its share of the batch trace. Since decision 0007 they skip the SDK's Span objects, span processor and OTLP transformer: the worker encodes them straight to OTLP (the same spans, field by field, checked by test/event-spans.test.ts) and posts them to the same endpoint. Measured here: ${fmt(on100 - off, 1)} µs of worker CPU per event over untraced, ${fmt(perSpan, 1)} µs per span with export (on the SDK path it was ~77 µs per event, ~15 µs per span). What remains: ~3 µs per event of encoding (\`node dist/bench/eventSpans.js\`), the HTTP export of ~1.8 KB per event and the receiver decoding it on the same 2 cores, garbage collection, and the JIT warming the traced path inside a drain that lasts well under a second (with 100,000 events per run the ratio was 0.73 at 100% and 0.95 at 10%, one run, decision 0007).`);
    L.push(`- **Tracing at 10%.** ${fmt(on10 - off, 1)} µs per event over untraced, of which about ${fmt((on100 - off) / 10, 1)} µs is the sampled tenth; the rest is the SDK being on at all (the AsyncLocalStorage context manager on every promise, the pg instrumentation on the claim and ack, the batch spans). A change its producer sampled out costs no span at all with a parent-based sampler.`);
  }
  for (const e of r.e2e) {
    L.push(`- **End to end.** The API's PATCH response p99 is ${fmt(percentile(e.responses, 99), 1)} ms of the ${fmt(percentile(e.samples, 99), 1)} ms; from the response to visible in search takes p50 ${fmt(percentile(e.afterResponse, 50), 1)} ms, p99 ${fmt(percentile(e.afterResponse, 99), 1)} ms. The tail is the API process (Fastify, the transaction, the span export) on 2 cores shared with Postgres and the load generator, not the outbox.`);
  }
  L.push('- **Noise.** These machines are shared (see the load average above); absolute figures have moved by up to 2× between runs of the same thing on a busy machine. The ratios come from runs alternated within this one script; the CPU-per-event figures are the steadiest.');
  L.push('', 'Profiling aids: `BENCH_CHILD_ARGS="--cpu-prof --cpu-prof-dir=.loomtrace/prof" npm run bench` profiles the worker processes; `node dist/bench/queueLayout.js` times the claim → ack cycle alone in five table layouts (decision 0008); `node dist/bench/explainClaim.js` prints the plans; `node dist/bench/render.js` re-renders this file from the last run\'s figures (.loomtrace/bench-last.json).', '');
  return L;
}
