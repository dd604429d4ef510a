import { randomInt } from 'node:crypto';
import type { Pool, PoolClient } from './pool.js';
import type { Logger } from './options.js';
import { shortMessage } from './tracing/spans.js';

/** The first key of every presence lock (two-int form: pg_locks shows it as classid, the worker's key as objid). */
export const PRESENCE_LOCK_CLASS = 0x4c54_4f42; // "LTOB"

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/**
 * A worker's presence in Postgres: a session advisory lock held on a connection of its own for
 * as long as the process lives (decision 0011). `key` is what the claim records in each lease
 * row; undefined while the lock is not held (then leases fall back to their expiry). A lost
 * connection is replaced and the same key taken again.
 */
export class WorkerPresence {
  /** Random per process; a collision with a live worker only delays a reclaim to the lease's expiry. */
  readonly lockKey = randomInt(1, 2 ** 31 - 1);
  private client: PoolClient | undefined;
  private closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly logger: Logger,
  ) {}

  /** The key to record with a lease, when the lock is held now. */
  get key(): number | undefined {
    return this.client ? this.lockKey : undefined;
  }

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let client: PoolClient | undefined;
    let released = false;
    const drop = (err?: Error) => {
      if (released || !client) return;
      released = true;
      if (this.client === client) this.client = undefined;
      client.release(err ?? true);
    };
    try {
      client = await this.pool.connect();
      client.on('error', (err) => {
        if (released || this.closed) return;
        drop(err);
        this.logger.warn({}, 'presence connection lost; leases fall back to their expiry until it is back');
        void sleep(250).then(() => this.connect());
      });
      await client.query('select pg_advisory_lock($1, $2)', [PRESENCE_LOCK_CLASS, this.lockKey]);
      if (this.closed) {
        drop();
        return;
      }
      this.client = client;
    } catch (err) {
      drop(err as Error);
      if (this.closed) return;
      this.logger.warn({ err: shortMessage(err) }, 'presence lock not taken; leases fall back to their expiry');
      void sleep(1_000).then(() => this.connect());
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    try {
      await c.query('select pg_advisory_unlock($1, $2)', [PRESENCE_LOCK_CLASS, this.lockKey]);
      c.release();
    } catch (err) {
      c.release(err as Error);
    }
  }
}
