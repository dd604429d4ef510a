/**
 * Internals that loomtrace's own tests and benchmarks reach (`@loomtrace/outbox/internal`).
 * Listed by name like the public API, but with no compatibility promise: applications use
 * the package root.
 */
export { BatchTrace, observeBatchTraces, resetTracingProbe } from './attemptTrace.js';
export { parseStored, storedSampling } from './tracing/storedParent.js';
export type { BatchTraceObserver, FinishTimes, Settled } from './attemptTrace.js';
export { claimEvents } from './sql/claimEvents.js';
export type { ClaimRow } from './sql/claimEvents.js';
export { insertEvents } from './sql/insertEvents.js';
export { purgeDone } from './sql/purgeDone.js';
export { completeBatch } from './sql/completeBatch.js';
export { completeEvents } from './sql/completeEvents.js';
export { failEvents } from './sql/failEvents.js';
export { reclaimExpired } from './sql/reclaimExpired.js';
export { releaseEvents } from './sql/releaseEvents.js';
export { renewLease } from './sql/renewLease.js';
