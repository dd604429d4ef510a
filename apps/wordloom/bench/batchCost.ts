/**
 * The worker's fixed cost per batch (decision 0024): the API and the worker as real processes,
 * untraced, PATCHes at a moderate open-loop rate (a batch holds one or two events), and per
 * PATCH the worker's CPU (from /proc), its claims, the claims that found nothing and its sink
 * writes (pg_stat_statements). Copies of the repository given with `--roots` run alternated,
 * run by run, on one Postgres, for an A/B of two commits:
 * `node apps/wordloom/dist/bench/batchCost.js --rate 200 --seconds 10 --runs 3 --roots /path/a,/path/b`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { portFree } from '../src/db/embedded.js';
import { WORKER_NODE_FLAGS } from '../src/cli/workerFlags.js';
import { ROOT, fmt, median, procCpuMs, sleep, startBenchPostgres } from './env.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    runs: { type: 'string', default: '3' },
    roots: { type: 'string', default: ROOT },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const roots = values.roots.split(',').map((r) => path.resolve(r));

async function freePort(from: number): Promise<number> {
  for (let p = from; p < from + 2_000; p++) if (await portFree(p)) return p;
  throw new Error('no free port');
}

function start(root: string, script: string, env: Record<string, string>, flags: readonly string[] = []): { proc: ChildProcess; ready: (re: RegExp) => Promise<void> } {
  const proc = spawn(process.execPath, [...flags, path.join(root, 'apps', 'wordloom', 'dist', 'src', 'cli', script)], {
    env: { ...process.env, OTEL_SDK_DISABLED: 'true', METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (b: Buffer) => void (out += b.toString('utf8')));
  proc.stderr!.on('data', (b: Buffer) => void (out += b.toString('utf8')));
  return {
    proc,
    ready: async (re) => {
      for (const until = Date.now() + 60_000; !re.test(out); await sleep(50)) {
        if (proc.exitCode !== null || Date.now() > until) throw new Error(`${script} did not start:\n${out.slice(-2_000)}`);
      }
    },
  };
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const gone = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await Promise.race([gone, sleep(10_000)]);
  if (p.exitCode === null) p.kill('SIGKILL');
}

async function call<T>(url: string, method: string, body: unknown): Promise<T> {
  const res = await fetch(url, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** Claim calls, claimed rows and sink writes so far (pg_stat_statements). */
async function counters(db: pg.Client): Promise<{ claims: number; writes: number }> {
  const { rows } = await db.query<{ claims: string; writes: string }>(
    `select coalesce(sum(calls) filter (where query like 'with picked as%'), 0) as claims,
            coalesce(sum(calls) filter (where query like 'insert into search.blocks%'), 0) as writes
       from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())`,
  );
  return { claims: Number(rows[0]!.claims), writes: Number(rows[0]!.writes) };
}

/** PATCHes at `rate` for `ms`, open loop; resolves when every response is in. */
async function load(api: string, ids: readonly string[], ms: number, from: number): Promise<number> {
  const pending: Promise<unknown>[] = [];
  const t0 = performance.now();
  let i = 0;
  while (performance.now() - t0 < ms) {
    const due = t0 + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const k = from + i;
    pending.push(call(`${api}/api/v1/blocks/${ids[k % ids.length]}`, 'PATCH', { content: `batch cost ${k}` }).catch(() => undefined));
    i++;
  }
  await Promise.all(pending);
  return i;
}

interface Run {
  workerUs: number;
  claims: number;
  empty: number;
}

async function once(url: string, root: string, db: pg.Client): Promise<Run> {
  await db.query('truncate wordloom.blocks, wordloom.books, wordloom.libraries, search.blocks, loomtrace.outbox, loomtrace.outbox_queue, loomtrace.outbox_leases cascade').catch(() => undefined);
  const port = await freePort(20_000 + Math.floor(Math.random() * 8_000));
  const api = start(root, 'api.js', { DATABASE_URL: url, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn' });
  const worker = start(root, 'worker.js', { DATABASE_URL: url, LOG_LEVEL: 'info' }, WORKER_NODE_FLAGS);
  try {
    await api.ready(/listening|started|ready/i).catch(async () => undefined);
    const base = `http://127.0.0.1:${port}`;
    for (const until = Date.now() + 30_000; ; await sleep(100)) {
      if (await fetch(`${base}/readyz`).then((r) => r.ok, () => false)) break;
      if (Date.now() > until) throw new Error('api not ready');
    }
    await worker.ready(/outbox worker started/);
    const lib = await call<{ id: string }>(`${base}/api/v1/libraries`, 'POST', { name: 'batch cost' });
    const book = await call<{ id: string }>(`${base}/api/v1/books`, 'POST', { library_id: lib.id, title: 'batch cost' });
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push((await call<{ id: string }>(`${base}/api/v1/blocks`, 'POST', { book_id: book.id, block_type: 'text', content: `block ${i}`, position: i })).id);
    const warm = await load(base, ids, 3_000, 0);
    await sleep(1_000);
    const c0 = await counters(db);
    const cpu0 = procCpuMs(worker.proc.pid!);
    const n = await load(base, ids, seconds * 1_000, warm);
    for (const until = Date.now() + 30_000; Date.now() < until; await sleep(50)) {
      const { rows } = await db.query<{ n: number }>('select count(*)::int as n from loomtrace.outbox_queue');
      if (rows[0]!.n === 0) break;
    }
    await sleep(300);
    const cpu = procCpuMs(worker.proc.pid!) - cpu0;
    const c1 = await counters(db);
    return { workerUs: (cpu * 1000) / n, claims: (c1.claims - c0.claims) / n, empty: (c1.claims - c0.claims - (c1.writes - c0.writes)) / n };
  } finally {
    await stop(worker.proc);
    await stop(api.proc);
  }
}

const pgh = await startBenchPostgres(console.log);
try {
  const url = await pgh.database('bench_batchcost');
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  // The API migrates; pg_stat_statements counts the statements.
  await db.query('create extension if not exists pg_stat_statements');
  console.log(`## The worker's cost per PATCH at ${rate} PATCH/s, untraced, ${seconds} s per run, copies alternated`);
  const runs = new Map<string, Run[]>(roots.map((r) => [r, []]));
  for (let r = 0; r < Number(values.runs); r++) {
    for (const root of roots) {
      const x = await once(url, root, db);
      runs.get(root)!.push(x);
      console.log(`  ${root} run ${r + 1}: worker ${fmt(x.workerUs)} µs/PATCH, ${x.claims.toFixed(2)} claims/PATCH (${x.empty.toFixed(2)} empty), ${fmt((x.workerUs / Math.max(1e-9, x.claims - x.empty)))} µs per batch with events`);
    }
  }
  for (const [root, xs] of runs) {
    const med = (f: (x: Run) => number) => median(xs.map(f));
    console.log(`  median ${root}: worker ${fmt(med((x) => x.workerUs))} µs/PATCH, ${med((x) => x.claims).toFixed(2)} claims/PATCH, ${med((x) => x.empty).toFixed(2)} empty`);
  }
  await db.end();
} finally {
  await pgh.stop();
}
