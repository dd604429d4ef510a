/**
 * A real Prometheus (Debian's `prometheus` package, installed here when missing) scrapes the
 * API and the worker; its HTTP API then returns the queue depth and lag series. Skipped, with
 * the reason printed, only when neither the binary nor apt-get is available.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freshDatabase } from './support/db.js';
import { freePort, startApi, startWorker } from './support/procs.js';

const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

/** The prometheus binary, installing Debian's package if needed; a reason string when impossible. */
function ensurePrometheus(): { bin: string } | { skip: string } {
  if (has('prometheus')) return { bin: 'prometheus' };
  if (!has('apt-get')) return { skip: 'prometheus is not installed and apt-get is not available' };
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const run = (args: string[]) => spawnSync('apt-get', args, { env, stdio: 'ignore', timeout: 300_000 }).status === 0;
  if (!run(['install', '-y', '-qq', '--no-install-recommends', 'prometheus'])) {
    if (!run(['update', '-qq']) || !run(['install', '-y', '-qq', '--no-install-recommends', 'prometheus'])) {
      return { skip: 'apt-get install prometheus failed (no package index or no network)' };
    }
  }
  return has('prometheus') ? { bin: 'prometheus' } : { skip: 'prometheus still not found after apt-get install' };
}

interface PromResult {
  metric: Record<string, string>;
  value: [number, string];
}

test('a real Prometheus scrapes the API and the worker and returns queue depth and lag series', { timeout: 420_000 }, async (t) => {
  const p = ensurePrometheus();
  if ('skip' in p) {
    // Under CI (which installs prometheus) this is a failure, never a skip.
    if (process.env['CI']) assert.fail(p.skip);
    t.skip(p.skip);
    return;
  }
  const db = await freshDatabase('ops_prom');
  t.after(() => db.drop());
  const metricsPort = await freePort();
  const api = await startApi(db.url);
  t.after(() => api.stop());
  const worker = await startWorker(db.url, { METRICS_PORT: String(metricsPort), WORKER_POLL_MS: '100' });
  t.after(() => worker.stop());
  await worker.waitFor(/worker metrics and health listening/, 20_000);

  const dir = mkdtempSync(path.join(tmpdir(), 'loomtrace-prom-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const apiHostPort = new URL(api.url).host;
  writeFileSync(
    path.join(dir, 'prometheus.yml'),
    `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: wordloom-api
    static_configs: [{ targets: ['${apiHostPort}'] }]
  - job_name: wordloom-worker
    static_configs: [{ targets: ['127.0.0.1:${metricsPort}'] }]
`,
  );
  const promPort = await freePort();
  const prom = spawn(p.bin, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: 'ignore' });
  const promExited = new Promise((r) => prom.on('exit', r));
  t.after(async () => {
    prom.kill('SIGTERM');
    await Promise.race([promExited, new Promise((r) => setTimeout(r, 5_000))]);
    if (prom.exitCode === null) prom.kill('SIGKILL');
  });
  const promUrl = `http://127.0.0.1:${promPort}`;
  const query = async (q: string): Promise<PromResult[]> => {
    const r = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = (await r.json()) as { status: string; data?: { result: PromResult[] } };
    return body.status === 'success' ? (body.data?.result ?? []) : [];
  };
  const until = async (what: string, q: string, ok: (r: PromResult[]) => boolean, timeoutMs = 60_000) => {
    const end = Date.now() + timeoutMs;
    let last: PromResult[] = [];
    for (;;) {
      try {
        last = await query(q);
        if (ok(last)) return last;
      } catch {
        /* prometheus not up yet */
      }
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last answer ${JSON.stringify(last)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  // Both targets are up before the traffic.
  await until('both targets up', 'up', (r) => r.filter((x) => x.value[1] === '1').length === 2);

  const post = async (p2: string, body: object) => {
    const r = await fetch(`${api.url}/api/v1${p2}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, 201);
    return ((await r.json()) as { id: string }).id;
  };
  const lib = await post('/libraries', { name: 'prom' });
  const book = await post('/books', { library_id: lib, title: 'b' });
  for (let i = 0; i < 10; i++) await post('/blocks', { book_id: book, block_type: 'text', content: `prometheus ${i}` });

  const depth = await until('queue depth from both processes', 'loomtrace_outbox_queue_depth{projection="search",state="pending"}', (r) => new Set(r.map((x) => x.metric['job'])).size === 2);
  assert.deepEqual(new Set(depth.map((x) => x.metric['job'])), new Set(['wordloom-api', 'wordloom-worker']));
  const lag = await until('lag histogram count after traffic', 'sum(loomtrace_outbox_lag_count{projection="search"})', (r) => Number(r[0]?.value[1] ?? 0) >= 10);
  assert.ok(Number(lag[0]!.value[1]) >= 10);
  const p95 = await query('histogram_quantile(0.95, sum by (le) (loomtrace_outbox_lag_bucket{projection="search"}))');
  assert.ok(p95.length === 1 && Number.isFinite(Number(p95[0]!.value[1])), `a lag quantile can be computed: ${JSON.stringify(p95)}`);
  const oldest = await query('loomtrace_outbox_oldest_pending_age{projection="search"}');
  assert.ok(oldest.length >= 1, 'the oldest pending age gauge is scraped');
});
