/**
 * `npm start`: Postgres (embedded unless DATABASE_URL), then the explorer, the API and the
 * worker as separate processes, as in production. The API and the worker send their traces
 * to the explorer's OTLP receiver unless OTEL_EXPORTER_OTLP_ENDPOINT says otherwise. Prints
 * the URLs and a change to try; Ctrl-C or SIGTERM stops everything cleanly. Child logs (JSON
 * lines) go to <dataDir>/logs/.
 *
 * `npm start -- --demo`: also injects faults into the worker (LOOMTRACE_FAULTS, unless set)
 * and runs a small traffic generator, so retries and dead letters show within a minute.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, createWriteStream, mkdirSync, openSync, readFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from './config.js';
import { resolveDatabase } from './database.js';
import { createPool } from '@loomtrace/outbox';
import { migrateAll } from '../db/migrate.js';
import { explorerOptionsFromEnv } from '@loomtrace/explorer';
import { processFlags } from './workerFlags.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const config = loadConfig();
const demo = process.argv.includes('--demo');
let explorerOptions: ReturnType<typeof explorerOptionsFromEnv>;
try {
  explorerOptions = explorerOptionsFromEnv(process.env);
} catch (err) {
  process.stderr.write(`loomtrace: ${(err as Error).message}\n`);
  process.exit(2);
}
// Logs are ours alone: 0700 folder, 0600 files (also when an older version made them).
const logsDir = path.join(config.dataDir, 'logs');
mkdirSync(logsDir, { recursive: true, mode: 0o700 });
chmodSync(logsDir, 0o700);
function logStream(file: string): WriteStream {
  closeSync(openSync(file, 'a', 0o600));
  chmodSync(file, 0o600);
  return createWriteStream(file, { flags: 'a' });
}
const say = (line: string) => process.stdout.write(`${line}\n`);

interface Child {
  name: string;
  proc: ChildProcess;
  logFile: string;
}
const children: Child[] = [];
let stopping = false;
/** After a signal, startup goes no further and says nothing more: stop() ends the process. */
const halted = new Promise<never>(() => undefined);

// Signals are handled from here on (before Postgres starts, whose first steps may block this
// thread for a moment): a Ctrl-C while Postgres starts stops it too, never orphans it. A handler
// runs only once this synchronous code has reached its first await, when `starting` is set.
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
process.on('SIGHUP', () => void stop(0));
say('loomtrace: starting Postgres…');
const pgLog = logStream(path.join(logsDir, 'postgres.log'));
const starting = resolveDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, port: config.embeddedPgPort, log: (l) => pgLog.write(`${l}\n`) });
const db = await starting;
if (stopping) await halted;
say(db.embedded ? `loomtrace: embedded Postgres on 127.0.0.1:${config.embeddedPgPort} (data in ${path.join(config.dataDir, 'pg')}; superuser password in ${db.embedded.passwordFile})` : 'loomtrace: using DATABASE_URL');
{
  const pool = createPool({ connectionString: db.url, max: 1, applicationName: 'loomtrace-start' });
  const { applied } = await migrateAll(pool);
  await pool.end();
  if (applied.length) say(`loomtrace: applied migrations ${applied.join(', ')}`);
}
if (stopping) await halted;

/** `expendable`: a process the demo kills on purpose; its exit does not stop the others. */
function launch(name: string, script: string, env: Record<string, string>, expendable = false): Child {
  const logFile = path.join(logsDir, `${name}.log`);
  const out = logStream(logFile);
  const proc = spawn(process.execPath, [...processFlags(script), path.join(here, script)], {
    env: { ...process.env, DATABASE_URL: db.url, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout?.pipe(out);
  proc.stderr?.pipe(out);
  const child = { name, proc, logFile };
  proc.on('exit', (code, signal) => {
    if (stopping || expendable) return;
    say(`loomtrace: ${name} exited (${signal ?? code}); last lines of ${logFile}:`);
    try {
      say(readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-15).join('\n'));
    } catch {
      /* no log yet */
    }
    void stop(1);
  });
  children.push(child);
  return child;
}

/** The first 2xx answer of `url`, or undefined after `timeoutMs`. */
async function waitReady(url: string, timeoutMs: number, headers: Record<string, string> = {}): Promise<Response | undefined> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until && !stopping) {
    try {
      const r = await fetch(url, { headers });
      if (r.ok) return r;
      await r.body?.cancel();
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  return undefined;
}

async function stop(code: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  say('loomtrace: stopping…');
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.proc.exitCode !== null || c.proc.signalCode !== null) return resolve();
          const kill = setTimeout(() => c.proc.kill('SIGKILL'), 15_000);
          c.proc.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          c.proc.kill('SIGTERM');
        }),
    ),
  );
  // Postgres may still be starting: wait for it, then stop it.
  const started = await starting.catch(() => undefined);
  if (started?.embedded) await started.embedded.stop().catch(() => undefined);
  say('loomtrace: stopped.');
  process.exit(code);
}

const apiUrl = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${config.port}`;
const loopback = (h: string) => (h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h);
const explorerUrl = `http://${loopback(explorerOptions.host)}:${explorerOptions.port}`;
const otlpAddr = `${loopback(explorerOptions.otlpHost)}:${explorerOptions.otlpPort}`;
const otlpUrl = `http://${otlpAddr}`;
launch('explorer', 'explorer.js', {});
// With EXPLORER_TOKEN set the explorer answers only requests that carry it, this probe too.
const explorerReady = await waitReady(`${explorerUrl}/api/status`, 30_000, explorerOptions.token ? { authorization: `Bearer ${explorerOptions.token}` } : {});
if (stopping) await halted;
if (!explorerReady) {
  say(`loomtrace: the explorer did not become ready; see ${path.join(logsDir, 'explorer.log')}`);
  await stop(1);
}
// Its OTLP port may be held by the user's own Collector or Jaeger: the explorer runs on without it.
const otlpListening = ((await explorerReady?.json().catch(() => undefined)) as { otlp?: { listening?: boolean } } | undefined)?.otlp?.listening !== false;
if (!otlpListening) say(`loomtrace: ${otlpAddr} is in use (another Collector or Jaeger?), so the explorer receives no traces; set EXPLORER_OTLP_PORT to a free port. API, worker and explorer UI keep running.`);
// Every process's traces go to the explorer, unless the user points them elsewhere.
const otlp: Record<string, string> = {};
if (otlpListening && !process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] && !process.env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) {
  otlp['OTEL_EXPORTER_OTLP_ENDPOINT'] = otlpUrl;
  // Percent-encoded: the SDK decodes header values, so a token with `%` or `,` arrives intact.
  if (explorerOptions.token) otlp['OTEL_EXPORTER_OTLP_HEADERS'] = `authorization=${encodeURIComponent(`Bearer ${explorerOptions.token}`)}`;
}
// Spans show in the explorer within a second rather than the SDK's default five.
if (!process.env['OTEL_BSP_SCHEDULE_DELAY']) otlp['OTEL_BSP_SCHEDULE_DELAY'] = '500';
const faults: Record<string, string> = {};
if (demo && !process.env['LOOMTRACE_FAULTS']) faults['LOOMTRACE_FAULTS'] = '429:0.2,partial:0.2,timeout:0.05,timeout_ms:400,seed:7';
if (demo && !process.env['WORKER_MAX_ATTEMPTS']) faults['WORKER_MAX_ATTEMPTS'] = '3';
// Short leases in the demo, so a killed worker's events are reclaimed within seconds.
if (demo && !process.env['WORKER_LEASE_MS']) faults['WORKER_LEASE_MS'] = '4000';
launch('api', 'api.js', { OTEL_SERVICE_NAME: process.env['OTEL_SERVICE_NAME'] ?? 'wordloom-api', ...otlp });
launch('worker', 'worker.js', { OTEL_SERVICE_NAME: 'wordloom-worker', ...otlp, ...faults });

const apiReady = await waitReady(`${apiUrl}/readyz`, 30_000);
if (stopping) await halted;
if (!apiReady) {
  say(`loomtrace: the API did not become ready; see ${path.join(logsDir, 'api.log')}`);
  await stop(1);
}
// The CLI finds the embedded Postgres (and its password) from the same data folder and port.
const cliEnv = !db.embedded
  ? 'DATABASE_URL=… '
  : `${process.env['LOOMTRACE_DATA_DIR'] ? `LOOMTRACE_DATA_DIR=${config.dataDir} ` : ''}${process.env['LOOMTRACE_PG_PORT'] ? `LOOMTRACE_PG_PORT=${config.embeddedPgPort} ` : ''}`;
say(`
loomtrace is running.
  API        ${apiUrl}/api/v1   (OpenAPI: ${apiUrl}/openapi.json)
  explorer   ${explorerUrl}${explorerOptions.token ? '/?token=<EXPLORER_TOKEN>' : ''}   (traces, waterfall, "why is this block not in search?", health)
  OTLP       ${otlpListening ? `${otlpUrl}/v1/traces   (any OpenTelemetry SDK can send here)` : `not listening: ${otlpAddr} is in use (set EXPLORER_OTLP_PORT)`}
  logs       ${logsDir}/{api,worker,explorer,postgres}.log
  CLI        ${cliEnv}npm run cli -- why block <id> | trace <trace-id> | events --dead

Try a change (create a library, a book and a block, then edit the block and search for it):
  LIB=$(curl -s -XPOST ${apiUrl}/api/v1/libraries -H 'content-type: application/json' -d '{"name":"demo"}' | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')
  BOOK=$(curl -s -XPOST ${apiUrl}/api/v1/books -H 'content-type: application/json' -d "{\\"library_id\\":\\"$LIB\\",\\"title\\":\\"notes\\"}" | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')
  BLOCK=$(curl -s -XPOST ${apiUrl}/api/v1/blocks -H 'content-type: application/json' -d "{\\"book_id\\":\\"$BOOK\\",\\"block_type\\":\\"text\\",\\"content\\":\\"hello loom\\"}" | node -pe 'JSON.parse(require("fs").readFileSync(0)).id')
  curl -s -XPATCH ${apiUrl}/api/v1/blocks/$BLOCK -H 'content-type: application/json' -d '{"content":"the new title"}'
  curl -s "${apiUrl}/api/v1/search?q=title&library_id=$LIB"

Ctrl-C stops everything.`);

if (demo) {
  say(`\nDemo mode: faults injected into the worker (${process.env['LOOMTRACE_FAULTS'] ?? faults['LOOMTRACE_FAULTS']}); a block changes every second.\n  Watch ${explorerUrl}/ (traces), ${explorerUrl}/events (dead letters), ${explorerUrl}/health`);
  void demoTraffic(apiUrl);
  void demoReclaims(apiUrl);
}

/**
 * The reclaim drill: a second, slow worker (every bulk write takes 1.5 s) is killed with
 * SIGKILL right after a burst of changes, while it holds some of them under its lease. The
 * other worker reclaims them once the 4 s lease expires; their traces and replays show
 * `reclaimed`, the previous owner and the lease age. Then the victim is started again.
 */
async function demoReclaims(base: string): Promise<void> {
  const victimEnv = {
    OTEL_SERVICE_NAME: 'wordloom-worker',
    ...otlp,
    ...faults,
    WORKER_ID: 'demo-victim',
    METRICS_PORT: '-1',
    LOOMTRACE_FAULTS: 'latency:1500,seed:11',
  };
  let victim = launch('worker-victim', 'worker.js', victimEnv, true);
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  await sleep(15_000);
  while (!stopping) {
    try {
      const lib = (await (await fetch(`${base}/api/v1/libraries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'reclaim drill' }) })).json()) as { id: string };
      const book = (await (await fetch(`${base}/api/v1/books`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ library_id: lib.id, title: 'drill' }) })).json()) as { id: string };
      await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          fetch(`${base}/api/v1/blocks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ book_id: book.id, block_type: 'text', content: `drill ${i}` }) }),
        ),
      );
    } catch {
      /* the API may be stopping */
    }
    await sleep(400);
    if (stopping) return;
    victim.proc.kill('SIGKILL');
    say(`loomtrace demo: killed worker-victim (kill -9) while it held events; the other worker reclaims them after the 4 s lease. See ${explorerUrl}/events?state=done and the traces marked "reclaimed".`);
    await sleep(6_000);
    if (stopping) return;
    victim = launch('worker-victim', 'worker.js', victimEnv, true);
    await sleep(30_000);
  }
}

/** A newcomer's traffic: one library and book, then blocks created and edited every second. */
async function demoTraffic(base: string): Promise<void> {
  const post = async (method: string, p: string, body: unknown) => {
    const r = await fetch(`${base}/api/v1${p}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return (await r.json()) as { id?: string };
  };
  try {
    const lib = await post('POST', '/libraries', { name: 'demo' });
    const book = await post('POST', '/books', { library_id: lib.id, title: 'demo notes' });
    const blocks: string[] = [];
    for (let i = 0; !stopping; i++) {
      if (blocks.length < 5 || i % 3 === 0) {
        const b = await post('POST', '/blocks', { book_id: book.id, block_type: 'text', content: `demo block ${i}` });
        if (b.id) blocks.push(b.id);
      } else {
        const id = blocks[i % blocks.length]!;
        await post('PATCH', `/blocks/${id}`, { content: `demo edit ${i}` });
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
  } catch (err) {
    if (!stopping) say(`loomtrace: demo traffic stopped: ${(err as Error).message}`);
  }
}

