/**
 * Every span name and attribute key loomtrace writes, defined once.
 *
 * OpenTelemetry messaging conventions are copied in (they are still "development" status
 * upstream), pinned to semantic-conventions v1.38.0, so a change upstream never silently
 * renames what our users query. Our own facts live under one prefix: `loomtrace.`.
 */

/** The semantic-conventions version the messaging keys below are copied from. */
export const SEMCONV_VERSION = '1.38.0';

// --- OpenTelemetry messaging conventions (v1.38.0) -----------------------------------
export const ATTR_MESSAGING_SYSTEM = 'messaging.system';
export const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name';
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
export const ATTR_MESSAGING_MESSAGE_ID = 'messaging.message.id';
export const ATTR_MESSAGING_BATCH_MESSAGE_COUNT = 'messaging.batch.message_count';
export const ATTR_MESSAGING_CLIENT_ID = 'messaging.client.id';
export const ATTR_MESSAGING_CONSUMER_GROUP_NAME = 'messaging.consumer.group.name';

/** `messaging.system` for events that travel through the loomtrace outbox. */
export const MESSAGING_SYSTEM = 'loomtrace';

export const MessagingOperationType = {
  SEND: 'send',
  RECEIVE: 'receive',
  PROCESS: 'process',
  SETTLE: 'settle',
} as const;

// --- Database conventions used on our own spans -------------------------------------
export const ATTR_DB_SYSTEM_NAME = 'db.system.name';
export const ATTR_DB_OPERATION_NAME = 'db.operation.name';
export const ATTR_DB_OPERATION_BATCH_SIZE = 'db.operation.batch.size';
export const ATTR_ERROR_TYPE = 'error.type';

// --- loomtrace's own facts ----------------------------------------------------------
export const PREFIX = 'loomtrace.';

export const ATTR_PROJECTION = 'loomtrace.projection';
export const ATTR_EVENT_TYPE = 'loomtrace.event.type';
export const ATTR_AGGREGATE_ID = 'loomtrace.aggregate.id';
export const ATTR_AGGREGATE_VERSION = 'loomtrace.aggregate.version';
export const ATTR_REQUEST_ID = 'loomtrace.request.id';

/** 1 for the first try; rises by one for every claim of the same event. */
export const ATTR_ATTEMPT = 'loomtrace.attempt';
export const ATTR_MAX_ATTEMPTS = 'loomtrace.max_attempts';
/** Why the previous attempt did not finish: `http_429`, `timeout`, `http_5xx`, `connection`, `lease_lost`, … */
export const ATTR_RETRY_REASON = 'loomtrace.retry.reason';
/** How long the event waited between the previous attempt and this one, by design (backoff). */
export const ATTR_RETRY_DELAY_MS = 'loomtrace.retry.delay_ms';
/** The outcome this attempt decided for the event: done, retry, dead, lost. */
export const ATTR_OUTCOME = 'loomtrace.outcome';
export const ATTR_LEASE_OWNER = 'loomtrace.lease.owner';
export const ATTR_LEASE_TOKEN = 'loomtrace.lease.token';
export const ATTR_LEASE_EXPIRES_AT = 'loomtrace.lease.expires_at';
/** True when this attempt took over an event whose previous lease expired. */
export const ATTR_RECLAIMED = 'loomtrace.reclaimed';
export const ATTR_PREVIOUS_OWNER = 'loomtrace.lease.previous_owner';
export const ATTR_PREVIOUS_TOKEN = 'loomtrace.lease.previous_token';
/** How long the abandoned lease had been held when it was reclaimed. */
export const ATTR_LEASE_AGE_MS = 'loomtrace.lease.age_ms';
/** Rows the guarded ack UPDATE changed: 1 = acked, 0 = the lease was lost (a stale ack). */
export const ATTR_ACK_ROWS_AFFECTED = 'loomtrace.ack.rows_affected';
/** Commit (or scheduled retry time) to claim, from database timestamps. */
export const ATTR_QUEUE_WAIT_MS = 'loomtrace.queue_wait_ms';
/** Where the queue wait's start came from: `commit_timestamp` or `insert_time`. */
export const ATTR_QUEUE_WAIT_SOURCE = 'loomtrace.queue_wait.source';
/** The projection's answer for this item: `written`, `stale` (an older version; success), `failed`. */
export const ATTR_WRITE_RESULT = 'loomtrace.write.result';
export const ATTR_WRITE_STATUS_CODE = 'loomtrace.write.status_code';
export const ATTR_BATCH_SIZE = 'loomtrace.batch.size';
export const ATTR_WORKER_ID = 'loomtrace.worker.id';
export const ATTR_REPLAYED = 'loomtrace.replayed';
export const ATTR_SAMPLED_OUT_PARENT = 'loomtrace.parent.sampled';
/**
 * On the span active around `inTransaction` (the API's `db transaction`): how long the COMMIT
 * took, in milliseconds. BEGIN, COMMIT and ROLLBACK are not traced as their own pg spans
 * (docs/decisions/0009-api-trace-cost.md); the transaction span covers them.
 */
export const ATTR_DB_COMMIT_MS = 'loomtrace.db.commit_ms';

// --- Span names: low cardinality, ids only in attributes -----------------------------
export const SpanNames = {
  TRANSACTION: 'db transaction',
  send: (projection: string) => `send ${projection}`,
  queueWait: (projection: string) => `queue wait ${projection}`,
  process: (projection: string) => `process ${projection}`,
  claim: (projection: string) => `claim ${projection}`,
  write: (projection: string) => `write ${projection}`,
  ack: (projection: string) => `ack ${projection}`,
  batch: (projection: string) => `batch ${projection}`,
  heartbeat: (projection: string) => `heartbeat ${projection}`,
  reclaim: (projection: string) => `reclaim ${projection}`,
} as const;

/** The tracer/meter name used by the library (instrumentation scope). */
export const INSTRUMENTATION_SCOPE = 'loomtrace';
