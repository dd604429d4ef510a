/**
 * Paired A/B of the API's CPU per PATCH: the two modes' API processes run side by side, each
 * under the same fixed load (autocannon, RATE req/s each, 8 connections each, separate blocks),
 * so both see the same machine (a shared machine's load moves single runs by ±30 %; a pair
 * moves together). After WARM seconds of load (JIT and pools warm), SECS seconds are measured:
 * µs of API CPU per request (utime + stime from /proc) and its split by thread (main, V8Worker:
 * GC and compiler helpers). REPS pairs, fresh processes each; the table gives medians and the
 * median of the per-pair differences.
 *
 *   MODES=off,on RATE=250 REPS=5 node dist/bench/apiPairAb.js
 *   BASE_DIST=/path/to/base/apps/wordloom/dist MODES=base-on,on node dist/bench/apiPairAb.js
 *
 * Modes as bench/apiTraceAb.ts: off, on, sampledOff, stock, EXTRA='{"name":{ENV…}}' on top of
 * `on`, base-<mode> (BASE_DIST's api.js). Throughput is apiTraceAb's; this one is for CPU.
 */
import path from 'node:path';
// @ts-expect-error autocannon ships no types
import autocannon from 'autocannon';
import { median, procCpuMs, procThreadCpuMs, sleep, startBenchPostgres } from './env.js';
import { startReceiver } from './otlpReceiver.js';
import { API_BASE_ENV, apiModes, seedBlocks } from './apiModes.js';
import { startApi } from '../test/support/procs.js';

const pgh = await startBenchPostgres();
const url = await pgh.database('bench_wordloom');
const rx = await startReceiver();
const base = API_BASE_ENV;
const modes = apiModes(rx);
const [nameA, nameB] = (process.env['MODES'] ?? 'off,on').split(',') as [string, string];
const baseDist = process.env['BASE_DIST'];
function modeOf(n: string): { env: Record<string, string>; script: string } {
  const inBase = n.startsWith('base-');
  const env = modes[inBase ? n.slice(5) : n];
  if (!env || (inBase && !baseDist)) throw new Error(`unknown mode ${n}${inBase ? ' (base- modes need BASE_DIST)' : ''}`);
  return inBase ? { env: { BENCH_NODE_FLAGS: '', ...env }, script: path.resolve(baseDist!, 'src', 'cli', 'api.js') } : { env, script: 'api.js' };
}
modeOf(nameA);
modeOf(nameB);

const rate = Number(process.env['RATE'] ?? 250);
const secs = Number(process.env['SECS'] ?? 8);
const warm = Number(process.env['WARM'] ?? 4);
const reps = Number(process.env['REPS'] ?? 5);

const seedApi = await startApi(url, { ...base, ...modes['off'] });
const ids = await seedBlocks(seedApi.url);
await seedApi.stop();
const blocksOf = [ids.slice(0, 100), ids.slice(100)] as const;

function load(apiUrl: string, blocks: readonly string[], seconds: number): Promise<{ requests: { total: number }; non2xx: number }> {
  let i = 0;
  return autocannon({
    url: apiUrl,
    connections: 8,
    duration: seconds,
    overallRate: rate,
    requests: [
      {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req: Record<string, unknown>) => {
          const n = i++;
          return { ...req, path: `/api/v1/blocks/${blocks[n % blocks.length]}`, body: JSON.stringify({ content: `e ${n}` }) };
        },
      },
    ],
  });
}

const cpu: Record<string, number[]> = { [nameA]: [], [nameB]: [] };
const threads: Record<string, Record<string, number[]>> = { [nameA]: {}, [nameB]: {} };
const diffs: number[] = [];
for (let rep = 0; rep < reps; rep++) {
  // Which mode gets which half of the blocks alternates too.
  const pair = rep % 2 ? [nameB, nameA] : [nameA, nameB];
  const apis = await Promise.all(pair.map((m) => startApi(url, { ...base, ...modeOf(m).env }, modeOf(m).script)));
  await Promise.all(apis.map((a, k) => load(a.url, blocksOf[k]!, warm)));
  await sleep(200);
  const c0 = apis.map((a) => procCpuMs(a.proc.pid!));
  const t0 = apis.map((a) => procThreadCpuMs(a.proc.pid!));
  const rs = await Promise.all(apis.map((a, k) => load(a.url, blocksOf[k]!, secs)));
  const us: Record<string, number> = {};
  pair.forEach((m, k) => {
    const n = Math.max(1, rs[k]!.requests.total);
    us[m] = ((procCpuMs(apis[k]!.proc.pid!) - c0[k]!) * 1000) / n;
    cpu[m]!.push(us[m]!);
    for (const [t, ms] of Object.entries(procThreadCpuMs(apis[k]!.proc.pid!))) ((threads[m]![t] ??= [])).push(((ms - (t0[k]![t] ?? 0)) * 1000) / n);
    if (rs[k]!.non2xx) console.log(`${m}: ${rs[k]!.non2xx} non-2xx`);
  });
  diffs.push(us[nameB]! - us[nameA]!);
  console.log(`pair ${rep + 1}: ${nameA} ${us[nameA]!.toFixed(0)} µs CPU/req, ${nameB} ${us[nameB]!.toFixed(0)} (${rs[0]!.requests.total} and ${rs[1]!.requests.total} requests)`);
  await Promise.all(apis.map((a) => a.stop()));
}
const show = (m: string) =>
  `${m}: ${median(cpu[m]!).toFixed(0)} µs CPU/req (${Object.entries(threads[m]!).filter(([, v]) => median(v) >= 1).map(([t, v]) => `${t} ${median(v).toFixed(0)}`).join(', ')})`;
console.log(`\n${show(nameA)}\n${show(nameB)}\n${nameB} − ${nameA}: median of pair differences ${median(diffs).toFixed(0)} µs/req (${diffs.map((d) => d.toFixed(0)).join(', ')}); ratio of medians ${(median(cpu[nameB]!) / median(cpu[nameA]!)).toFixed(2)}`);
await rx.close();
await pgh.stop();
