/**
 * The "why, and what would close the gaps" part of docs/BENCHMARKS.md, computed from one
 * suite run: every miss with by how much, where the time goes per event (bench/cost.ts), and
 * what would close it.
 */
import { fmt, median, percentile } from './env.js';
import type { E2eResult } from './e2e.js';
import { coresOf, costOf, e2eLoad, type Report } from './report.js';

const x = (a: number, b: number) => (b > 0 ? a / b : NaN);
const gap = (ratio: number, target: number) => (ratio >= target ? 'met' : `missed by ${fmt((1 - ratio / target) * 100, 0)}% (${fmt(ratio, 2)} of ${fmt(target, 2)})`);

/** For a traced end-to-end miss: what the same rate did untraced (section 4's reference run), and what that says. */
function untracedReference(r: Report, e: E2eResult, ref: E2eResult | undefined): string {
  if (!ref) return '';
  const on = e2eLoad(r, e);
  const off = e2eLoad(r, ref);
  const refP99 = percentile(ref.samples, 99);
  const load = on && off ? ` The machine's CPU per PATCH, summed over every process: ${fmt(off.totalUs)} µs untraced (${fmt(off.share * 100)}% of its ${coresOf(r)} cores at this rate) and ${fmt(on.totalUs)} µs traced (${fmt(on.share * 100)}%), of which the load generator and the receiver ${fmt((e.cpuUsPerPatch?.load ?? 0) + (e.cpuUsPerPatch?.bench ?? 0))} µs.` : '';
  return ` **Untraced, the same rate gives p50 ${fmt(percentile(ref.samples, 50), 1)} ms, p99 ${fmt(refP99, 1)} ms** (section 4's reference run)${refP99 > 25 ? ': the target is missed without tracing too, so it is the machine\'s 2 cores, shared by every process of the run, that set this p99, more than the tracing.' : ', so tracing is what takes it over the target.'}${load} A p99 of 25 ms at this rate needs the cores well short of saturation (an open-loop queue\'s tail grows steeply as its load nears 100%): less CPU per PATCH in all, or the load generator, the receiver and Postgres on cores of their own, as in a deployment.`;
}

export function analysis(r: Report): string[] {
  const L: string[] = ['## Why, and what would close the gaps', ''];
  const rate = (k: string) => median(r.drain[k] ?? []);
  for (const procs of [1, 2]) {
    const lt = costOf(r, `loomtrace:${procs}`);
    const gw = costOf(r, `graphile:${procs}`);
    if (!Number.isFinite(lt.workerCpuUs) || !Number.isFinite(gw.workerCpuUs)) continue;
    const ratio = x(rate(`loomtrace:${procs}`), rate(`graphile:${procs}`));
    const ltTotal = lt.workerCpuUs + (lt.pgCpuUs ?? NaN);
    const gwTotal = gw.workerCpuUs + (gw.pgCpuUs ?? NaN);
    L.push(
      `- **Drain, ${procs} worker process${procs === 1 ? '' : 'es'}: ${fmt(ratio, 2)}× graphile-worker ${r.versions?.['graphile-worker'] ?? ''}, target 2.0×: ${gap(ratio, 2)}.** ` +
        `Per event, loomtrace costs ${fmt(lt.workerCpuUs, 1)} µs of worker CPU and ${fmt(lt.pgCpuUs ?? NaN, 1)} µs of Postgres CPU (${fmt(ltTotal, 1)} µs together), ${fmt((lt.statements ?? NaN) * 1000, 1)} statements per 1,000 events and ${fmt(lt.walBytes)} WAL bytes; graphile-worker ${fmt(gw.workerCpuUs, 1)} + ${fmt(gw.pgCpuUs ?? NaN, 1)} = ${fmt(gwTotal, 1)} µs, ${fmt((gw.statements ?? NaN) * 1000, 1)} statements per 1,000 and ${fmt(gw.walBytes)} WAL bytes. ` +
        `Loomtrace's worker spends ${fmt(gw.workerCpuUs - lt.workerCpuUs, 1)} µs per event ${lt.workerCpuUs <= gw.workerCpuUs ? 'less' : 'more'} than graphile-worker's, its Postgres work ${fmt(Math.abs((lt.pgCpuUs ?? NaN) - (gw.pgCpuUs ?? NaN)), 1)} µs ${(lt.pgCpuUs ?? 0) >= (gw.pgCpuUs ?? 0) ? 'more' : 'less'}; with two batches in flight the worker and Postgres overlap, so throughput follows the larger side more than the sum (both share the 2 cores, with the other work on this machine). ` +
        `Both already run about 2 statements per 500 events (loomtrace: one claim, one ack by lease token; graphile-worker: one batched fetch, one batched completion), so the statement count is not where the gap is; ` +
        `2.0× would need loomtrace at ≤ ${fmt(gwTotal / 2, 1)} µs of CPU per event in all, ${fmt(ltTotal - gwTotal / 2, 1)} µs less than now. ` +
        `Where it goes: Postgres spends its share on the claim (the queue row's delete and the lease row with the batch's ids; the outbox rows are only read, decision 0013) and the end of the attempt (one HOT update of each event's row, which keeps the acked row for the diagnosis and replay, where graphile-worker deletes its job), and writes ${fmt(lt.walBytes)} bytes of WAL per event for it; the worker's share is mostly the driver parsing the claimed rows (payload, attributes and trace context per row) and garbage collection.`,
    );
  }
  L.push(
    '- **Measured for issue 14 (c): the claim without the payload** (`node dist/bench/claimAb.js`: the real claim → ack-by-token cycle alone, 2 connections, batch 500, 100,000 events, variants alternated, median of 3, 2026-11-29 on Node 24 at load average ~16). Without the payload in the claimed rows: 0.99× the rate of the claim as it is, client CPU 7.9 → 6.7 µs per event (−15%), Postgres CPU not lower (35.2 vs 43.4 µs, within the noise); with the payload fetched afterwards by a second statement per batch (what a sink that needs it would pay): 0.62×; without the commit-timestamp lookup: 0.77× (noise: it does strictly less). So fewer bytes per claimed row saves about 1 µs of worker CPU per event and does not move the drain toward 2.0×: the gap is on the Postgres side (above), and every real sink (Postgres, Elasticsearch, OpenSearch) reads the payload. The payload stayed in the claim; the claim itself changed since (next bullet, decision 0013).',
  );
  L.push(
    '- **What was done for the drain, and what would close the rest** (decision 0013, `node dist/bench/ackLayoutAb.js`: the claim → end-of-attempt cycle alone in SQL, 2 connections, batch 500, 100,000 events, layouts alternated, medians of 3): (a) the claim and the ack each rewriting the outbox row: 63.5 µs of Postgres CPU and 901 WAL bytes per event; (b) the claim only reading the rows, the end of the attempt their one update: 40.7 µs, 288 bytes, 1.32× the rate of (a); (c) the row never updated after insert, one history row per batch: 41.2 µs, 122 bytes, 1.45×, with every reader of an event\'s state moved to the history. (b) is what the outbox does now; (c) saves WAL but no Postgres CPU over it. What would close the rest: the worker\'s own CPU per event, now the larger share (the driver parsing each claimed row, garbage collection); the queue row\'s insert and delete; `synchronous_commit=off` for the queue\'s own statements (a crash could only re-deliver, never lose, an event, but it changes what an acked row promises); or Postgres on its own cores, which takes the Postgres half off the workers\' CPU.',
  );

  const t = r.tracing;
  if (t) {
    const off = median(t.rates['off'] ?? []);
    const on100 = median(t.rates['on100'] ?? []);
    const on10 = median(t.rates['on10'] ?? []);
    const cOff = costOf(r, 'tracing off');
    const c100 = costOf(r, 'tracing on100');
    const c10 = costOf(r, 'tracing on10');
    const spans = Object.entries(t.spansPerEvent).filter(([n]) => !n.startsWith('batch') && !n.startsWith('pg')).reduce((a, [, c]) => a + c, 0);
    L.push(
      `- **Tracing at 100%: ${fmt(x(on100, off), 2)} of untraced, target 0.80: ${gap(x(on100, off), 0.8)}.** ${fmt(c100.workerCpuUs - cOff.workerCpuUs, 1)} µs of worker CPU per event over untraced (${fmt(c100.workerCpuUs, 1)} vs ${fmt(cOff.workerCpuUs, 1)} µs) for ${fmt(spans, 1)} spans per event (process, queue wait, claim, write, ack; encoded straight to OTLP after the lane has sent its next claim, decisions 0007 and 0014) and their HTTP export of ~1.8 KB per event to a receiver on the same 2 cores; Postgres CPU per event ${fmt(c100.pgCpuUs ?? NaN, 1)} vs ${fmt(cOff.pgCpuUs ?? NaN, 1)} µs (the pg instrumentation adds no statement). ${spans < 4.99 ? `Of the 5 spans per event, ${fmt(spans, 2)} reached the receiver: the exporter's queue (65,536 spans) overflowed while a backlog of ${fmt(r.events)} drained and it logged the spans it dropped (never exported, so their export cost is missing: the traced rate is flattering). ` : ''}Where it goes (decision 0018, \`node dist/bench/eventEncode.js\`, in process): encoding the five spans about 3.5 µs per event, their export over loopback HTTP about 6 µs more (the sending process pays the loopback's receive side too); the rest is the batch's spans on the SDK and garbage collection. What would close it: fewer bytes per event on the wire (each span repeats its attribute keys; posting already goes in requests of up to 4,096 spans with a backlog, decision 0016), or the export on a worker thread (it moves the CPU to the other core, it does not remove it).`,
    );
    L.push(
      `- **Tracing at 10% parent-based: ${fmt(x(on10, off), 2)} of untraced, target 0.95: ${gap(x(on10, off), 0.95)}.** ${fmt(c10.workerCpuUs - cOff.workerCpuUs, 1)} µs per event over untraced, of which about ${fmt((c100.workerCpuUs - cOff.workerCpuUs) / 10, 1)} µs is the sampled tenth (a tenth of the 100% mode's cost). The SDK merely on, with nearly every batch quiet (\`BENCH_MODES=off,on0,on10,on100 node dist/bench/traceAb.js\`, decision 0018), costs about 3.5 µs per event (garbage collection, the pg instrumentation; a sampled-out event itself costs one flag check, and a batch with no sampled event makes no span, decision 0014); the rest comes with the batches that hold a sampled event, which at 500 events per batch is every batch. A batch whose own trace the sampler declines (nine in ten at this ratio) now runs as a quiet batch does: no claim span, its write and ack with tracing suppressed, so the pg instrumentation skips them (decision 0023). What is left of the fixed cost per batch with a sampled event is spread, by CPU profiles (decision 0023): the export's requests about 1.3 µs per event, the sampled events' deferred encoders 0.7, the pg instrumentation 0.55, the batch's trace constructor 0.4. Single runs of one mode move by several µs per event on this machine, so a ratio near 0.95 can fall either side of it from run to run. What would close it for good: fewer, larger export requests at a low ratio (they go when 512 spans are queued, every second or third batch at 10%), then the 100% mode's costs for the sampled tenth.`,
    );
  }
  for (const e of r.e2e.filter((e) => e.tracing !== false)) {
    const p99 = percentile(e.samples, 99);
    const ref = r.e2e.find((u) => u.tracing === false && u.rate === e.rate);
    L.push(
      `- **End to end at ${fmt(e.rate)} PATCH/s: p50 ${fmt(percentile(e.samples, 50), 1)} ms, p99 ${fmt(p99, 1)} ms, target p99 ≤ 25 ms: ${p99 <= 25 ? 'met' : `missed by ${fmt(p99 - 25, 1)} ms`}.** Of it, due → PATCH response p50 ${fmt(percentile(e.responses, 50), 1)} ms, p99 ${fmt(percentile(e.responses, 99), 1)} ms (the API: Fastify, one statement for the change and its outbox event (decision 12), the span export, on 2 cores shared with Postgres, the worker, the load generator and the receiver; the event goes in by a plain INSERT, decision 15); response → visible in search p50 ${fmt(percentile(e.afterResponse, 50), 1)} ms, p99 ${fmt(percentile(e.afterResponse, 99), 1)} ms (the outbox: notify, claim, search write and its commit). ${e.errors} errors, ${fmt(e.visible)} of ${fmt(e.sent)} seen.${p99 <= 25 ? '' : percentile(e.responses, 50) > 25 ? ' The API is the part that falls behind: an open-loop generator keeps sending while responses queue, so the response time grows for the rest of the run once the API cannot keep up. What would close it: the API\'s per-request CPU (section 5 measures its ceiling with 16 connections), and the load generator and receiver off the API\'s cores.' : ' Nothing falls behind (the median response stays a few milliseconds): the p99 is a tail of short stalls on 2 cores shared by the API, Postgres, the worker, the load generator and the receiver (garbage collection pauses and WAL flush waits, which `node dist/bench/e2eMain.js --diagnose` lines up against the slow requests). What would close it: less work per request on the same cores (fewer spans per request; the load generator and receiver elsewhere).'}${p99 <= 25 ? '' : untracedReference(r, e, ref)}`,
    );
  }
  if (r.api) {
    const ratio = x(median(r.api.on), median(r.api.off));
    L.push(
      `- **API PATCH traced: ${fmt(ratio, 2)} of untraced, target 0.90: ${gap(ratio, 0.9)}.** ${fmt(median(r.api.off))} → ${fmt(median(r.api.on))} req/s; per request that is ${fmt(1e6 / median(r.api.on) - 1e6 / median(r.api.off), 0)} µs more of the machine's time with tracing on (the HTTP server span, the transaction span, the pg spans and the producer span, encoded to OTLP at their end: decision 0009; the context manager on every promise).${ratio < 0.9 ? ' Where it goes (decisions 0020 and 0022, CPU profiles, CPU by thread and allocation per PATCH at a fixed rate): the OpenTelemetry SDK\'s own code about 62 µs per PATCH, our OTLP encoding and export 37, the pg instrumentation 32, context frames 14, with V8\'s helper threads (parallel scavenges, the compiler) +96 to +143 µs; allocation 37.5 → 55 KB per PATCH, of which the SDK 7.6 KB (span objects, attribute copies, and per-span metric attributes recorded into a no-op meter) and the pg instrumentation 2.2 KB (its metrics, also into a no-op meter). Our own parts (the spans\' encoding and export, the producer span) are 35–45 µs of it. What would close it: the SDK and the pg instrumentation skipping their metric bookkeeping when no meter provider is set (upstream: open-telemetry/opentelemetry-js#6213 added it without the check the Go SDK has), and the API\'s own `db transaction` and `send` spans encoded straight to OTLP (at most 4–7 µs, and a user\'s own span processors would no longer see them: not done).' : ''}`,
    );
  }
  const lt = r.latency['loomtrace'] ?? [];
  const gl = r.latency['graphile'] ?? [];
  if (lt.length && gl.length) {
    L.push(
      `- **Pick-up: p50 ${fmt(percentile(lt, 50), 2)} vs ${fmt(percentile(gl, 50), 2)} ms, p99 ${fmt(percentile(lt, 99), 2)} vs ${fmt(percentile(gl, 99), 2)} ms (loomtrace vs graphile-worker).** Both wake on LISTEN/NOTIFY and then run one claim; the difference is the claim statement (loomtrace's deletes the queue row, reads the outbox row and inserts the lease row) against graphile-worker's get_job, and at this scale within the noise of a shared machine.`,
    );
  }
  L.push('- **Noise.** These machines are shared (see the load average above); absolute figures move by 2× and more between runs. The ratios come from runs alternated within this one script; the CPU-per-event figures are the steadiest.');
  L.push('', 'Profiling aids: `BENCH_CHILD_ARGS="--cpu-prof --cpu-prof-dir=.loomtrace/prof" npm run bench` profiles the worker processes; `node dist/bench/queueLayout.js` times the claim → ack cycle alone in five table layouts (decision 0008); `node dist/bench/explainClaim.js` prints the plans; `node dist/bench/render.js` re-renders this file from the last run\'s figures (.loomtrace/bench-last.json).', '');
  return L;
}
