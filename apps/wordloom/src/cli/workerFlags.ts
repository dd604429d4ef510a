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
