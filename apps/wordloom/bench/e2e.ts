/**
 * The service-level benchmarks, with the real processes (dist/src/cli/api.js and worker.js):
 * end to end (PATCH → visible in the search projection) at a steady rate with tracing on, and
 * PATCH throughput with tracing on and off (autocannon).
 */
import { Agent, request } from 'node:http';
import { createRequire } from 'node:module';
import pg from 'pg';
import { startApi, startWorker, type Proc } from '../test/support/procs.js';
import { epochMs, fmt, peakRssMb, percentile, sleep } from './env.js';
import { startReceiver, type Receiver } from './otlpReceiver.js';
import { E2eCost, type CpuPerPatch, type StatementCost } from './e2eCost.js';

const require = createRequire(import.meta.url);
type AutocannonResult = { requests: { average: number }; non2xx: number; errors: number; latency: { p50: number; p99: number } };
const autocannon = require('autocannon') as (opts: Record<string, unknown>) => Promise<AutocannonResult>;

const BLOCKS = 200;

function tracingEnv(rx: Receiver, service: string): Record<string, string> {
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
const tracingOff = { OTEL_SDK_DISABLED: 'true', ...quiet('wordloom-api') };

/**
 * One PATCH over node:http with a keep-alive agent and no cap on sockets (as fetch's default
 * dispatcher has none): a fraction of fetch's CPU per request in this process, which shares the
 * API's two cores. Resolves with the status and body; rejects with the socket's error.
 */
function patch(agent: Agent, url: URL, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, host: url.hostname, port: url.port, method: 'PATCH', path, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function json<T>(res: Response): Promise<T> {
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** A library, a book and BLOCKS blocks through the API; returns the block ids. */
async function seed(apiUrl: string): Promise<string[]> {
  const post = (p: string, body: unknown) => fetch(`${apiUrl}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const lib = await json<{ id: string }>(await post('/api/v1/libraries', { name: 'bench library' }));
  const book = await json<{ id: string }>(await post('/api/v1/books', { library_id: lib.id, title: 'bench book' }));
  const ids: string[] = [];
  for (let i = 0; i < BLOCKS; i++) {
    const b = await json<{ id: string }>(await post('/api/v1/blocks', { book_id: book.id, block_type: 'text', content: `bench block ${i}`, position: i }));
    ids.push(b.id);
  }
  return ids;
}

async function truncate(url: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  await c.query('truncate wordloom.blocks, wordloom.books, wordloom.libraries, search.blocks, loomtrace.outbox, loomtrace.outbox_attempts').catch(() => undefined);
  await c.end();
}

export interface E2eResult {
  rate: number;
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
}

export async function endToEnd(url: string, log: (s: string) => void, rate = 200, seconds = 30): Promise<E2eResult> {
  const rx = await startReceiver();
  const procs: Proc[] = [];
  const db = new pg.Client({ connectionString: url });
  try {
    // Migrate (the API does) before truncating.
    const api0 = await startApi(url, tracingOff);
    await api0.stop();
    await truncate(url);
    const api = await startApi(url, tracingEnv(rx, 'wordloom-api'));
    procs.push(api);
    const worker = await startWorker(url, tracingEnv(rx, 'wordloom-worker'));
    procs.push(worker);
    await db.connect();
    const ids = await seed(api.url);
    for (const deadline = Date.now() + 30_000; ; await sleep(50)) {
      const { rows } = await db.query<{ n: number }>('select count(*)::int as n from search.blocks');
      if (rows[0]!.n >= BLOCKS) break;
      if (Date.now() > deadline) throw new Error('seeded blocks did not reach search');
    }
    rx.reset();

    // Open loop: request i is due at start + i / rate, whatever the earlier ones are doing.
    const pending = new Map<string, { version: number; t0: number; tResp: number }[]>();
    /** From the PATCH's response to visible: the outbox's part (claim, write, commit, poll). */
    const afterResponse: number[] = [];
    const samples: number[] = [];
    /** PATCH response times from the due time, to tell the API's share from the worker's. */
    const responses: number[] = [];
    let errors = 0;
    const errorKinds: Record<string, number> = {};
    const failed = (kind: string) => {
      errors++;
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
    };
    let sent = 0;
    let polling = true;
    let drainDeadline = Infinity;
    const poller = (async () => {
      while (polling || pending.size > 0) {
        const blocks = [...pending.keys()];
        if (blocks.length === 0) {
          await sleep(1);
          continue;
        }
        const { rows } = await db.query<{ id: string; version: string }>({
          name: 'bench_visible',
          text: 'select block_id::text as id, version from search.blocks where block_id = any($1::uuid[])',
          values: [blocks],
        });
        const now = epochMs();
        for (const r of rows) {
          const list = pending.get(r.id);
          if (!list) continue;
          const v = Number(r.version);
          const keep = list.filter((p) => {
            if (p.version <= v) {
              samples.push(now - p.t0);
              afterResponse.push(Math.max(0, now - p.tResp));
              return false;
            }
            return true;
          });
          if (keep.length) pending.set(r.id, keep);
          else pending.delete(r.id);
        }
        if (!polling && Date.now() > drainDeadline) break;
        await sleep(1);
      }
    })();
    const cost = new E2eCost(url, { api: api.proc.pid!, worker: worker.proc.pid! });
    await cost.start();
    const total = rate * seconds;
    const start = epochMs();
    const inflight: Promise<void>[] = [];
    const agent = new Agent({ keepAlive: true, maxSockets: Infinity });
    const apiUrl = new URL(api.url);
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - epochMs();
      if (wait > 1) await sleep(wait);
      const id = ids[i % ids.length]!;
      sent++;
      inflight.push(
        patch(agent, apiUrl, `/api/v1/blocks/${id}`, JSON.stringify({ content: `bench edit ${i} quick brown fox` }))
          .then((res) => {
            if (res.status !== 200) {
              failed(`HTTP ${res.status} ${/"code":"([A-Z_]+)"/.exec(res.body)?.[1] ?? ''}`.trim());
              return;
            }
            const tResp = epochMs();
            const b = JSON.parse(res.body) as { version: number | string };
            responses.push(tResp - due);
            const list = pending.get(id) ?? [];
            list.push({ version: Number(b.version), t0: due, tResp });
            pending.set(id, list);
          })
          .catch((err: Error & { code?: string }) => {
            failed(`socket ${err.code ?? err.name}`);
          }),
      );
    }
    await Promise.all(inflight);
    agent.destroy();
    drainDeadline = Date.now() + 30_000;
    polling = false;
    await poller;
    const { cpu: cpuUsPerPatch, statements } = await cost.stop(sent);
    const apiRssMb = peakRssMb(api.proc.pid!) ?? NaN;
    const workerRssMb = peakRssMb(worker.proc.pid!) ?? NaN;
    await worker.stop();
    await api.stop();
    const byName = rx.count();
    const spans = [...byName.values()].reduce((a, b) => a + b, 0);
    const spansPerPatch = Object.fromEntries([...byName].map(([n, c]) => [n, c / sent]));
    const r: E2eResult = { rate, seconds, sent, visible: samples.length, errors, samples, responses, afterResponse, apiRssMb, workerRssMb, spans, spansPerPatch, errorKinds, cpuUsPerPatch, statements };
    log(`  ${fmt(sent)} PATCHes, ${fmt(samples.length)} seen in search, ${errors} errors: p50 ${fmt(percentile(samples, 50), 1)} ms, p99 ${fmt(percentile(samples, 99), 1)} ms (PATCH response alone: p50 ${fmt(percentile(responses, 50), 1)} ms, p99 ${fmt(percentile(responses, 99), 1)} ms; response → visible: p50 ${fmt(percentile(afterResponse, 50), 1)} ms, p99 ${fmt(percentile(afterResponse, 99), 1)} ms); peak RSS api ${fmt(apiRssMb)} MB, worker ${fmt(workerRssMb)} MB; ${fmt(spans)} spans`);
    if (errors) log(`  errors: ${Object.entries(errorKinds).map(([k, n]) => `${k} ×${n}`).join(', ')}`);
    const c = cpuUsPerPatch;
    log(`  CPU per PATCH: API ${fmt(c.api)} µs, worker ${fmt(c.worker)} µs, Postgres ${fmt(c.postgres)} µs, bench process (load, poll, receiver) ${fmt(c.bench)} µs; total ${fmt(c.api + c.worker + c.postgres + c.bench)} µs`);
    for (const st of statements.slice(0, 14)) log(`    ${fmt(st.perPatch, 2).padStart(6)} × ${fmt(st.meanMs, 3).padStart(7)} ms  ${st.query}`);
    return r;
  } finally {
    for (const p of procs) await p.stop().catch(() => undefined);
    await db.end().catch(() => undefined);
    await rx.close();
  }
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
        await c.query('checkpoint');
        await c.end();
        rx.reset();
        const api = await startApi(url, mode === 'on' ? tracingEnv(rx, 'wordloom-api') : tracingOff);
        try {
          let i = 0;
          const r = await autocannon({
            url: api.url,
            connections,
            duration: seconds,
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
