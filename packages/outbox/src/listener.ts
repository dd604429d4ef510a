import type { Pool, PoolClient } from './pool.js';
import { shortMessage } from './tracing/spans.js';
import type { Logger } from './options.js';

/** The channel the outbox's statement trigger notifies at commit. */
export const OUTBOX_CHANNEL = 'loomtrace_outbox';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref());

/**
 * Holds one pooled connection in `LISTEN loomtrace_outbox` and calls `onNotify` for every
 * notification (and once after each (re)connect, for what committed meanwhile). A lost
 * connection is replaced after a short pause; until then the worker's poll covers the gap.
 */
export class OutboxListener {
  private client: PoolClient | undefined;
  private closed = false;

  constructor(
    private readonly pool: Pool,
    private readonly onNotify: () => void,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    let client: PoolClient | undefined;
    let released = false;
    const drop = () => {
      if (released || !client) return;
      released = true;
      if (this.client === client) this.client = undefined;
      client.release(true);
    };
    try {
      client = await this.pool.connect();
      client.on('notification', () => this.onNotify());
      client.on('error', () => {
        // After close() handed the client back, an error (say, Postgres shutting down) is not ours.
        if (released || this.closed) return;
        drop();
        this.logger.warn({}, 'LISTEN connection lost; polling until it is back');
        void sleep(500).then(() => this.connect());
      });
      await client.query(`listen ${OUTBOX_CHANNEL}`);
      if (this.closed) {
        // close() ran while we were connecting: this connection was never handed out.
        drop();
        return;
      }
      this.client = client;
      this.onNotify();
    } catch (err) {
      drop();
      if (this.closed) return;
      this.logger.warn({ err: shortMessage(err) }, 'LISTEN failed; polling until it works');
      void sleep(1_000).then(() => this.connect());
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    try {
      await c.query('unlisten *');
    } catch {
      /* the connection may be gone */
    }
    c.release();
  }
}
