/**
 * Explorer benchmarks: OTLP ingest rate, time to return a 10,000-span trace, diagnosis time.
 *
 *   npx tsc -p . && node dist/bench/explorer-bench.js            (embedded Postgres in .loomtrace/bench-explorer-pg)
 *   DATABASE_URL=postgres://… node dist/bench/explorer-bench.js   (an existing server; creates database explorer_bench)
 *
 * Environment: BENCH_SPANS (default 200000 spans ingested), BENCH_CONCURRENCY (4 requests in flight).
 * Prints medians; the machine is shared, so compare medians and ratios, not single runs.
 */
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { startEmbeddedPostgres, portFree, type EmbeddedHandle } from '../src/db/embedded.js';
import { createPool, type Pool } from '@loomtrace/outbox';
import { migrateAll } from '../src/db/migrate.js';
import { compileExplorerOptions } from '@loomtrace/explorer';
import { startExplorer } from '@loomtrace/explorer';
import { ExportTraceServiceRequest } from '@loomtrace/explorer';
import { selectTraceJson } from '@loomtrace/explorer';
import { diagnose } from '@loomtrace/explorer';
import { wordloomPipelines } from '../src/pipeline.js';

const TOTAL = Number(process.env['BENCH_SPANS'] ?? 200_000);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 4);
const PER_REQUEST = 1_000;
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};
const p95 = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.95))]!;
};

async function database(): Promise<{ url: string; embedded?: EmbeddedHandle }> {
  let admin = process.env['DATABASE_URL'];
  let embedded: EmbeddedHandle | undefined;
  if (!admin) {
    let port = 56_500;
    while (!(await portFree(port))) port++;
    embedded = await startEmbeddedPostgres({ dataDir: path.resolve('.loomtrace', 'bench-explorer-pg'), port });
    admin = embedded.adminUrl;
  }
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query('drop database if exists explorer_bench with (force)');
  await c.query('create database explorer_bench');
  await c.end();
  const u = new URL(admin);
  u.pathname = '/explorer_bench';
  return { url: u.toString(), ...(embedded ? { embedded } : {}) };
}

const BENCH_BLOCK = '6f1c2d3e-0000-4000-8000-000000000001';

/** What the Node SDK sends as a resource. */
const RESOURCE = Object.entries({
  'service.name': 'bench',
  'service.instance.id': 'a1b2c3d4-0000-4000-8000-00000000000a',
  'host.name': 'bench-host',
  'host.arch': 'amd64',
  'os.type': 'linux',
  'process.pid': 4242,
  'process.runtime.name': 'nodejs',
  'process.runtime.version': process.versions.node,
  'telemetry.sdk.language': 'nodejs',
  'telemetry.sdk.name': 'opentelemetry',
  'telemetry.sdk.version': '2.11.0',
}).map(([key, v]) => ({ key, value: typeof v === 'number' ? { intValue: v } : { stringValue: v } }));

/** One request of `n` spans that look like the pipeline's: a few attributes, ids, an event now and then. */
function request(n: number, traceId?: Buffer): Buffer {
  const now = BigInt(Date.now()) * 1_000_000n;
  const spans = [];
  const tid = traceId ?? randomBytes(16);
  // One block per request, as in the pipeline (a block's trace has tens of spans, not thousands).
  const blockId = traceId ? BENCH_BLOCK : randomUUID();
  for (let i = 0; i < n; i++) {
    const start = now + BigInt(i) * 1000n;
    spans.push({
      traceId: traceId ?? (i % 10 === 0 ? randomBytes(16) : tid),
      spanId: randomBytes(8),
      parentSpanId: i === 0 ? undefined : randomBytes(8),
      name: i % 3 === 0 ? 'process search' : i % 3 === 1 ? 'write search' : 'pg.query:wordloom_update_block',
      kind: 5,
      startTimeUnixNano: start.toString(),
      endTimeUnixNano: (start + 250_000n).toString(),
      attributes: [
        { key: 'messaging.system', value: { stringValue: 'loomtrace' } },
        { key: 'messaging.message.id', value: { stringValue: String(i) } },
        { key: 'loomtrace.block.id', value: { stringValue: blockId } },
        { key: 'loomtrace.attempt', value: { intValue: 1 } },
        { key: 'loomtrace.queue_wait_ms', value: { doubleValue: 0.8 } },
      ],
      events: i % 20 === 0 ? [{ name: 'retry scheduled', timeUnixNano: start.toString(), attributes: [{ key: 'loomtrace.retry.reason', value: { stringValue: 'http_429' } }] }] : [],
      status: { code: i % 50 === 0 ? 2 : 0 },
    });
  }
  const msg = ExportTraceServiceRequest.fromObject({
    resourceSpans: [{ resource: { attributes: RESOURCE }, scopeSpans: [{ scope: { name: 'bench' }, spans }] }],
  });
  return Buffer.from(ExportTraceServiceRequest.encode(msg).finish());
}

async function ingest(url: string, bodies: Buffer[]): Promise<{ seconds: number; retried: number }> {
  let next = 0;
  let retried = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        for (;;) {
          let r: Response;
          try {
            r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
            await r.arrayBuffer();
          } catch {
            // A connection error: an exporter retries it, and so do we.
            retried++;
            continue;
          }
          if (r.status === 200) break;
          if (r.status !== 429) throw new Error(`ingest answered ${r.status}`);
          retried++;
          await new Promise((res) => setTimeout(res, 50));
        }
      }
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, retried };
}

async function seedPipeline(pool: Pool): Promise<string> {
  // 100,000 outbox events (and blocks) so the diagnosis runs against a realistic table.
  await pool.query(`insert into wordloom.libraries (id, name) values ('00000000-0000-4000-8000-000000000001', 'bench')`);
  await pool.query(`insert into wordloom.books (id, library_id, title) values ('00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', 'bench')`);
  await pool.query(`insert into wordloom.blocks (id, book_id, library_id, block_type, content, version)
                    select gen_random_uuid(), '00000000-0000-4000-8000-000000000002', '00000000-0000-4000-8000-000000000001', 'text', 'x', 1
                      from generate_series(1, 100000)`);
  await pool.query(`insert into loomtrace.outbox (projection, event_type, aggregate_type, aggregate_id, aggregate_version, state, attempts, claimed_at, done_at,
                                                  traceparent)
                    select 'search', 'block.created', 'block', id::text, 1, case when random() < 0.9 then 'done' else 'pending' end, 0, now(), now(),
                           '00-' || md5(id::text) || '-' || substr(md5(id::text), 1, 16) || '-01'
                      from wordloom.blocks`);
  await pool.query(`insert into search.blocks (block_id, library_id, book_id, version, content)
                    select id, library_id, book_id, 1, 'x' from wordloom.blocks where random() < 0.9`);
  await pool.query('analyze');
  const { rows } = await pool.query<{ id: string }>(`select o.aggregate_id as id from loomtrace.outbox o
                                                    where o.state = 'pending' and not exists (select 1 from search.blocks s where s.block_id::text = o.aggregate_id) limit 1`);
  return rows[0]!.id;
}

const db = await database();
const pool = createPool({ connectionString: db.url, max: 12, applicationName: 'explorer-bench' });
await migrateAll(pool);
const { pipelines } = wordloomPipelines(pool);
const ex = await startExplorer(pool, compileExplorerOptions({ port: 0, otlpPort: 0 }), undefined, { pipelines });
const out: string[] = [];
const say = (l: string) => {
  out.push(l);
  process.stdout.write(`${l}\n`);
};
try {
  say(`explorer bench · node ${process.version} · ${TOTAL} spans in requests of ${PER_REQUEST}, ${CONCURRENCY} in flight`);
  // Warm-up, then three runs; the median is reported.
  await ingest(`${ex.otlpUrl}/v1/traces`, Array.from({ length: 10 }, () => request(PER_REQUEST)));
  const rates: number[] = [];
  for (let run = 0; run < 3; run++) {
    const bodies = Array.from({ length: Math.ceil(TOTAL / PER_REQUEST / 3) }, () => request(PER_REQUEST));
    const r = await ingest(`${ex.otlpUrl}/v1/traces`, bodies);
    rates.push((bodies.length * PER_REQUEST) / r.seconds);
    say(`  ingest run ${run + 1}: ${Math.round((bodies.length * PER_REQUEST) / r.seconds)} spans/s (${bodies.length} requests, ${r.retried} were retried (429 or connection error))`);
  }
  say(`ingest: median ${Math.round(median(rates))} spans/s (http/protobuf, stored and committed before the 200)`);

  const big = randomBytes(16);
  for (let i = 0; i < 10; i++) await ingest(`${ex.otlpUrl}/v1/traces`, [request(1_000, big)]);
  const tid = big.toString('hex');
  const server: number[] = [];
  const http: number[] = [];
  for (let i = 0; i < 15; i++) {
    let t = performance.now();
    const j = await selectTraceJson(pool, tid, 50_000);
    server.push(performance.now() - t);
    if (j.count !== 10_000) throw new Error(`expected 10,000 spans, got ${j.count}`);
    t = performance.now();
    const r = await fetch(`${ex.uiUrl}/api/traces/${tid}`);
    const text = await r.text();
    http.push(performance.now() - t);
    if (i === 0) say(`  10,000-span trace: ${(text.length / 1048576).toFixed(1)} MiB of JSON`);
  }
  say(`10,000-span trace: server side (query + JSON built by Postgres) median ${median(server).toFixed(1)} ms, p95 ${p95(server).toFixed(1)} ms; over HTTP median ${median(http).toFixed(1)} ms`);

  const searches: Record<string, number[]> = { latest: [], service: [], block: [] };
  for (let i = 0; i < 11; i++) {
    for (const [k, q] of [['latest', ''], ['service', 'service=bench'], ['block', `block_id=${BENCH_BLOCK}`]] as const) {
      const t = performance.now();
      const r = await fetch(`${ex.uiUrl}/api/traces?${q}`);
      await r.json();
      searches[k]!.push(performance.now() - t);
    }
  }
  say(`trace search over HTTP (up to 50 newest traces, looking at the newest 10,000 matching spans): no filter ${median(searches['latest']!).toFixed(1)} ms, by service ${median(searches['service']!).toFixed(1)} ms, by block id (the 10,000-span trace's) ${median(searches['block']!).toFixed(1)} ms (medians)`);

  const blockId = await seedPipeline(pool);
  const diag: number[] = [];
  const diagHttp: number[] = [];
  for (let i = 0; i < 30; i++) {
    let t = performance.now();
    const d = await diagnose(pool, pipelines[0]!, blockId);
    diag.push(performance.now() - t);
    if (d.kind !== 'queued') throw new Error(`unexpected verdict ${d.kind}`);
    t = performance.now();
    await (await fetch(`${ex.uiUrl}/api/diagnosis/block/${blockId}`)).json();
    diagHttp.push(performance.now() - t);
  }
  say(`diagnosis (100,000 blocks and outbox events, ${Math.round(TOTAL / 1000)}k+ spans stored): median ${median(diag).toFixed(1)} ms, p95 ${p95(diag).toFixed(1)} ms; over HTTP median ${median(diagHttp).toFixed(1)} ms`);
} finally {
  await ex.close();
  await pool.end();
  await db.embedded?.stop();
}
