/**
 * The end-to-end run's load generator, in its own thread (its own event loop and heap): the main
 * thread's poll of search.blocks, OTLP receiver and GC cannot delay a send, and this thread's own
 * delay is measured apart. Open loop as wrk2 does it: request i is due at start + i / rate and
 * timed from then, over a bounded set of keep-alive connections (a request waiting for a free
 * connection is late, and that wait counts). Warms the API first (JIT, connections), untimed.
 *
 * Messages to the parent: `{ t: 'warm' }` after the warm-up, then `{ t: 'rows', rows }` every 10 ms
 * during the run (one row per finished PATCH), then `{ t: 'done', cpuUs, lateMs }`.
 * The parent sends `'go'` to start the timed part.
 */
import { Agent, request } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';

export interface LoadConfig {
  url: string;
  ids: string[];
  rate: number;
  seconds: number;
  warmupSeconds: number;
  connections: number;
}
/** [block index, version (−1: failed), due, sent, response end (epoch ms), error kind] */
export type LoadRow = [number, number, number, number, number, string];
export type LoadMessage =
  | { t: 'warm' }
  | { t: 'rows'; rows: LoadRow[] }
  | { t: 'done'; sent: number; cpuUs: number; loopDelayMaxMs: number; loopDelayP99Ms: number };

/** This thread's CPU (Node ≥ 23.9); NaN where the runtime cannot tell a thread's apart. */
const threadCpu = (process as { threadCpuUsage?: (prev?: NodeJS.CpuUsage) => NodeJS.CpuUsage }).threadCpuUsage?.bind(process);
const epochMs = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

type Send = (path: string, body: string) => Promise<{ status: number; body: string }>;

/**
 * node:http with a keep-alive Agent of `connections` sockets; requests beyond them queue in it.
 * (undici's Pool cost this thread as much CPU per PATCH, alternated: 581 and 637 µs against 533 and 682.)
 */
function client(cfg: LoadConfig): { send: Send; close(): Promise<void> } {
  const agent = new Agent({ keepAlive: true, maxSockets: cfg.connections });
  const url = new URL(cfg.url);
  return { send: (p, b) => httpPatch(agent, url, p, b), close: async () => agent.destroy() };
}

function httpPatch(agent: Agent, url: URL, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { agent, host: url.hostname, port: url.port, method: 'PATCH', path, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends `total` PATCHes at `rate`; `onRow` gets each as it finishes. */
async function openLoop(cfg: LoadConfig, send: Send, total: number, tag: string, onRow: (r: LoadRow) => void): Promise<void> {
  const inflight: Promise<void>[] = [];
  const start = epochMs();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / cfg.rate;
    const wait = due - epochMs();
    if (wait > 1) await sleep(wait);
    const b = i % cfg.ids.length;
    const sent = epochMs();
    inflight.push(
      send(`/api/v1/blocks/${cfg.ids[b]}`, JSON.stringify({ content: `bench ${tag} ${i} quick brown fox` })).then(
        (res) => {
          if (res.status !== 200) return onRow([b, -1, due, sent, epochMs(), `HTTP ${res.status} ${/"code":"([A-Z_]+)"/.exec(res.body)?.[1] ?? ''}`.trim()]);
          onRow([b, Number((JSON.parse(res.body) as { version: number | string }).version), due, sent, epochMs(), '']);
        },
        (err: Error & { code?: string }) => onRow([b, -1, due, sent, epochMs(), `socket ${err.code ?? err.name}`]),
      ),
    );
  }
  await Promise.all(inflight);
}

async function main(): Promise<void> {
  const cfg = workerData as LoadConfig;
  const port = parentPort!;
  const post = (m: LoadMessage) => port.postMessage(m);
  const http = client(cfg);
  const go = new Promise<void>((r) => port.once('message', () => r()));
  await openLoop(cfg, http.send, Math.round(cfg.rate * cfg.warmupSeconds), 'warm-up', () => undefined);
  post({ t: 'warm' });
  await go;
  const cpu0 = threadCpu?.();
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  let rows: LoadRow[] = [];
  const flush = setInterval(() => {
    if (rows.length) post({ t: 'rows', rows });
    rows = [];
  }, 10);
  await openLoop(cfg, http.send, cfg.rate * cfg.seconds, 'edit', (r) => rows.push(r));
  clearInterval(flush);
  if (rows.length) post({ t: 'rows', rows });
  h.disable();
  const cpu = threadCpu && cpu0 ? threadCpu(cpu0) : { user: NaN, system: NaN };
  await http.close();
  post({ t: 'done', sent: cfg.rate * cfg.seconds, cpuUs: cpu.user + cpu.system, loopDelayMaxMs: h.max / 1e6, loopDelayP99Ms: h.percentile(99) / 1e6 });
}

if (parentPort) await main();
