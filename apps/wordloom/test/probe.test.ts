/**
 * `loomtrace probe`: a canary change through the declared block → search pipeline, on a real
 * stack (API and worker processes exporting to the explorer). Once: exit 0 with the
 * change-to-visible time and the trace shape checked; on a schedule: Prometheus metrics;
 * with the worker stopped: exit 1 and the diagnosis's reason.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { compileExplorerOptions, startExplorer, type RunningExplorer } from '@loomtrace/explorer';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { CLI_DIR, freePort, runCli, startApi, startWorker, type Proc, type RunResult } from './support/procs.js';
import { otlpEnv } from './support/otlp.js';
import { until } from './support/wait.js';
import { wordloomPipelines } from '../src/pipeline.js';

let db: TestDatabase;
let ex: RunningExplorer;
let api: Proc & { url: string };
let worker: Proc;

before(async () => {
  db = await freshDatabase('probe');
  ex = await startExplorer(db.pool, compileExplorerOptions({ port: 0, otlpPort: await freePort() }), undefined, { pipelines: wordloomPipelines(db.pool).pipelines });
  api = await startApi(db.url, otlpEnv(ex.otlpUrl, 'wordloom-api'));
  worker = await startWorker(db.url, { ...otlpEnv(ex.otlpUrl, 'wordloom-worker'), METRICS_PORT: '-1', WORKER_POLL_MS: '50' });
});
after(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await ex?.close();
  await db?.drop();
});

const env = () => ({ DATABASE_URL: db.url, LOOMTRACE_PROBE_API_URL: api.url });
function cli(args: string[]): Promise<RunResult> {
  return runCli(args, env());
}

describe('loomtrace probe', () => {
  test('--once on a healthy stack: exit 0, change-to-visible time, trace shape checked', { timeout: 60_000 }, async () => {
    const first = await cli(['probe', 'block', '--once']);
    assert.equal(first.code, 0, first.err + first.out);
    assert.match(first.out, /Z ok: block → search \([0-9a-f-]{36} v2\): visible in \d+ ms; trace [0-9a-f]{32} has the declared shape\n$/);
    const again = await cli(['probe', 'block', '--once', '--json']);
    assert.equal(again.code, 0, again.err + again.out);
    const r = JSON.parse(again.out) as { ok: boolean; outcome: string; version: number; visibleMs: number; shape: { ok: boolean } };
    assert.deepEqual([r.ok, r.outcome, r.version, r.shape.ok], [true, 'ok', 3, true], 'the same canary block, one version on');
    assert.ok(r.visibleMs > 0);
    assert.equal((await cli(['probe', 'order', '--once'])).code, 2, 'no such pipeline declared');
  });

  test('on a schedule: Prometheus metrics of the outcome and the change-to-visible time', { timeout: 60_000 }, async () => {
    const port = await freePort();
    const sched = spawn(process.execPath, [path.join(CLI_DIR, 'loomtrace.js'), 'probe', 'block', '--every', '0.5', '--metrics-port', String(port)], { env: { ...process.env, ...env() }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => sched.on('exit', (c) => r(c)));
    try {
      const text = await until('two probe runs in the metrics', 30_000, async () => {
        const t = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
        return /loomtrace_probe_runs_total\{aggregate_type="block",projection="search",outcome="ok"\} [2-9]/.test(t) ? t : undefined;
      }, { ignoreErrors: true });
      assert.match(text, /^loomtrace_probe_success\{aggregate_type="block",projection="search"\} 1$/m);
      assert.match(text, /^loomtrace_probe_visible_seconds\{aggregate_type="block",projection="search"\} \d+(\.\d+)?(e-\d+)?$/m);
      assert.match(text, /^# TYPE loomtrace_probe_runs_total counter$/m);
      assert.match(text, /^loomtrace_probe_runs_total\{aggregate_type="block",projection="search",outcome="not_visible"\} 0$/m);
    } finally {
      sched.kill('SIGTERM');
    }
    assert.equal(await exited, 0);
  });

  test('--once with the worker stopped: exit 1 and the reason', { timeout: 60_000 }, async () => {
    await worker.stop();
    const r = await cli(['probe', 'block', '--once', '--timeout', '2']);
    assert.equal(r.code, 1, r.err + r.out);
    assert.match(r.out, /FAIL not_visible: block → search \([0-9a-f-]{36} v\d+\): not visible after \d+ ms: Still queued for \d+(\.\d)? s: 0 event\(s\) ahead, queue depth 1, no worker is connected\.\n$/);
  });
});
