/**
 * A/B of the API's tracing cost: PATCH throughput (autocannon, 16 connections) and the API
 * process's CPU per request (utime + stime from /proc, less noisy than req/s on a shared
 * machine), modes alternated (ABC CBA …) in one run.
 *
 *   node dist/bench/apiTraceAb.js                       # off, on
 *   MODES=off,on,stock REPS=4 SECS=6 node dist/bench/apiTraceAb.js
 *   RATE=900 MODES=off,on,stock node dist/bench/apiTraceAb.js   # CPU per request at a fixed load
 *
 * Also per mode: the API's GC (bench/loopProbe.ts preloaded: pause time per 1,000 requests and
 * the longest pause, during the load only) and its peak RSS (VmHWM). BENCH_NODE_FLAGS in a mode's
 * environment: the API's Node flags in place of API_NODE_FLAGS (src/cli/workerFlags.ts), e.g.
 * EXTRA='{"noflags":{"BENCH_NODE_FLAGS":""},"ss64":{"BENCH_NODE_FLAGS":"--max-semi-space-size=64"}}'.
 *
 * Modes: off (OTEL_SDK_DISABLED), on (100 %, OTLP http/protobuf to a local receiver: the fast
 * path for the SDK's spans), stock (the same with LOOMTRACE_FAST_SDK_SPANS=false: the SDK's
 * BatchSpanProcessor + OTLP exporter), sampledOff (always_off); EXTRA='{"name":{ENV…}}' adds
 * modes on top of `on`'s environment. With BASE_DIST (another build's apps/wordloom/dist, e.g. a
 * copy of main's), a mode named `base-<mode>` runs that build's api.js with <mode>'s environment:
 *
 *   BASE_DIST=/path/to/main/apps/wordloom/dist MODES=base-off,base-on,off,on node dist/bench/apiTraceAb.js
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { LoopProbeData } from './loopProbe.js';
// @ts-expect-error autocannon ships no types
import autocannon from 'autocannon';
import pg from 'pg';
import { median, procCpuMs, procThreadCpuMs, startBenchPostgres } from './env.js';
import { startReceiver } from './otlpReceiver.js';
import { API_BASE_ENV, apiModes, seedBlocks } from './apiModes.js';
import { startApi } from '../test/support/procs.js';


const probeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'loomtrace-apiab-'));
const probeUrl = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'loopProbe.js')).href;
/** NODE_OPTIONS preloading the GC probe, on top of the mode's own. */
const probeEnv = (env: Record<string, string>, file: string) => ({
  NODE_OPTIONS: `${env['NODE_OPTIONS'] ?? process.env['NODE_OPTIONS'] ?? ''} --import=${probeUrl}`.trim(),
  LOOMTRACE_LOOP_PROBE: file,
});

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const pgh = await startBenchPostgres();
const url = await pgh.database('bench_wordloom');
const rx = await startReceiver();
const base = API_BASE_ENV;
const modes = apiModes(rx);
const names = (process.env['MODES'] ?? 'off,on').split(',');
const baseDist = process.env['BASE_DIST'];
/** The mode's environment, and the api.js it runs (this build's, or BASE_DIST's for `base-…`). */
function modeOf(n: string): { env: Record<string, string>; script: string } {
  const inBase = n.startsWith('base-');
  const env = modes[inBase ? n.slice(5) : n];
  if (!env || (inBase && !baseDist)) throw new Error(`unknown mode ${n}${inBase ? ' (base- modes need BASE_DIST)' : ''}`);
  // The base build's API runs with no Node flags of this build's (API_NODE_FLAGS), unless the mode sets them.
  return inBase ? { env: { BENCH_NODE_FLAGS: '', ...env }, script: path.resolve(baseDist!, 'src', 'cli', 'api.js') } : { env, script: 'api.js' };
}
for (const n of names) modeOf(n);

let api = await startApi(url, { ...base, ...modes['off'] });
const ids = await seedBlocks(api.url);
await api.stop();

const rps: Record<string, number[]> = {};
const cpu: Record<string, number[]> = {};
const gcMs: Record<string, number[]> = {};
const gcMax: Record<string, number[]> = {};
const rss: Record<string, number[]> = {};
const byThread: Record<string, Record<string, number[]>> = {};
let run = 0;
const reps = Number(process.env['REPS'] ?? 3);
for (let rep = 0; rep < reps; rep++) {
  for (const m of rep % 2 ? [...names].reverse() : names) {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query('truncate loomtrace.outbox, loomtrace.outbox_queue, loomtrace.outbox_leases');
    await c.end();
    const mode = modeOf(m);
    const probeFile = path.join(probeDir, `${run++}.json`);
    api = await startApi(url, { ...base, ...mode.env, ...probeEnv(mode.env, probeFile) }, mode.script);
    let i = 0;
    const cpu0 = procCpuMs(api.proc.pid!);
    const threads0 = procThreadCpuMs(api.proc.pid!);
    const t0 = Date.now();
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
    const usPerReq = ((procCpuMs(api.proc.pid!) - cpu0) * 1000) / Math.max(1, r.requests.total);
    // The same CPU by thread (main, V8Worker: GC and compiler helpers, libuv-worker, …), µs per request.
    const threads1 = procThreadCpuMs(api.proc.pid!);
    for (const [t, ms] of Object.entries(threads1)) ((byThread[m] ??= {})[t] ??= []).push(((ms - (threads0[t] ?? 0)) * 1000) / Math.max(1, r.requests.total));
    const t1 = Date.now();
    const peak = peakRssMb(api.proc.pid!);
    await api.stop();
    const probe = JSON.parse(fs.readFileSync(probeFile, 'utf8')) as LoopProbeData;
    const during = probe.gcs.filter(([at]) => at >= t0 && at <= t1);
    const gcs = during.map(([, d]) => d);
    // perf_hooks kinds: 1 minor (scavenge), 2 major, 4 incremental marking, 8 weak callbacks.
    const byKind = [1, 2, 4, 8].map((k) => {
      const ds = during.filter(([, , kind]) => kind === k).map(([, d]) => d);
      return `${({ 1: 'minor', 2: 'major', 4: 'incr', 8: 'weak' } as Record<number, string>)[k]} ${ds.length}×${ds.length ? Math.max(...ds).toFixed(1) : '0'}`;
    });
    (gcMs[m] ??= []).push((gcs.reduce((a, b) => a + b, 0) * 1000) / Math.max(1, r.requests.total));
    (gcMax[m] ??= []).push(Math.max(0, ...gcs));
    (rss[m] ??= []).push(peak);
    (rps[m] ??= []).push(r.requests.average);
    (cpu[m] ??= []).push(usPerReq);
    console.log(`${m} ${r.requests.average.toFixed(0)} req/s, ${usPerReq.toFixed(0)} µs CPU/req, GC ${gcMs[m]!.at(-1)!.toFixed(0)} ms/1k req (longest ${gcMax[m]!.at(-1)!.toFixed(1)} ms; count×longest: ${byKind.join(', ')}), peak RSS ${peak.toFixed(0)} MB, non-2xx ${r.non2xx}`);
  }
}
const off = names.includes('off') ? 'off' : names[0]!;
console.log('\nmode          req/s  ratio   API µs CPU/req  ratio(off/mode)   GC ms/1k req  longest GC ms  peak RSS MB');
for (const m of names) {
  const q = median(rps[m]!);
  const u = median(cpu[m]!);
  console.log(
    `${m.padEnd(12)} ${q.toFixed(0).padStart(6)}  ${(q / median(rps[off]!)).toFixed(2)}   ${u.toFixed(0).padStart(8)}        ${(median(cpu[off]!) / u).toFixed(2)}` +
      `   ${median(gcMs[m]!).toFixed(0).padStart(12)}  ${median(gcMax[m]!).toFixed(1).padStart(13)}  ${median(rss[m]!).toFixed(0).padStart(11)}`,
  );
}
console.log('\nAPI µs CPU/req by thread (medians): ' + names.map((m) => `${m}: ${Object.entries(byThread[m] ?? {}).map(([t, v]) => `${t} ${median(v).toFixed(0)}`).join(', ')}`).join('; '));
fs.rmSync(probeDir, { recursive: true, force: true });
await rx.close();
await pgh.stop();
