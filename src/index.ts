/**
 * loomtrace's public API, listed by name. Everything else is internal.
 * The library part depends on @opentelemetry/api only; wire an SDK in your process.
 */
export { enqueue, enqueueMany } from './outbox/enqueue.js';
export { OutboxWorker } from './outbox/worker.js';
export type { WorkerStats } from './outbox/worker.js';
export { compileWorkerOptions } from './outbox/options.js';
export type { WorkerOptions, CompiledWorkerOptions, Logger } from './outbox/options.js';
export type { EnqueueInput, OutboxEvent } from './outbox/types.js';
export type { Sink } from './outbox/sink.js';
export { ProjectionError, WRITTEN, STALE, classifyError, classifyStatus, parseRetryAfter, isSuccess } from './outbox/outcome.js';
export type { ItemOutcome, FailureReason } from './outbox/outcome.js';
export { backoffDelay, backoffBounds, DEFAULT_BACKOFF } from './outbox/backoff.js';
export type { BackoffPolicy } from './outbox/backoff.js';
export { PostgresSearchSink } from './projection/postgres/sink.js';
export { createPool, inTransaction } from './db/pool.js';
export { isConnectionError } from './db/connectionError.js';
export type { Pool, PoolClient, Queryable } from './db/pool.js';
export { migrate, migrationsCurrent } from './db/migrate.js';
export { injectContext, extractContext } from './tracing/carrier.js';
export type { StoredContext } from './tracing/carrier.js';
export * as semconv from './tracing/semconv.js';
