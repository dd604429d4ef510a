/**
 * The API process runs with its Node flags (API_NODE_FLAGS: V8's young generation capped,
 * docs/decisions/0020-api-gc-and-tracing-cost.md), as the worker runs with its own: in `npm start`
 * (start.js launching api.js) and in the tests' and benchmarks' processes (test/support/procs.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { API_NODE_FLAGS, WORKER_NODE_FLAGS, processFlags } from '../src/cli/workerFlags.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { startApi, startPorts, startProcess, startWorker, type Proc } from './support/procs.js';

let db: TestDatabase;
const cleanup: (() => Promise<unknown>)[] = [];
before(async () => {
  db = await freshDatabase('api_node_flags');
});
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  await db?.drop();
});

const cmdline = async (pid: number) => (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').filter(Boolean);

/** The direct children of `pid`, from /proc. */
async function childrenOf(pid: number): Promise<number[]> {
  const out: number[] = [];
  for (const p of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
    const stat = await readFile(`/proc/${p}/stat`, 'utf8').catch(() => '');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) out.push(Number(p));
  }
  return out;
}

describe("the API's Node flags", () => {
  test('processFlags: the API and the worker by script name (also as a path), nothing for the other processes', () => {
    assert.ok(API_NODE_FLAGS.some((f) => /^--max-semi-space-size=\d+$/.test(f)), `API_NODE_FLAGS caps the young generation: ${API_NODE_FLAGS.join(' ')}`);
    assert.deepEqual(processFlags('api.js'), API_NODE_FLAGS);
    assert.deepEqual(processFlags('/srv/app/dist/src/cli/api.js'), API_NODE_FLAGS);
    assert.deepEqual(processFlags('worker.js'), WORKER_NODE_FLAGS);
    for (const s of ['explorer.js', 'start.js', 'loomtrace.js', 'my-api.js']) assert.deepEqual(processFlags(s), [], s);
  });

  test('the API process the tests and benchmarks start (support/procs.ts) runs with them, and answers', async () => {
    const api = await startApi(db.url, { OTEL_SDK_DISABLED: 'true', LOG_LEVEL: 'warn', METRICS_PORT: '0' });
    cleanup.push(() => api.stop());
    const args = await cmdline(api.proc.pid!);
    const script = args.findIndex((a) => a.endsWith(`${path.sep}api.js`));
    assert.deepEqual(args.slice(1, script), [...API_NODE_FLAGS], `the API's flags before its script: ${args.join(' ')}`);
    // An unknown or malformed V8 flag makes node exit before the API listens: this one answered.
    assert.equal((await fetch(`${api.url}/healthz`)).status, 200);
  });

  test('the worker process the tests and benchmarks start runs with its own (young generation capped, old generation grown 1.5×), and starts', async () => {
    assert.ok(WORKER_NODE_FLAGS.includes('--max-semi-space-size=4'), WORKER_NODE_FLAGS.join(' '));
    assert.ok(WORKER_NODE_FLAGS.includes('--heap-growing-percent=50'), `the old generation's growth is bounded (decision 0024): ${WORKER_NODE_FLAGS.join(' ')}`);
    const worker = await startWorker(db.url, { OTEL_SDK_DISABLED: 'true', METRICS_PORT: '0' });
    cleanup.push(() => worker.stop());
    const args = await cmdline(worker.proc.pid!);
    const script = args.findIndex((a) => a.endsWith(`${path.sep}worker.js`));
    // An unknown or malformed V8 flag makes node exit before the worker logs that it started: this one did.
    assert.deepEqual(args.slice(1, script), [...WORKER_NODE_FLAGS], `the worker's flags before its script: ${args.join(' ')}`);
  });

  test('npm start launches the API with them', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'loomtrace-flags-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const env = await startPorts({ DATABASE_URL: db.url, LOOMTRACE_DATA_DIR: dir });
    const st: Proc = startProcess('start-flags', 'start.js', env);
    cleanup.push(() => st.stop(20_000));
    await st.waitFor(/loomtrace is running/, 90_000);
    const kids = await Promise.all((await childrenOf(st.proc.pid!)).map(async (pid) => ({ pid, args: await cmdline(pid).catch(() => []) })));
    const api = kids.find((k) => k.args.some((a) => a.endsWith(`${path.sep}api.js`)));
    const worker = kids.find((k) => k.args.some((a) => a.endsWith(`${path.sep}worker.js`)));
    assert.ok(api, `an api.js child among ${kids.map((k) => k.args.join(' ')).join(' | ')}`);
    assert.ok(worker, 'a worker.js child');
    const script = api.args.findIndex((a) => a.endsWith(`${path.sep}api.js`));
    assert.deepEqual(api.args.slice(1, script), [...API_NODE_FLAGS], `the API's flags come before its script: ${api.args.join(' ')}`);
    assert.deepEqual(worker.args.slice(1, worker.args.findIndex((a) => a.endsWith(`${path.sep}worker.js`))), [...WORKER_NODE_FLAGS]);
  });
});
