import type { Pool, PoolClient } from './pool.js';
import type { Logger } from './options.js';
import { shortMessage } from './tracing/spans.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

export interface SessionSpec {
  /** What the connection is for, in log lines: `LISTEN`, `presence`. */
  readonly what: string;
  /** Once per connection, before `setup`: listeners on the client. */
  readonly configure?: (client: PoolClient) => void;
  /** What makes the session useful (LISTEN, a session lock); the connection is held only once it ran. */
  readonly setup: (client: PoolClient) => Promise<void>;
  /** After each (re)connect, once `setup` ran. */
  readonly onReady?: () => void;
  /** On close, before the connection goes back to the pool. */
  readonly teardown: (client: PoolClient) => Promise<unknown>;
  /** Said when the connection is lost or cannot be set up, and what happens meanwhile. */
  readonly meanwhile: string;
}

/**
 * One pooled connection held for something that lives in a Postgres session (a LISTEN, a
 * session advisory lock). A lost connection is replaced after a short pause; `client` is
 * undefined until it is back.
 */
export class HeldSession {
  private current: PoolClient | undefined;
  private closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly spec: SessionSpec,
    private readonly logger: Logger,
  ) {}

  get client(): PoolClient | undefined {
    return this.current;
  }

  start(): Promise<void> {
    return this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let client: PoolClient | undefined;
    let released = false;
    const drop = (err?: Error) => {
      if (released || !client) return;
      released = true;
      if (this.current === client) this.current = undefined;
      client.release(err ?? true);
    };
    try {
      client = await this.pool.connect();
      this.spec.configure?.(client);
      client.on('error', (err) => {
        // After close() handed the client back, an error (say, Postgres shutting down) is not ours.
        if (released || this.closed) return;
        drop(err);
        this.logger.warn({}, `${this.spec.what} connection lost; ${this.spec.meanwhile} until it is back`);
        void sleep(250).then(() => this.connect());
      });
      await this.spec.setup(client);
      if (this.closed) {
        // close() ran while we were connecting: this connection was never handed out.
        drop();
        return;
      }
      this.current = client;
      this.spec.onReady?.();
    } catch (err) {
      drop(err as Error);
      if (this.closed) return;
      this.logger.warn({ err: shortMessage(err) }, `${this.spec.what} failed; ${this.spec.meanwhile} until it works`);
      void sleep(1_000).then(() => this.connect());
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.current;
    this.current = undefined;
    if (!c) return;
    try {
      await this.spec.teardown(c);
      c.release();
    } catch (err) {
      // The connection may be gone: the pool discards it.
      c.release(err as Error);
    }
  }
}
