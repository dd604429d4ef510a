import { randomInt } from 'node:crypto';
import type { Pool } from './pool.js';
import type { Logger } from './options.js';
import { HeldSession } from './session.js';

/** The first key of every presence lock (two-int form: pg_locks shows it as classid, the worker's key as objid). */
export const PRESENCE_LOCK_CLASS = 0x4c54_4f42; // "LTOB"

/**
 * A worker's presence in Postgres: a session advisory lock held on a connection of its own for
 * as long as the process lives (decision 0011). `key` is what the claim records in each lease
 * row; undefined while the lock is not held (then leases fall back to their expiry). A lost
 * connection is replaced and the same key taken again.
 */
export class WorkerPresence {
  /** Random per process; a collision with a live worker only delays a reclaim to the lease's expiry. */
  readonly lockKey = randomInt(1, 2 ** 31 - 1);
  private readonly session: HeldSession;

  constructor(pool: Pool, logger: Logger) {
    this.session = new HeldSession(
      pool,
      {
        what: 'presence',
        setup: (c) => c.query('select pg_advisory_lock($1, $2)', [PRESENCE_LOCK_CLASS, this.lockKey]).then(() => undefined),
        teardown: (c) => c.query('select pg_advisory_unlock($1, $2)', [PRESENCE_LOCK_CLASS, this.lockKey]),
        meanwhile: 'leases fall back to their expiry',
      },
      logger,
    );
  }

  /** The key to record with a lease, when the lock is held now. */
  get key(): number | undefined {
    return this.session.client ? this.lockKey : undefined;
  }

  start(): Promise<void> {
    return this.session.start();
  }

  close(): Promise<void> {
    return this.session.close();
  }
}
