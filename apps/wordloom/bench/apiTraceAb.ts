/**
 * A/B of the API's tracing cost: PATCH throughput (autocannon, 16 connections) and the API
 * process's CPU per request (utime + stime from /proc, less noisy than req/s on a shared
 * machine), modes alternated (ABC CBA …) in one run.
 *
 *   node dist/bench/apiTraceAb.js                       # off, on
 *   MODES=off,on,stock REPS=4 SECS=6 node dist/bench/apiTraceAb.js
 *   RATE=900 MODES=off,on,stock node dist/bench/apiTraceAb.js   # CPU per request at a fixed load
 *
 * Modes: off (OTEL_SDK_DISABLED), on (100 %, OTLP http/protobuf to a local receiver: the fast
 * path for the SDK's spans), stock (the same with LOOMTRACE_FAST_SDK_SPANS=false: the SDK's
 * BatchSpanProcessor + OTLP exporter), sampledOff (always_off); EXTRA='{"name":{ENV…}}' adds
 * modes on top of `on`'s environment.
 */
import fs from 'node:fs';
// @ts-expect-error autocannon ships no types
import autocannon from 'autocannon';
import pg from 'pg';
import { median, startBenchPostgres } from './env.js';
import { startReceiver } from './otlpReceiver.js';
import { startApi } from '../test/support/procs.js';

const TICK = 100; // USER_HZ on Linux

function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / TICK;
}

const pgh = await startBenchPostgres();
const url = await pgh.database('bench_wordloom');
const rx = await startReceiver();
const base = { LOG_LEVEL: 'warn', METRICS_PORT: '0' };
const on = { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: rx.url, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_TRACES_SAMPLER: 'parentbased_always_on' };
const extra = process.env['EXTRA'] ? (JSON.parse(process.env['EXTRA']) as Record<string, Record<string, string>>) : {};
const modes: Record<string, Record<string, string>> = {
  off: { OTEL_SDK_DISABLED: 'true' },
  on,
  stock: { ...on, LOOMTRACE_FAST_SDK_SPANS: 'false' },
  sampledOff: { ...on, OTEL_TRACES_SAMPLER: 'always_off' },
  ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, { ...on, ...v }])),
};
const names = (process.env['MODES'] ?? 'off,on').split(',');
for (const n of names) if (!modes[n]) throw new Error(`unknown mode ${n}`);

let api = await startApi(url, { ...base, ...modes['off'] });
const post = (p: string, body: unknown) =>
  fetch(`${api.url}${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json() as Promise<{ id: string }>);
const lib = await post('/api/v1/libraries', { name: 'x' });
const book = await post('/api/v1/books', { library_id: lib.id, title: 'b' });
const ids: string[] = [];
for (let i = 0; i < 200; i++) ids.push((await post('/api/v1/blocks', { book_id: book.id, block_type: 'text', content: `b ${i}`, position: i })).id);
await api.stop();

const rps: Record<string, number[]> = {};
const cpu: Record<string, number[]> = {};
const reps = Number(process.env['REPS'] ?? 3);
for (let rep = 0; rep < reps; rep++) {
  for (const m of rep % 2 ? [...names].reverse() : names) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('truncate loomtrace.outbox, loomtrace.outbox_queue, loomtrace.outbox_leases');
    await c.end();
    api = await startApi(url, { ...base, ...modes[m] });
    let i = 0;
    const cpu0 = cpuMs(api.proc.pid!);
    const r = await autocannon({
      url: api.url,
      connections: 16,
      duration: Number(process.env['SECS'] ?? 6),
      // RATE: a fixed offered load (req/s), so CPU per request compares at the same load.
      ...(process.env['RATE'] ? { overallRate: Number(process.env['RATE']) } : {}),
      requests: [
        {
          method: 'PATCH',
          headers: { 'content-type': 'application/json' },
          setupRequest: (req: any) => {
            const n = i++;
            return { ...req, path: `/api/v1/blocks/${ids[n % ids.length]}`, body: JSON.stringify({ content: `e ${n}` }) };
          },
        },
      ],
    });
    const usPerReq = ((cpuMs(api.proc.pid!) - cpu0) * 1000) / Math.max(1, r.requests.total);
    await api.stop();
    (rps[m] ??= []).push(r.requests.average);
    (cpu[m] ??= []).push(usPerReq);
    console.log(`${m} ${r.requests.average.toFixed(0)} req/s, ${usPerReq.toFixed(0)} µs CPU/req, non-2xx ${r.non2xx}`);
  }
}
const off = names.includes('off') ? 'off' : names[0]!;
console.log('\nmode          req/s  ratio   API µs CPU/req  ratio(off/mode)');
for (const m of names) {
  const q = median(rps[m]!);
  const u = median(cpu[m]!);
  console.log(`${m.padEnd(12)} ${q.toFixed(0).padStart(6)}  ${(q / median(rps[off]!)).toFixed(2)}   ${u.toFixed(0).padStart(8)}        ${(median(cpu[off]!) / u).toFixed(2)}`);
}
await rx.close();
await pgh.stop();
