import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { startApi, startWorker, type Proc } from './support/procs.js';
import { captureOtlp, decodeOtlp, type Obj, type Received } from './support/otlpCapture.js';
import { until } from './support/wait.js';

const attrsOf = (kvs: unknown): Record<string, unknown> =>
  Object.fromEntries(((kvs ?? []) as Obj[]).map((kv) => [kv['key'], Object.values((kv['value'] ?? {}) as Obj)[0]]));

/** Every span received, with its resource's attributes. */
function received(rx: Received): { name: string; traceId: string; resource: Record<string, unknown> }[] {
  const out: { name: string; traceId: string; resource: Record<string, unknown> }[] = [];
  for (const r of decodeOtlp(rx)) {
    for (const rs of (r['resourceSpans'] ?? []) as Obj[]) {
      const resource = attrsOf((rs['resource'] as Obj | undefined)?.['attributes']);
      for (const ss of (rs['scopeSpans'] ?? []) as Obj[]) for (const s of (ss['spans'] ?? []) as Obj[]) out.push({ name: s['name'] as string, traceId: s['traceId'] as string, resource });
    }
  }
  return out;
}

/**
 * The worker process's own telemetry wiring (src/cli/workerTelemetry.ts, decision 0016): a
 * tracer provider without NodeSDK, pg instrumented without the ESM loader hook, the cluster
 * clients not loaded for the Postgres index. Spans and resource as NodeSDK made them.
 */
describe('the worker process traces without NodeSDK', () => {
  let db: TestDatabase;
  let api: Proc & { url: string };
  let worker: Proc;
  let rx: Received;

  before(async () => {
    db = await freshDatabase('worker_telemetry');
    rx = await captureOtlp();
    const env = (service: string) => ({
      OTEL_SERVICE_NAME: service,
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: rx.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    api = await startApi(db.url, env('wordloom-api'));
    worker = await startWorker(db.url, { ...env('wordloom-worker'), WORKER_ID: 'w-telemetry' });
  });
  after(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    await rx?.close();
    await db?.drop();
  });

  it("every span of an event, the batch's pg spans, and NodeSDK's resource; no loader-hook thread (the API has one)", async () => {
    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(r.status, 201);
      return (await r.json()) as Record<string, string>;
    };
    const lib = await post('/api/v1/libraries', { name: 'wt' });
    const book = await post('/api/v1/books', { library_id: lib['id'], title: 'b' });
    const traceId = 'c1b2c3d4e5f60718293a4b5c6d7e8f91';
    const r = await fetch(`${api.url}/api/v1/blocks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-2222222222222222-01` },
      body: JSON.stringify({ book_id: book['id'], block_type: 'text', content: 'quiet words' }),
    });
    assert.equal(r.status, 201);

    const names = ['queue wait search', 'process search', 'claim search', 'write search', 'ack search'];
    const spans = await until('the worker spans of the change', 15_000, async () => {
      const s = received(rx).filter((x) => x.resource['service.name'] === 'wordloom-worker');
      return names.every((n) => s.some((x) => x.name === n && x.traceId === traceId)) && s.some((x) => x.name.startsWith('pg.query:')) ? s : undefined;
    });
    // The pg instrumentation works without the ESM loader hook: the batch's statements are spans.
    assert.ok(spans.some((x) => x.name.startsWith('pg.query:') && x.name.includes('loomtrace')), 'pg spans of the outbox statements under the batch trace');
    // The resource NodeSDK detects by default: env (service.name), process, host.
    const res = spans.find((x) => x.name === 'process search')!.resource;
    assert.equal(res['process.pid'], String(worker.proc.pid));
    assert.equal(typeof res['host.name'], 'string');
    assert.equal(res['telemetry.sdk.language'], 'nodejs');
    assert.equal(res['process.runtime.name'], 'nodejs');
    // No loader-hook thread: module.register() runs the hooks on a thread of its own (named
    // WorkerThread), as the API's telemetry.ts does; the worker has none.
    const threads = (pid: number | undefined) => readdirSync(`/proc/${pid}/task`).map((t) => readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim());
    assert.ok(threads(api.proc.pid).includes('WorkerThread'), `the API has its hooks thread: ${threads(api.proc.pid).join(',')}`);
    assert.ok(!threads(worker.proc.pid).includes('WorkerThread'), `the worker has none: ${threads(worker.proc.pid).join(',')}`);
  });
});
