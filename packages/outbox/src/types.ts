/** What a producer hands to `enqueue`, inside its own transaction. */
export interface EnqueueInput {
  /** The projection (destination) that will consume the event, e.g. `search`. */
  projection: string;
  eventType: string;
  aggregateType: string;
  aggregateId: string;
  /** The aggregate's version after the change; projections use it as their version guard. */
  aggregateVersion: number;
  /** A correlation id of the change (the HTTP request's, say): on the event's spans. */
  requestId?: string | null;
  /**
   * A few attributes of the producer's choosing, put on the event's spans as they are (a tenant
   * or a library id, say): low-cardinality ids, never user content. At most 16, keys of at most
   * 128 characters (letters, digits, `_ . - /`), strings of at most 256.
   */
  attributes?: Readonly<Record<string, string | number | boolean>> | null;
  /** A snapshot of what the projection needs. Stored in the row; never put in spans or logs. */
  payload: Record<string, unknown>;
}

/** An event as a worker holds it after a claim. */
export interface OutboxEvent {
  readonly id: string;
  readonly projection: string;
  readonly eventType: string;
  readonly aggregateType: string;
  readonly aggregateId: string;
  readonly aggregateVersion: number;
  readonly attributes: Readonly<Record<string, string | number | boolean>> | null;
  readonly requestId: string | null;
  readonly traceparent: string | null;
  readonly tracestate: string | null;
  readonly payload: Record<string, unknown>;
  /** 1 on the first claim. */
  readonly attempt: number;
  readonly previousOwner: string | null;
  readonly previousToken: string | null;
  /** True when the previous lease expired and this attempt took the event over. */
  readonly reclaimed: boolean;
  readonly previousLeaseMs: number | null;
  readonly lastReason: string | null;
  readonly lastDelayMs: number | null;
  readonly lastAttemptSpan: string | null;
  /** Epoch ms (database clock) when the event became claimable: its commit, or its scheduled retry. */
  readonly readyAtMs: number;
  readonly readySource: 'commit_timestamp' | 'insert_time' | 'run_at';
  /** Epoch ms (database clock) of this claim. */
  readonly claimedAtMs: number;
}

/** One statement as `enqueue` sends it: node-postgres's query-config form ($1, $2, … placeholders). */
export interface EnqueueQuery {
  /** A prepared-statement name (node-postgres uses it; adapters may ignore it). */
  readonly name?: string;
  readonly text: string;
  readonly values: unknown[];
}

/**
 * What `enqueue` needs of the connection that holds your transaction: a node-postgres `Client`,
 * `PoolClient` (after `begin`) has it as is; `@loomtrace/outbox/kysely`, `/drizzle` and `/knex`
 * make one from those libraries' transactions.
 */
export interface EnqueueClient {
  query(query: EnqueueQuery): PromiseLike<{ rows: unknown[] }>;
}
