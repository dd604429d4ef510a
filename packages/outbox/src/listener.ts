import type { Pool } from './pool.js';
import type { Logger } from './options.js';
import { HeldSession } from './session.js';

/** The channel the outbox's statement trigger notifies at commit. */
export const OUTBOX_CHANNEL = 'loomtrace_outbox';

/**
 * Holds one pooled connection in `LISTEN loomtrace_outbox` and calls `onNotify` for every
 * notification (and once after each (re)connect, for what committed meanwhile). A lost
 * connection is replaced after a short pause; until then the worker's poll covers the gap.
 */
export class OutboxListener {
  private readonly session: HeldSession;

  constructor(pool: Pool, onNotify: () => void, logger: Logger) {
    this.session = new HeldSession(
      pool,
      {
        what: 'LISTEN',
        configure: (c) => c.on('notification', () => onNotify()),
        setup: (c) => c.query(`listen ${OUTBOX_CHANNEL}`).then(() => undefined),
        onReady: onNotify,
        teardown: (c) => c.query('unlisten *'),
        meanwhile: 'polling',
      },
      logger,
    );
  }

  start(): Promise<void> {
    return this.session.start();
  }

  close(): Promise<void> {
    return this.session.close();
  }
}
