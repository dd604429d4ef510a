import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { portFree } from '../../src/db/embedded.js';
import { processFlags } from '../../src/cli/workerFlags.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** dist/src/cli, where the process entry points are compiled. */
export const CLI_DIR = path.resolve(here, '..', '..', 'src', 'cli');

export interface Proc {
  name: string;
  proc: ChildProcess;
  /** Every line the process printed (stdout and stderr). */
  lines: string[];
  /** Resolves with the first line matching, or rejects after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  exited: Promise<number | null>;
}

/** BENCH_NODE_FLAGS in a child's `env` (a benchmark's A/B variant): the Node flags to run it with, in place of its own. */
export function nodeFlagsOf(env: Record<string, string>): string[] | undefined {
  return env['BENCH_NODE_FLAGS'] !== undefined ? env['BENCH_NODE_FLAGS'].split(' ').filter(Boolean) : undefined;
}

export function startProcess(name: string, script: string, env: Record<string, string>): Proc {
  // BENCH_CHILD_ARGS: node flags for the benchmarks' processes (e.g. --cpu-prof), as bench/runner.ts takes them.
  // BENCH_NODE_FLAGS in `env` (a benchmark's A/B mode): in place of the process's own flags (processFlags).
  const own = nodeFlagsOf(env) ?? processFlags(script);
  const flags = [...own, ...(process.env['BENCH_CHILD_ARGS'] ?? '').split(' ').filter(Boolean)];
  const proc = spawn(process.execPath, [...flags, path.resolve(CLI_DIR, script)], {
    env: { ...process.env, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const watchers = new Set<(l: string) => void>();
  const onData = (buf: Buffer, carry: { s: string }) => {
    carry.s += buf.toString('utf8');
    let i: number;
    while ((i = carry.s.indexOf('\n')) >= 0) {
      const line = carry.s.slice(0, i);
      carry.s = carry.s.slice(i + 1);
      lines.push(line);
      if (process.env['LOOMTRACE_TEST_VERBOSE']) process.stderr.write(`[${name}] ${line}\n`);
      for (const w of watchers) w(line);
    }
  };
  const out = { s: '' };
  const err = { s: '' };
  proc.stdout!.on('data', (b: Buffer) => onData(b, out));
  proc.stderr!.on('data', (b: Buffer) => onData(b, err));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  return {
    name,
    proc,
    lines,
    exited,
    waitFor(re, timeoutMs = 20_000) {
      const found = lines.find((l) => re.test(l));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          watchers.delete(w);
          reject(new Error(`${name}: no line matching ${re} within ${timeoutMs} ms; last lines:\n${lines.slice(-10).join('\n')}`));
        }, timeoutMs);
        const w = (l: string) => {
          if (re.test(l)) {
            clearTimeout(timer);
            watchers.delete(w);
            resolve(l);
          }
        };
        watchers.add(w);
        void exited.then((c) => {
          if (watchers.has(w)) {
            clearTimeout(timer);
            watchers.delete(w);
            reject(new Error(`${name} exited (${c}) before printing ${re}; last lines:\n${lines.slice(-15).join('\n')}`));
          }
        });
      });
    },
    async stop(graceMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      proc.kill('SIGTERM');
      await exited;
      clearTimeout(t);
    },
  };
}

export async function freePort(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const p = 20_000 + Math.floor(Math.random() * 12_000); // below 32768: above it the kernel hands out ephemeral ports
    if (await portFree(p)) return p;
  }
  throw new Error('no free port');
}

/**
 * The API as a real process; resolves once /readyz answers 200. `script`: another build's api.js
 * (an absolute path, for A/B benchmarks against a base build).
 */
/**
 * Free ports for every listener `npm start` opens, with the explorer's token off and no OTLP
 * endpoint set (the orchestrator's own defaults apply), plus `extra`.
 */
export async function startPorts(extra: Record<string, string> = {}): Promise<Record<string, string> & { PORT: string; EXPLORER_PORT: string; EXPLORER_OTLP_PORT: string; METRICS_PORT: string }> {
  return {
    PORT: String(await freePort()),
    EXPLORER_PORT: String(await freePort()),
    EXPLORER_OTLP_PORT: String(await freePort()),
    METRICS_PORT: String(await freePort()),
    EXPLORER_TOKEN: '',
    OTEL_EXPORTER_OTLP_ENDPOINT: '',
    ...extra,
  };
}

export async function startApi(databaseUrl: string, env: Record<string, string> = {}, script = 'api.js'): Promise<Proc & { url: string }> {
  const port = await freePort();
  const p = startProcess('api', script, { DATABASE_URL: databaseUrl, PORT: String(port), HOST: '127.0.0.1', ...env });
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + 30_000;
  for (;;) {
    if (p.proc.exitCode !== null) throw new Error(`api exited early:\n${p.lines.slice(-15).join('\n')}`);
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) break;
    } catch {
      /* not yet */
    }
    if (Date.now() > until) {
      await p.stop(1_000);
      throw new Error(`api not ready:\n${p.lines.slice(-15).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return Object.assign(p, { url });
}

/** The worker as a real process; resolves once it logs that it started. `script`: another build's worker.js (as startApi's). */
export async function startWorker(databaseUrl: string, env: Record<string, string> = {}, script = 'worker.js'): Promise<Proc> {
  const p = startProcess(env['WORKER_ID'] ?? 'worker', script, { DATABASE_URL: databaseUrl, ...env });
  try {
    await p.waitFor(/outbox worker started/, 30_000);
  } catch (err) {
    // A worker that never came up must not outlive the test (it would hold the suite open).
    await p.stop(1_000);
    throw err;
  }
  return p;
}

export interface RunResult {
  code: number | null;
  out: string;
  err: string;
}

/**
 * Runs a node script to its end (a CLI command): exit code, stdout and stderr, read to their
 * end ('close', not 'exit', which can come before the last output). `env` is laid over this
 * process's environment; an `undefined` value removes the variable. Killed after `timeoutMs`.
 */
export function runScript(script: string, args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): Promise<RunResult> {
  const e: Record<string, string | undefined> = { ...process.env, ...env };
  for (const [k, v] of Object.entries(e)) if (v === undefined) delete e[k];
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [script, ...args], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

/** The `loomtrace` CLI (dist/src/cli/loomtrace.js) as a process; see runScript. */
export function runCli(args: string[], env: Record<string, string | undefined> = {}, timeoutMs = 60_000): Promise<RunResult> {
  return runScript(path.join(CLI_DIR, 'loomtrace.js'), args, env, timeoutMs);
}
