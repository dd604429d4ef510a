/**
 * A pipeline, declared once by whoever owns it: which projection follows which aggregate,
 * how to read an aggregate's current version at the source of truth, and how to ask the
 * projection what it holds. Types only: the explorer reads declarations to explain, check
 * and probe a change; the outbox itself never calls them.
 */
import type { Queryable } from './pool.js';

/** The source of truth's answer for one aggregate; null when no such aggregate exists. */
export interface SourceState {
  readonly version: number;
  readonly deleted: boolean;
  readonly updatedAt: Date | null;
}

/**
 * What a projection holds for one aggregate. `version` is null when the projection knows the
 * aggregate is gone but not at which version (a cluster forgets a deleted document); `at` is
 * null when the projection does not record when it was written.
 */
export interface ProjectedState {
  readonly version: number | null;
  readonly deleted: boolean;
  readonly at: Date | null;
  /** The outbox event that wrote it, when the projection records one. */
  readonly eventId?: string | null;
  /** Where the answer came from, e.g. `search.blocks` or `elasticsearch wordloom-blocks`. */
  readonly where?: string;
}

/** Asks a projection what it holds for an aggregate; a sink can be its own inspector. */
export interface ProjectionInspector {
  /** The system asked, e.g. `postgresql`, `elasticsearch`, `opensearch`. */
  readonly system: string;
  /** What the projection holds for this aggregate, or null when it holds nothing. */
  inspect(aggregateId: string, signal?: AbortSignal): Promise<ProjectedState | null>;
}

/** One span a change must produce, with the attributes it must carry. */
export interface SpanExpectation {
  readonly name: string;
  /** OpenTelemetry span kind name: SERVER, CLIENT, PRODUCER, CONSUMER, INTERNAL. */
  readonly kind?: 'SERVER' | 'CLIENT' | 'PRODUCER' | 'CONSUMER' | 'INTERNAL';
  /** The `service.name` of the process that makes it. */
  readonly service?: string;
  /** Attribute keys it must carry. */
  readonly attributes?: readonly string[];
  /** The name of an expected span it must start at or after (order within the change). */
  readonly after?: string;
  /** The name of an expected span it must descend from (its parent, or an ancestor). */
  readonly under?: string;
}

/** A canary change a probe made: the aggregate, the version it should become visible at, its trace. */
export interface CanaryChange {
  readonly aggregateId: string;
  readonly version: number;
  /** The change's trace id, when the probe set the trace context itself. */
  readonly traceId?: string;
}

export interface Pipeline {
  /** The outbox projection name (`enqueue({ projection })`). */
  readonly projection: string;
  /** The aggregate type (`enqueue({ aggregateType })`). */
  readonly aggregateType: string;
  /** Words for verdicts: `{ aggregate: 'block', projection: 'search', target: 'the index' }`. */
  readonly labels?: { readonly aggregate?: string; readonly projection?: string; readonly target?: string };
  /** Which ids are valid (checked before any query); any 1–200 characters without NUL when absent. */
  readonly idPattern?: RegExp;
  /** The aggregate's current version at the source of truth. */
  readSource(db: Queryable, aggregateId: string): Promise<SourceState | null>;
  /** Asks the projection what it holds. */
  readonly inspector: ProjectionInspector;
  /** The spans one change must produce, in order (for `loomtrace check` and the probe). */
  readonly traceShape?: readonly SpanExpectation[];
  /** Makes one harmless change through the real write path (for `loomtrace probe`). */
  readonly canary?: (db: Queryable) => Promise<CanaryChange>;
}
