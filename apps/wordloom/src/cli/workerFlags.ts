/**
 * Node flags the worker process runs with (npm start, the tests, the benches): V8's young
 * generation capped at 4 MB per semi-space. A worker draining a backlog allocates fast (each
 * claimed row parsed, each span encoded) and almost all of it dies young; with V8's default cap
 * the young generation grows to tens of MB that are then kept. Measured on a 30,000-event drain
 * (bench/traceAb.ts, alternated): peak RSS 119 → 104 MB untraced and 178 → 136 MB traced at
 * 100 %, worker CPU per event not higher (decision 0016). Run the worker with them in
 * production too: `node --max-semi-space-size=4 dist/src/cli/worker.js`, or in NODE_OPTIONS.
 */
export const WORKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

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
