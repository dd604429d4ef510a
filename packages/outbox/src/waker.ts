import { context } from '@opentelemetry/api';
import pg from 'pg';
import { OUTBOX_CHANNEL } from './listener.js';
import type { Pool } from './pool.js';
import { untracedContext } from './pool.js';

/**
 * Wakes the workers after a producer's commit, for a pool made with
 * `createPool({ notifyAfterCommit: true })` (its transactions do not NOTIFY: decision record
 * 0012). `wake()` returns at once; one `NOTIFY` is in flight at a time, and calls while it is
 * get one more after it, so every commit is followed by a notification sent wholly after it
 * (a worker woken by it sees the committed events) and a busy API sends far fewer than one per
 * commit. The NOTIFY runs in a transaction of its own that writes nothing, so it never waits
 * for a WAL flush; it is not traced (like BEGIN/COMMIT in `inTransaction`). It goes over a
 * connection of its own (the producer pool's settings, one connection), never queued behind the
 * producer's requests waiting for a connection of a busy pool.
 *
 * A notification that cannot be sent (the database is away) is not retried: the workers' poll
 * (`pollIntervalMs`) finds the events, as it does after a lost notification.
 */
export class OutboxWaker {
  private inFlight = false;
  private again = false;
  private closed = false;
  private done: Promise<void> = Promise.resolve();

  private readonly pool: Pool;

  /** `producer`: the pool whose commits it follows; its connection settings are used. */
  constructor(producer: Pool) {
    this.pool = new pg.Pool({ ...producer.options, max: 1 });
    // A lost idle connection is replaced at the next wake (see createPool).
    this.pool.on('error', () => undefined);
    this.pool.on('connect', (c) => c.on('error', () => undefined));
  }

  /** After a commit that inserted events: make sure the workers hear of it. */
  readonly wake = (): void => {
    if (this.closed) return;
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.send();
  };

  private send(): void {
    this.inFlight = true;
    this.again = false;
    this.done = context
      .with(untracedContext(), () => this.pool.query({ name: 'loomtrace_wake', text: 'select pg_notify($1, \'\')', values: [OUTBOX_CHANNEL] }))
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        this.inFlight = false;
        if (this.again && !this.closed) this.send();
      });
  }

  /** Sends what is owed (the notification in flight, and one more if asked for); later `wake()` calls do nothing. */
  async close(): Promise<void> {
    while (this.inFlight) await this.done;
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
