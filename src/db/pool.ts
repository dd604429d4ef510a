import pg from 'pg';

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

/** Runs `fn` inside BEGIN/COMMIT on one client; rolls back and rethrows on failure. */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    try {
      await client.query('rollback');
    } catch {
      /* the connection may be gone; the pool will discard it */
    }
    throw err;
  } finally {
    client.release();
  }
}
