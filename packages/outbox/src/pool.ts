import { context, createContextKey, trace, type Context } from '@opentelemetry/api';
import pg from 'pg';
import { ATTR_DB_COMMIT_MS } from './tracing/semconv.js';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;
export type Queryable = Pick<pg.ClientBase, 'query'>;

export interface PoolOptions {
  connectionString: string;
  max?: number;
  applicationName?: string;
}

/** One place that makes pools, so every process names itself in pg_stat_activity. */
export function createPool(options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max ?? 10,
    application_name: options.applicationName ?? 'loomtrace',
    // A terminated backend surfaces as an error on an idle client; the pool drops it and
    // the next query gets a fresh connection. Without a listener Node would crash.
    idleTimeoutMillis: 30_000,
  });
  pool.on('error', () => {
    /* idle client lost (for example pg_terminate_backend); the pool replaces it */
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
function untracedContext(): Context {
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
    try {
      await untraced(client, 'rollback', quiet);
    } catch {
      /* the connection may be gone; the pool will discard it */
    }
    throw err;
  } finally {
    client.release();
  }
}
