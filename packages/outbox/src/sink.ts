import type { OutboxEvent } from './types.js';
import type { ItemOutcome } from './outcome.js';

/**
 * A projection: where the worker writes events. One `write` per claimed batch; the answer
 * has one outcome per event, in the same order. Throwing fails the whole batch, and the
 * error is classified once (`classifyError`).
 */
export interface Sink {
  /** Low-cardinality name, e.g. `postgres-search`, `elasticsearch`. */
  readonly name: string;
  /** `db.system.name` of the store behind it, for the write span. */
  readonly system: string;
  write(events: readonly OutboxEvent[], signal: AbortSignal): Promise<readonly ItemOutcome[]>;
  /** Throws when the store cannot be reached (readiness). */
  ping?(): Promise<void>;
  close?(): Promise<void>;
}
