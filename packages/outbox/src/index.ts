/**
 * @loomtrace/outbox's public API, listed by name. Everything else is internal.
 * It needs `pg` and `@opentelemetry/api` (peers); wire an SDK in your process. Span names and
 * attribute keys are at `@loomtrace/outbox/semconv`.
 */
export { enqueue, enqueueMany, sendInStatement } from './enqueue.js';
export type { StatementEventInput, SentEvent } from './enqueue.js';
export { OutboxWorker } from './worker.js';
export type { WorkerStats } from './worker.js';
export { compileWorkerOptions } from './options.js';
export type { WorkerOptions, CompiledWorkerOptions, Logger } from './options.js';
export type { EnqueueInput, EnqueueClient, EnqueueQuery, OutboxEvent } from './types.js';
export type { Sink } from './sink.js';
export { ProjectionError, WRITTEN, STALE, classifyError, classifyStatus, parseRetryAfter, isSuccess } from './outcome.js';
export type { ItemOutcome, FailureReason } from './outcome.js';
export { backoffDelay, backoffBounds, renderBackoffTable, DEFAULT_BACKOFF } from './backoff.js';
export type { BackoffPolicy } from './backoff.js';
export { createPool, inTransaction } from './pool.js';
export { OutboxWaker } from './waker.js';
export type { Pool, PoolClient, Queryable } from './pool.js';
export { migrate, migrationsCurrent, runMigrations, loadMigrations, migrationsDir, OUTBOX_MIGRATIONS } from './migrate.js';
export type { Migration, MigrationSet } from './migrate.js';
export { injectContext, extractContext } from './tracing/carrier.js';
export type { StoredContext } from './tracing/carrier.js';
export { OutboxUpkeep, compileUpkeepOptions } from './upkeep.js';
export type { UpkeepOptions, CompiledUpkeepOptions } from './upkeep.js';
export { listDeadEvents } from './sql/listDeadEvents.js';
export type { DeadFilter, DeadRow, OutboxEventKey } from './sql/listDeadEvents.js';
export { replayDeadEvents } from './sql/replayDeadEvents.js';
export { queueStats } from './sql/queueStats.js';
export type { QueueStatsRow } from './sql/queueStats.js';
export { registerQueueGauges, MetricNames } from './metrics.js';
export { withSpan, tracer, shortMessage, recordFailure } from './tracing/spans.js';
export type { SpanOptions } from './tracing/spans.js';
export { parseTraceparent, formatTraceparent } from './tracing/carrier.js';
export type { AttrKey, AttrSet, AttrTarget, AttrValue, EventIds, EventSpanEncoder, EventSpanSink, Fragment, SpanOrigin, SpanPrefix, Role } from './tracing/spanEncoder.js';
export { isConnectionError } from './connectionError.js';
export type { CanaryChange, Pipeline, ProjectionInspector, ProjectedState, SourceState, SpanExpectation } from './pipeline.js';
