/**
 * Node flags the worker process runs with (npm start, the tests, the benches):
 * - V8's young generation capped at 4 MB per semi-space. A worker draining a backlog allocates
 *   fast (each claimed row parsed, each span encoded) and almost all of it dies young; with V8's
 *   default cap the young generation grows to tens of MB that are then kept. Measured on a
 *   30,000-event drain (bench/traceAb.ts, alternated): peak RSS 119 → 104 MB untraced and
 *   178 → 136 MB traced at 100 %, worker CPU per event not higher (decision 0016).
 * - The old generation's limit set at 1.5× what a full collection leaves alive. With the small
 *   young generation much of a drain's short-lived data is promoted, and V8's own growing factor
 *   let the old space reach 30–43 MB committed (15–20 MB of it live) before the next full
 *   collection. Measured (bench/traceAb.ts and bench/e2eRssAb.ts, alternated, medians of 3):
 *   drain peak RSS 101 → 86 MB untraced, 141 → 116 MB traced at 100 %; end to end at 1,000
 *   PATCH/s traced 118 → 116 MB (112–133 → 115–116); CPU per event and per PATCH not higher
 *   (decision 0024). A V8 flag Node does not take in NODE_OPTIONS: give it on the command line.
 * Run the worker with them in production too:
 * `node --max-semi-space-size=4 --heap-growing-percent=50 dist/src/cli/worker.js`.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--heap-growing-percent=50'];

/**
 * Node flags the API process runs with (npm start, the tests, the benches): V8's young
 * generation capped at 32 MB per semi-space. With V8's default cap on Node 24 the API's young
 * generation can grow until each scavenge is a long pause (at 250 PATCH/s, traced: 50-140 ms;
 * capped at 32: 33-44 ms), and saturated it cost no throughput; 16 made the pauses shorter still
 * but spent more GC time per request when saturated (bench/apiTraceAb.ts and the end-to-end
 * bench, alternated; docs/decisions/0020-api-gc-and-tracing-cost.md). Run the API with them in
 * production too: `node --max-semi-space-size=32 dist/src/cli/api.js`, or in NODE_OPTIONS.
 */
export const API_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32'];

/** The flags of one of our processes, by its script's file name (`api.js`, `worker.js`; others: none). */
export function processFlags(script: string): readonly string[] {
  const name = script.slice(script.lastIndexOf('/') + 1);
  return name === 'worker.js' ? WORKER_NODE_FLAGS : name === 'api.js' ? API_NODE_FLAGS : [];
}
