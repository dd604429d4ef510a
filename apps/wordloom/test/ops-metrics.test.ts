import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/db.js';
import { freePort, startApi, startWorker } from './support/procs.js';
import { until } from './support/wait.js';

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** Parses Prometheus text into `name{labels}` → value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}
const find = (m: Map<string, number>, name: string, ...labels: string[]) =>
  [...m.entries()].filter(([k]) => (k === name || k.startsWith(`${name}{`)) && labels.every((l) => k.includes(l)));


test('API and worker expose outbox metrics in Prometheus text, with bounded labels, and worker health/readiness', { timeout: 120_000 }, async (t) => {
  const db = await freshDatabase('ops_metrics');
  t.after(() => db.drop());
  const metricsPort = await freePort();
  const api = await startApi(db.url);
  t.after(() => api.stop());
  // Retention 0: the worker process's upkeep loop deletes done events as soon as it runs.
  const worker = await startWorker(db.url, { METRICS_PORT: String(metricsPort), WORKER_POLL_MS: '100', OUTBOX_RETENTION_MS: '0', OUTBOX_UPKEEP_INTERVAL_MS: '200' });
  t.after(() => worker.stop());
  await worker.waitFor(/worker metrics and health listening/, 20_000);
  const wurl = `http://127.0.0.1:${metricsPort}`;

  assert.equal((await fetch(`${wurl}/healthz`)).status, 200);
  const ready = await fetch(`${wurl}/readyz`);
  assert.equal(ready.status, 200, await ready.text());

  const post = async (path: string, body: object) => {
    const r = await fetch(`${api.url}/api/v1${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, 201);
    return (await r.json()) as { id: string };
  };
  const lib = await post('/libraries', { name: 'metrics' });
  const book = await post('/books', { library_id: lib.id, title: 'b' });
  const blocks = [];
  for (let i = 0; i < 5; i++) blocks.push(await post('/blocks', { book_id: book.id, block_type: 'text', content: `secretword${i} metrics` }));
  const patched = await fetch(`${api.url}/api/v1/blocks/${blocks[0]!.id}`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: 'changed' }) });
  assert.equal(patched.status, 200);

  // All 6 events settle: the worker's processed counter says so. Written, or stale when the
  // create and the PATCH of the first block land in one batch (the older version is not
  // written over the newer one: success, counted as `stale`).
  const wm = await until('6 processed events', 20_000, async () => {
    const m = parse(await (await fetch(`${wurl}/metrics`)).text());
    const written = find(m, 'loomtrace_outbox_processed_total', 'projection="search"', 'outcome="written"').reduce((s, [, v]) => s + v, 0);
    const stale = find(m, 'loomtrace_outbox_processed_total', 'projection="search"', 'outcome="stale"').reduce((s, [, v]) => s + v, 0);
    return written >= 5 && written + stale === 6 ? m : undefined;
  }, { intervalMs: 100 });
  const lagCount = find(wm, 'loomtrace_outbox_lag_seconds_count', 'projection="search"').concat(find(wm, 'loomtrace_outbox_lag_count', 'projection="search"'));
  assert.ok(lagCount.length === 1 && lagCount[0]![1] >= 6, `lag histogram counts first attempts: ${JSON.stringify(lagCount)}`);
  const writeCount = [...wm.entries()].filter(([k]) => /^loomtrace_outbox_write_duration(_seconds)?_count\{/.test(k));
  assert.ok(writeCount.length >= 1 && writeCount[0]![1] >= 1, 'bulk write duration recorded');
  const depth = find(wm, 'loomtrace_outbox_queue_depth', 'projection="search"', 'state="pending"');
  assert.equal(depth.length, 1, 'queue depth gauge for the search projection');
  assert.equal(depth[0]![1], 0, 'nothing pending after the drain');
  assert.equal(find(wm, 'loomtrace_outbox_oldest_pending_age', 'projection="search"').length + find(wm, 'loomtrace_outbox_oldest_pending_age_seconds', 'projection="search"').length, 1);

  // The upkeep ran in the worker process: done events are gone and counted.
  await until('done events purged', 20_000, async () => {
    const m = parse(await (await fetch(`${wurl}/metrics`)).text());
    const purged = find(m, 'loomtrace_outbox_purged_total').reduce((s, [, v]) => s + v, 0);
    const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from loomtrace.outbox');
    return purged >= 6 && rows[0]!.n === 0 ? true : undefined;
  }, { intervalMs: 100 });

  const apiText = await (await fetch(`${api.url}/metrics`)).text();
  assert.match(apiText, /^loomtrace_outbox_queue_depth\{[^}]*projection="search"/m, 'the API reports queue depth too');

  // Labels are bounded: no ids and no user content anywhere in either exposition.
  const workerText = await (await fetch(`${wurl}/metrics`)).text();
  for (const text of [workerText, apiText]) {
    assert.doesNotMatch(text, UUID);
    assert.doesNotMatch(text, /secretword/);
  }
});

test('worker readiness reports an unreachable search cluster while the process stays alive', { timeout: 60_000 }, async (t) => {
  const db = await freshDatabase('ops_ready');
  t.after(() => db.drop());
  const metricsPort = await freePort();
  const deadPort = await freePort();
  const worker = await startWorker(db.url, { METRICS_PORT: String(metricsPort), SEARCH_BACKEND: 'elasticsearch', ELASTICSEARCH_URL: `http://127.0.0.1:${deadPort}` });
  t.after(() => worker.stop());
  await worker.waitFor(/worker metrics and health listening/, 20_000);
  const wurl = `http://127.0.0.1:${metricsPort}`;
  assert.equal((await fetch(`${wurl}/healthz`)).status, 200);
  const r = await fetch(`${wurl}/readyz`);
  assert.equal(r.status, 503);
  assert.deepEqual(await r.json(), { status: 'not ready', reason: 'sink unreachable' });
  assert.ok(worker.lines.some((l) => /search index not created yet/.test(l)), 'the worker said why, and kept running');
});
