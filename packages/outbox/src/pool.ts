import { context, createContextKey, trace, type Context } from '@opentelemetry/api';
import pg from 'pg';
import { ATTR_DB_COMMIT_MS } from './tracing/semconv.js';
import { isConnectionError } from './connectionError.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.ClientBase, 'query'>;

export interface PoolOptions {
  connectionString: string;
  max?: number;
  applicationName?: string;
  /**
   * Events inserted on this pool's connections do not NOTIFY the workers in their transaction
   * (session setting `loomtrace.enqueue_notify=off`, migration 000075): the producer wakes them
   * after each commit with an `OutboxWaker`. For producers committing many events a second: a
   * NOTIFY holds a lock across the commit's WAL flush, so notifying transactions cannot share
   * flushes (decision record 0012). Default false.
   */
  notifyAfterCommit?: boolean;
}

/** One place that makes pools, so every process names itself in pg_stat_activity. */
export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'loomtrace',
    idleTimeoutMillis: 30_000,
    ...(options.notifyAfterCommit ? { options: '-c loomtrace.enqueue_notify=off' } : {}),
  });
  // A terminated backend (pg_terminate_backend, a restart, a failover) makes node-postgres emit
  // 'error' on the client. The pool listens only while a client is idle: it drops it, and the
  // next query gets a fresh connection.
  pool.on('error', () => {
    /* idle client lost; the pool replaces it */
  });
  // A checked-out client has no listener of the pool's, and an 'error' without a listener is
  // an uncaught exception: the process would exit. The error reaches whoever holds the client
  // anyway (its query in flight rejects, and later ones reject: the client is not queryable);
  // they release it with the error (`client.release(err)`) so the pool discards it.
  pool.on('connect', (client) => {
    client.on('error', () => {
      /* surfaced as a rejected query to the holder; see above */
    });
  });
  return pool;
}

/**
 * The OpenTelemetry SDK's "suppress tracing" context key. createContextKey returns
 * Symbol.for(description), so this is the very key @opentelemetry/core's suppressTracing()
 * sets, without depending on @opentelemetry/core: under it the SDK's tracers start only
 * non-recording spans.
 */
const SUPPRESS_TRACING = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');

/**
 * The context BEGIN, COMMIT and ROLLBACK run in: no active span (a pg instrumentation with
 * requireParentSpan skips the query outright, no span, no wrapping) and tracing suppressed (one
 * without it starts a non-recording span, never a root span of its own).
 */
export function untracedContext(): Context {
  return trace.deleteSpan(context.active()).setValue(SUPPRESS_TRACING, true);
}

function untraced(client: pg.PoolClient, sql: string, ctx: Context): Promise<unknown> {
  return context.with(ctx, () => client.query(sql));
}

/**
 * Runs `fn` inside BEGIN/COMMIT on one client; rolls back and rethrows on failure.
 *
 * BEGIN, COMMIT and ROLLBACK are not traced as database spans of their own: the span active
 * around the call (the API's `db transaction`) covers them, and gets the COMMIT's duration as
 * `loomtrace.db.commit_ms`. The statements inside `fn` are traced as usual.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  const quiet = untracedContext();
  /** Set when the connection is no longer usable: the client is released with it, and discarded. */
  let broken: Error | undefined;
  try {
    await untraced(client, 'begin', quiet);
    const result = await fn(client);
    const span = trace.getActiveSpan();
    if (span?.isRecording()) {
      const t0 = performance.now();
      await untraced(client, 'commit', quiet);
      span.setAttribute(ATTR_DB_COMMIT_MS, Math.round((performance.now() - t0) * 1000) / 1000);
    } else {
      await untraced(client, 'commit', quiet);
    }
    return result;
  } catch (err) {
    if (isConnectionError(err)) broken = err as Error;
    try {
      await untraced(client, 'rollback', quiet);
    } catch (rollbackErr) {
      // The connection is gone (or the session is in a state we cannot trust): never reuse it.
      broken ??= rollbackErr instanceof Error ? rollbackErr : new Error(String(rollbackErr));
    }
    throw err;
  } finally {
    client.release(broken);
  }
}
