import { context } from '@opentelemetry/api';
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
 * for a WAL flush; it is not traced (like BEGIN/COMMIT in `inTransaction`).
 *
 * A notification that cannot be sent (the database is away) is not retried: the workers' poll
 * (`pollIntervalMs`) finds the events, as it does after a lost notification.
 */
export class OutboxWaker {
  private inFlight = false;
  private again = false;
  private closed = false;
  private done: Promise<void> = Promise.resolve();

  constructor(private readonly pool: Pool) {}

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
    this.closed = true;
  }
}
