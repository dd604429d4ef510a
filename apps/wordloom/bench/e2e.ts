/**
 * The service-level benchmarks, with the real processes (dist/src/cli/api.js and worker.js):
 * end to end (PATCH → visible in the search projection) at a steady rate with tracing on, and
 * PATCH throughput with tracing on and off (autocannon).
 */
import { createRequire } from 'node:module';
import pg from 'pg';
import { startApi, startWorker, type Proc } from '../test/support/procs.js';
import { epochMs, fmt, peakRssMb, percentile, sleep } from './env.js';
import { startReceiver, type Receiver } from './otlpReceiver.js';
import { E2eCost, type CpuPerPatch, type StatementCost } from './e2eCost.js';
import { PgSampler, stallTimeline } from './e2eDiag.js';
import type { LoadConfig, LoadMessage } from './e2eLoad.js';
import { commitTimestamps, Visibility } from './e2eVisible.js';
import { Worker } from 'node:worker_threads';
import { startLoopProbe, type LoopProbeData } from './loopProbe.js';
import type { MemProbeData } from './memProbe.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const require = createRequire(import.meta.url);
type AutocannonResult = { requests: { average: number }; non2xx: number; errors: number; latency: { p50: number; p99: number } };
const autocannon = require('autocannon') as (opts: Record<string, unknown>) => Promise<AutocannonResult>;

const BLOCKS = 200;

/** BENCH_E2E_TRACING=off: the end-to-end runs untraced, to see what tracing adds to them. */
const E2E_TRACING_DEFAULT = process.env['BENCH_E2E_TRACING'] !== 'off';

function tracingEnv(rx: Receiver, service: string, tracing = true): Record<string, string> {
  if (!tracing) return untraced(service);
  return {
    OTEL_SERVICE_NAME: service,
    OTEL_TRACES_EXPORTER: 'otlp',
    OTEL_EXPORTER_OTLP_ENDPOINT: rx.url,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_TRACES_SAMPLER: 'parentbased_always_on',
    // The batch span processor's defaults, as a deployment would run it.
    ...quiet(service),
  };
}
/**
 * The API's per-request info logs would go through a pipe to this process: warnings only.
 * The worker logs at info (it says little, and the harness waits for its start line).
 * Metrics on an ephemeral port, so that several processes can run.
 */
function quiet(service: string): Record<string, string> {
  return { LOG_LEVEL: service.includes('api') ? 'warn' : 'info', METRICS_PORT: '0' };
}
/** A process with the OpenTelemetry SDK disabled. */
const untraced = (service: string): Record<string, string> => ({ OTEL_SDK_DISABLED: 'true', ...quiet(service) });
const tracingOff = untraced('wordloom-api');

async function json<T>(res: Response): Promise<T> {
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** A library, a book and `n` blocks through the API; returns the block ids. */
async function seed(apiUrl: string, n = BLOCKS): Promise<string[]> {
  const post = (p: string, body: unknown) => fetch(`${apiUrl}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const lib = await json<{ id: string }>(await post('/api/v1/libraries', { name: 'bench library' }));
  const book = await json<{ id: string }>(await post('/api/v1/books', { library_id: lib.id, title: 'bench book' }));
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const b = await json<{ id: string }>(await post('/api/v1/blocks', { book_id: book.id, block_type: 'text', content: `bench block ${i}`, position: i }));
    ids.push(b.id);
  }
  return ids;
}

async function waitForSearch(db: pg.Client, n: number): Promise<void> {
  for (const deadline = Date.now() + 60_000; ; await sleep(50)) {
    const { rows } = await db.query<{ n: number }>('select count(*)::int as n from search.blocks');
    if (rows[0]!.n >= n) return;
    if (Date.now() > deadline) throw new Error('seeded blocks did not reach search');
  }
}

/** Until the warm-up's events are all processed, then a moment for the worker to go idle. */
async function waitForQueue(db: pg.Client): Promise<void> {
  for (const deadline = Date.now() + 60_000; ; await sleep(50)) {
    const { rows } = await db.query<{ n: number }>('select count(*)::int as n from loomtrace.outbox_queue');
    if (rows[0]!.n === 0) break;
    if (Date.now() > deadline) throw new Error('the warm-up did not drain');
  }
  await sleep(500);
}

async function truncate(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('truncate wordloom.blocks, wordloom.books, wordloom.libraries, search.blocks, loomtrace.outbox, loomtrace.outbox_attempts').catch(() => undefined);
  await c.end();
}

export interface E2eResult {
  rate: number;
  /** Whether the API and the worker ran traced (100 %); absent in reports written before it was recorded: traced. */
  tracing?: boolean;
  seconds: number;
  sent: number;
  visible: number;
  errors: number;
  samples: number[];
  responses: number[];
  afterResponse: number[];
  apiRssMb: number;
  workerRssMb: number;
  spans: number;
  /** Spans exported per PATCH, by name (API and worker together). */
  spansPerPatch?: Record<string, number>;
  /** The failed PATCHes by cause: `HTTP <status> <code>` or the client's error code. */
  errorKinds?: Record<string, number>;
  /** µs of CPU per PATCH by process, over the open-loop part and the drain after it. */
  cpuUsPerPatch?: CpuPerPatch;
  /** Statements Postgres ran per PATCH (API, worker and the poller), with their mean time. */
  statements?: StatementCost[];
  /** With `memory`: what the worker's memory was made of (bench/memProbe.ts), and when the load started. */
  workerMemory?: MemProbeData & { idleAt: number; goAt: number };
}

export interface E2eOptions {
  /** Stall timeline: event-loop delay and GC of every process, server waits sampled (a cost of its own). */
  diagnose?: boolean;
  /** Seconds of PATCHes at the rate before the clock starts (JIT, connections): 3. */
  warmupSeconds?: number;
  /** Keep-alive connections of the load generator: 64. */
  connections?: number;
  /** Poll of search.blocks for the pending blocks, ms: 10 (1 without commit timestamps). */
  pollMs?: number;
  /** The API and the worker traced at 100 % (default; BENCH_E2E_TRACING=off turns it off), or untraced. */
  tracing?: boolean;
  /** Sample the worker's memory (bench/memProbe.ts): RSS split, V8 heap spaces, at rest and at the peak. */
  memory?: boolean;
  /** Variables laid over the worker's (an A/B variant: BENCH_NODE_FLAGS, OTEL_BSP_*, …). */
  workerEnv?: Record<string, string>;
  /** Another build's worker.js (an absolute path, for A/B against a base build). */
  workerScript?: string;
}

/**
 * `env` with one of the benches' probes preloaded (`--import` laid over its NODE_OPTIONS, or this
 * process's), told by `variable` where to write: bench/loopProbe.js (LOOMTRACE_LOOP_PROBE) or
 * bench/memProbe.js (LOOMTRACE_MEM_PROBE). No `file`: `env` as it is.
 */
function withProbe(env: Record<string, string>, probe: 'loopProbe' | 'memProbe', variable: string, file: string | undefined): Record<string, string> {
  if (!file) return env;
  const module = pathToFileURL(path.join(path.dirname(new URL(import.meta.url).pathname), `${probe}.js`)).href;
  const base = env['NODE_OPTIONS'] ?? process.env['NODE_OPTIONS'] ?? '';
  return { ...env, NODE_OPTIONS: `${base} --import=${module}`.trim(), [variable]: file };
}
const loopProbeFile = (dir: string | undefined, name: string, on: boolean | undefined) => (on && dir ? path.join(dir, `${name}.json`) : undefined);
function readProbe<T = LoopProbeData>(dir: string | undefined, name: string): T | undefined {
  try {
    return dir ? (JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8')) as T) : undefined;
  } catch {
    return undefined;
  }
}

export async function endToEnd(url: string, log: (s: string) => void, rate = 200, seconds = 30, opts: E2eOptions = {}): Promise<E2eResult> {
  const rx = await startReceiver();
  const procs: Proc[] = [];
  const db = new pg.Client({ connectionString: url });
  const probeDir = opts.diagnose || opts.memory ? mkdtempSync(path.join(tmpdir(), 'loomtrace-e2e-')) : undefined;
  const benchProbe = opts.diagnose ? startLoopProbe() : undefined;
  const sampler = opts.diagnose ? new PgSampler(url) : undefined;
  let load: Worker | undefined;
  try {
    // Migrate (the API does) before truncating.
    const api0 = await startApi(url, tracingOff);
    await api0.stop();
    await truncate(url);
    const tracing = opts.tracing ?? E2E_TRACING_DEFAULT;
    const api = await startApi(url, withProbe(tracingEnv(rx, 'wordloom-api', tracing), 'loopProbe', 'LOOMTRACE_LOOP_PROBE', loopProbeFile(probeDir, 'api', opts.diagnose)));
    procs.push(api);
    const workerEnv = withProbe({ ...tracingEnv(rx, 'wordloom-worker', tracing), ...opts.workerEnv }, 'loopProbe', 'LOOMTRACE_LOOP_PROBE', loopProbeFile(probeDir, 'worker', opts.diagnose));
    const worker = await startWorker(url, withProbe(workerEnv, 'memProbe', 'LOOMTRACE_MEM_PROBE', opts.memory ? path.join(probeDir!, 'worker-mem.json') : undefined), opts.workerScript);
    procs.push(worker);
    // With `memory`: a moment at rest, so that the series holds the started worker before any load.
    if (opts.memory) await sleep(1_500);
    const idleAt = Date.now();
    await db.connect();
    // About one edit per block per second, whatever the rate: a block's versions rarely overtake a poll.
    const nBlocks = Math.max(BLOCKS, rate);
    const ids = await seed(api.url, nBlocks);
    await waitForSearch(db, nBlocks);

    // The load generator runs in its own thread; it warms the API up first (untimed).
    const config: LoadConfig = { url: api.url, ids, rate, seconds, warmupSeconds: opts.warmupSeconds ?? 3, connections: opts.connections ?? 64 };
    load = new Worker(new URL('./e2eLoad.js', import.meta.url), { workerData: config });
    const visible = new Visibility(db, ids, await commitTimestamps(db));
    const done = new Promise<LoadMessage & { t: 'done' }>((resolve, reject) => {
      load!.on('error', reject);
      load!.on('message', (m: LoadMessage) => {
        if (m.t === 'rows') visible.add(m.rows);
        else if (m.t === 'done') resolve(m);
      });
    });
    await new Promise<void>((resolve, reject) => {
      load!.once('error', reject);
      load!.once('message', (m: LoadMessage) => (m.t === 'warm' ? resolve() : reject(new Error(`load: ${m.t}`))));
    });
    await waitForQueue(db);
    // As the API throughput runs do: a checkpoint of what the earlier sections wrote does not land in the run.
    await db.query('checkpoint').catch(() => undefined);
    rx.reset();
    const cost = new E2eCost(url, { api: api.proc.pid!, worker: worker.proc.pid! });
    await cost.start();
    await sampler?.start();
    const poller = visible.poll(opts.pollMs ?? 10);
    const start = epochMs();
    const goAt = Date.now();
    load.postMessage('go');
    const gen = await done;
    visible.finish(Date.now() + 30_000);
    await poller;
    await sampler?.stop();
    const { cpu: cpuUsPerPatch, statements, breakdown } = await cost.stop(gen.sent, gen.cpuUs);
    // BENCH_BREAKDOWN=1: Postgres's CPU per PATCH by process kind, and per statement (bench/pgBreakdown.ts).
    for (const l of breakdown ?? []) log(l.replaceAll('/event', '/PATCH'));
    const apiRssMb = peakRssMb(api.proc.pid!) ?? NaN;
    const workerRssMb = peakRssMb(worker.proc.pid!) ?? NaN;
    await worker.stop();
    await api.stop();
    const v = visible;
    if (opts.diagnose) {
      const probes = { api: readProbe(probeDir, 'api'), worker: readProbe(probeDir, 'worker'), bench: benchProbe?.dump() };
      for (const line of stallTimeline(v.timed, start, 25, probes, sampler)) log(line);
    }
    log(`  load generator thread: event-loop delay p99 ${fmt(gen.loopDelayP99Ms, 1)} ms, max ${fmt(gen.loopDelayMaxMs, 1)} ms`);
    const byName = rx.count();
    const spans = [...byName.values()].reduce((a, b) => a + b, 0);
    const spansPerPatch = Object.fromEntries([...byName].map(([n, c]) => [n, c / gen.sent]));
    const r: E2eResult = {
      rate, tracing, seconds, sent: gen.sent, visible: v.samples.length, errors: v.errors, samples: v.samples, responses: v.responses, afterResponse: v.afterResponse,
      apiRssMb, workerRssMb, spans, spansPerPatch, errorKinds: v.errorKinds, cpuUsPerPatch, statements,
    };
    const mem = opts.memory ? readProbe<MemProbeData>(probeDir, 'worker-mem') : undefined;
    if (mem) r.workerMemory = { ...mem, idleAt, goAt };
    logResult(r, log);
    return r;
  } finally {
    await load?.terminate();
    for (const p of procs) await p.stop().catch(() => undefined);
    await db.end().catch(() => undefined);
    await rx.close();
    benchProbe?.stop();
    if (probeDir) rmSync(probeDir, { recursive: true, force: true });
  }
}

function logResult(r: E2eResult, log: (s: string) => void): void {
  const { samples, responses, afterResponse } = r;
  log(`  ${fmt(r.sent)} PATCHes, ${fmt(r.visible)} seen in search, ${r.errors} errors: p50 ${fmt(percentile(samples, 50), 1)} ms, p99 ${fmt(percentile(samples, 99), 1)} ms (PATCH response alone: p50 ${fmt(percentile(responses, 50), 1)} ms, p99 ${fmt(percentile(responses, 99), 1)} ms; response → visible: p50 ${fmt(percentile(afterResponse, 50), 1)} ms, p99 ${fmt(percentile(afterResponse, 99), 1)} ms); peak RSS api ${fmt(r.apiRssMb)} MB, worker ${fmt(r.workerRssMb)} MB; ${fmt(r.spans)} spans`);
  if (r.errors) log(`  errors: ${Object.entries(r.errorKinds ?? {}).map(([k, n]) => `${k} ×${n}`).join(', ')}`);
  const c = r.cpuUsPerPatch!;
  log(`  CPU per PATCH: API ${fmt(c.api)} µs, worker ${fmt(c.worker)} µs, Postgres ${fmt(c.postgres)} µs (of it the bench's poll ≈ ${fmt(c.pollPg ?? NaN)} µs), load generator thread ${fmt(c.load ?? NaN)} µs, rest of the bench process (poll, receiver) ${fmt(c.bench)} µs`);
  for (const st of (r.statements ?? []).slice(0, 14)) log(`    ${fmt(st.perPatch, 2).padStart(6)} × ${fmt(st.meanMs, 3).padStart(7)} ms  ${st.query}`);
}

export interface ApiResult {
  on: number[];
  off: number[];
  connections: number;
  seconds: number;
  apiRssMb: { on: number; off: number };
}

export async function apiThroughput(url: string, runs: number, log: (s: string) => void, seconds = 10, connections = 16): Promise<ApiResult> {
  const rx = await startReceiver();
  const out: ApiResult = { on: [], off: [], connections, seconds, apiRssMb: { on: 0, off: 0 } };
  try {
    const api0 = await startApi(url, tracingOff);
    await truncate(url);
    const ids = await seed(api0.url);
    await api0.stop();
    for (let rep = 0; rep < runs; rep++) {
      for (const mode of rep % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        await c.query('truncate loomtrace.outbox, loomtrace.outbox_queue, loomtrace.outbox_leases');
        // Each run leaves ~15,000 dead versions of the PATCHed rows: without a vacuum every run
        // started on a more bloated table than the one before, and the rates fell run after run
        // (1,787 → 989 req/s over six runs in one suite), which the alternation's medians do not cancel.
        await c.query('vacuum wordloom.blocks');
        await c.query('checkpoint');
        await c.end();
        rx.reset();
        const api = await startApi(url, mode === 'on' ? tracingEnv(rx, 'wordloom-api') : tracingOff);
        try {
          let i = 0;
          const load = (duration: number) =>
            autocannon({
              url: api.url,
              connections,
              duration,
              requests: [
                {
                  method: 'PATCH',
                  headers: { 'content-type': 'application/json' },
                  setupRequest: (req: Record<string, unknown>) => {
                    const n = i++;
                    return { ...req, path: `/api/v1/blocks/${ids[n % ids.length]}`, body: JSON.stringify({ content: `bench edit ${n} quick brown fox` }) };
                  },
                },
              ],
            });
          // Warm-up, not counted: a freshly started process runs its first seconds unoptimized.
          await load(2);
          const r = await load(seconds);
          out[mode].push(r.requests.average);
          out.apiRssMb[mode] = Math.max(out.apiRssMb[mode], peakRssMb(api.proc.pid!) ?? 0);
          log(`  tracing ${mode.padEnd(3)} ${fmt(r.requests.average).padStart(6)} req/s  (p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}, errors ${r.errors})`);
        } finally {
          await api.stop();
        }
      }
    }
    return out;
  } finally {
    await rx.close();
  }
}
