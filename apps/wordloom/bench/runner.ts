/**
 * Runs worker processes (bench/drainChild) against a producer: a timed drain of a bulk
 * backlog, or pick-up latency samples with the worker idle.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { CostProbe, type CostDelta } from './cost.js';
import { DIST, epochMs, sleep } from './env.js';
import type { Producer, SystemName } from './systems.js';
import { WORKER_NODE_FLAGS } from '../src/cli/workerFlags.js';
import { nodeFlagsOf } from '../test/support/procs.js';

const CHILD = path.join(DIST, 'bench', 'drainChild.js');

interface Child {
  proc: ChildProcess;
  seen: number;
  /** Epoch ms of the first handler start since `arm`. */
  first?: number;
  next(type: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  onPicked?: (starts: [number, number][]) => void;
}

function startChild(system: SystemName, url: string, opts: Record<string, number>, env: Record<string, string>): Child {
  // BENCH_CHILD (in `env`) runs another build's drainChild.js: bench/traceAb.ts compares two builds.
  const proc = fork(env['BENCH_CHILD'] ?? CHILD, [system, url], {
    env: { ...process.env, BENCH_OPTS: JSON.stringify(opts), ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // BENCH_CHILD_ARGS="--cpu-prof --cpu-prof-dir=.loomtrace/prof" profiles the worker processes.
    // loomtrace's worker runs with the flags npm start gives it (src/cli/workerFlags.ts), another
    // build's child (BENCH_CHILD: traceAb.ts's base) too, unless BENCH_BASE_FLAGS=off (a base from
    // before those flags, as it ran then): an A/B of builds must not differ in the V8 flags.
    // BENCH_NODE_FLAGS in `env` (an A/B variant's, as test/support/procs.ts takes it): in place of those flags.
    execArgv: [
      ...(nodeFlagsOf(env) ?? (system === 'loomtrace' && (!env['BENCH_CHILD'] || process.env['BENCH_BASE_FLAGS'] !== 'off') ? WORKER_NODE_FLAGS : [])),
      ...(process.env['BENCH_CHILD_ARGS'] ?? '').split(' ').filter(Boolean),
    ],
  });
  const waiting = new Map<string, (m: Record<string, unknown>) => void>();
  const got = new Map<string, Record<string, unknown>>();
  const child: Child = {
    proc,
    seen: 0,
    next(type, timeoutMs = 60_000) {
      const early = got.get(type);
      if (early) {
        got.delete(type);
        return Promise.resolve(early);
      }
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`${system} worker: no ${type} within ${timeoutMs} ms`)), timeoutMs);
        waiting.set(type, (m) => {
          clearTimeout(t);
          resolve(m);
        });
      });
    },
  };
  proc.on('message', (m: Record<string, unknown>) => {
    const type = String(m['type']);
    if (type === 'progress') child.seen = Number(m['seen']);
    else if (type === 'first') child.first = Number(m['t']);
    else if (type === 'picked') child.onPicked?.(m['starts'] as [number, number][]);
    else {
      const w = waiting.get(type);
      if (w) {
        waiting.delete(type);
        w(m);
      } else got.set(type, m);
    }
  });
  proc.on('exit', (code) => {
    for (const [type, w] of waiting) w({ type, error: `exited ${code}` });
    waiting.clear();
  });
  return child;
}

/**
 * Garbage collection in the worker processes since `arm` (bench/drainChild.ts): scavenges and full
 * collections, and their duration as perf_hooks reports it (wall time, concurrent marking included: not CPU).
 */
export interface WorkerGc {
  ms: number;
  minor: number;
  major: number;
}

async function stopAll(children: Child[], cpu: number[] = [], gc?: WorkerGc): Promise<number[]> {
  const rss: number[] = [];
  await Promise.all(
    children.map(async (c) => {
      c.proc.send({ type: 'stop' });
      const m = await c.next('stopped', 30_000).catch(() => ({}) as Record<string, unknown>);
      if (typeof m['rssMb'] === 'number') rss.push(m['rssMb']);
      if (typeof m['cpuMs'] === 'number') cpu.push(m['cpuMs']);
      const g = m['gc'] as WorkerGc | undefined;
      if (gc && g) {
        gc.ms += g.ms;
        gc.minor += g.minor;
        gc.major += g.major;
      }
      if (c.proc.exitCode === null) await new Promise((r) => c.proc.once('exit', r));
    }),
  );
  return rss;
}

export interface DrainResult {
  events: number;
  ms: number;
  perSecond: number;
  peakRssMb: number;
  /** CPU time of the worker processes (user + system) from `arm` to the end of their shutdown (span flush included), ms. */
  workerCpuMs: number;
  /** Their garbage collection over the same interval. */
  workerGc: WorkerGc;
  /** Statements, WAL bytes and Postgres CPU from the backlog's commit to the end of the drain. */
  cost: CostDelta;
}

/** Events each drain runs first, untimed, so that every system is warm when the clock starts. */
const WARMUP = Number(process.env['BENCH_WARMUP'] ?? 2_000);

/** Waits until the handlers have seen `n` events and the database shows none unfinished; returns the epoch ms it saw that. */
async function settled(p: Producer, children: Child[], n: number, deadline: number): Promise<number> {
  while (children.reduce((s, c) => s + c.seen, 0) < n) {
    if (Date.now() > deadline) throw new Error(`${p.name}: drain did not finish (seen ${children.map((c) => c.seen).join('+')} of ${n})`);
    if (children.some((c) => c.proc.exitCode !== null)) throw new Error(`${p.name}: a worker process exited during the drain`);
    await sleep(1);
  }
  // Handlers have seen everything; done means settled in the database.
  while ((await p.remaining()) > 0) {
    if (Date.now() > deadline) throw new Error(`${p.name}: events handled but not settled`);
    await sleep(1);
  }
  return epochMs();
}

/**
 * Starts `procs` worker processes on an empty queue (each system fully started: runner, pool,
 * listener), warms them with an untimed drain of WARMUP events, then enqueues `n` events in
 * one transaction and times from the first handler start (in any process) to the moment the
 * database shows every event finished (acked / completed / deleted).
 */
export async function drain(
  p: Producer,
  n: number,
  procs: number,
  opts: Record<string, number> = {},
  env: Record<string, string> = {},
  sampledEvery?: number,
): Promise<DrainResult> {
  await p.clean();
  const probe = new CostProbe(p.url, !process.env['DATABASE_URL']);
  await probe.open();
  const children = Array.from({ length: procs }, () => startChild(p.name, p.url, opts, env));
  try {
    await Promise.all(children.map((c) => c.next('ready')));
    if (WARMUP > 0) {
      await p.enqueueBulk(WARMUP, sampledEvery);
      await settled(p, children, WARMUP, Date.now() + 60_000);
    }
    for (const c of children) c.proc.send({ type: 'arm' });
    await Promise.all(
      children.map(async (c) => {
        await c.next('armed');
        c.seen = 0;
        delete c.first;
      }),
    );
    await p.enqueueBulk(n, sampledEvery);
    const before = await probe.snapshot();
    const tEnd = await settled(p, children, n, Date.now() + 180_000);
    const cost = await probe.since(before, n);
    const left = await p.unfinished();
    if (left > 0) throw new Error(`${p.name}: the completion check saw the drain finished, yet ${left} events are unfinished`);
    // The clock starts at the earliest first handler start; a process that got no event never reports one.
    const t0 = Math.min(...children.map((c) => c.first ?? Infinity));
    const ms = tEnd - t0;
    const cpu: number[] = [];
    const workerGc: WorkerGc = { ms: 0, minor: 0, major: 0 };
    const rss = await stopAll(children, cpu, workerGc);
    return { events: n, ms, perSecond: (n * 1000) / ms, peakRssMb: Math.max(0, ...rss), workerCpuMs: cpu.reduce((a, b) => a + b, 0), workerGc, cost };
  } catch (err) {
    for (const c of children) c.proc.kill('SIGKILL');
    throw err;
  } finally {
    await probe.close().catch(() => undefined);
  }
}

/**
 * Pick-up latency: with the workers idle, enqueue one event in its own transaction and time
 * from just before the enqueue statement (which commits) to the handler's start, `count`
 * times per system. The systems take turns sample by sample (all their workers run the whole
 * time), so that a busy moment on a shared machine hits them alike.
 */
export async function pickupLatency(
  systems: readonly { p: Producer; opts: Record<string, number> }[],
  count: number,
): Promise<Map<SystemName, number[]>> {
  const out = new Map<SystemName, number[]>();
  const running: { p: Producer; child: Child; starts: Map<number, number>; wake?: () => void }[] = [];
  try {
    for (const { p, opts } of systems) {
      await p.clean();
      const child = startChild(p.name, p.url, { ...opts, latency: 1 }, {});
      const r: (typeof running)[number] = { p, child, starts: new Map() };
      child.onPicked = (list) => {
        for (const [id, t] of list) r.starts.set(id, t);
        r.wake?.();
      };
      running.push(r);
      await child.next('ready');
      out.set(p.name, []);
    }
    await sleep(300);
    // The first WARM samples of each system warm it (JIT, pool, listener) and are not kept.
    const WARM = 20;
    for (let i = 0; i < count + WARM; i++) {
      for (const r of running) {
        const t0 = epochMs();
        await r.p.enqueueOne(i);
        const deadline = Date.now() + 10_000;
        while (!r.starts.has(i)) {
          if (Date.now() > deadline) throw new Error(`${r.p.name}: sample ${i} was not picked up within 10 s`);
          await new Promise<void>((resolve) => {
            r.wake = resolve;
            setTimeout(resolve, 20);
          });
        }
        if (i >= WARM) out.get(r.p.name)!.push(r.starts.get(i)! - t0);
        // Let the worker go idle again (and completion batching settle) before the next one.
        await sleep(15 + Math.random() * 10);
      }
    }
    await stopAll(running.map((r) => r.child));
    return out;
  } catch (err) {
    for (const r of running) r.child.proc.kill('SIGKILL');
    throw err;
  }
}
