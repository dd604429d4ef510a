import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Pool } from './pool.js';
import { DEFAULT_BACKOFF, type BackoffPolicy } from './backoff.js';
import type { Sink } from './sink.js';
import type { EventSpanSink } from './tracing/spanEncoder.js';
import { PROJECTION_NAME } from './attributes.js';

/** Structured logger; pino's satisfies it. Messages never carry user content. */
export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  debug?(obj: object, msg?: string): void;
}

export interface WorkerOptions {
  pool: Pool;
  /** The projection this worker consumes, e.g. `search`. */
  projection: string;
  sink: Sink;
  /** Stable name of this worker for `lease_owner` and traces. Default: host-pid-random. */
  workerId?: string;
  /** Events per claim. Default 200. */
  batchSize?: number;
  /** Batches in flight at once in this process. Default 2. */
  concurrency?: number;
  /** How long a claim is ours without a heartbeat. Default 30 s. */
  leaseMs?: number;
  /** Heartbeat period. Default half the lease. */
  heartbeatMs?: number;
  /** Fallback poll when no notification comes. Default 1 s. */
  pollIntervalMs?: number;
  /**
   * How often to look for expired leases and for leases whose worker is gone. Default 1 s with
   * `presence`, else half the lease, at most 5 s.
   */
  reclaimIntervalMs?: number;
  /**
   * Hold a session advisory lock while the worker lives and record it with each lease, so that
   * the leases of a worker whose process died are reclaimed within about a second instead of
   * at their expiry (decision 0011). Default true; turn it off behind a transaction-pooling
   * PgBouncer, where a session lock means nothing (leases then expire as before).
   */
  presence?: boolean;
  /** Attempts before an event is dead-lettered. Default 10. */
  maxAttempts?: number;
  backoff?: Partial<BackoffPolicy>;
  /** Random source for jitter; tests inject a seeded one. */
  random?: () => number;
  /** Wake on LISTEN/NOTIFY. Default true. */
  listen?: boolean;
  /** On stop: how long in-flight batches may finish before their events are handed back. Default 10 s. */
  shutdownGraceMs?: number;
  logger?: Logger;
  /**
   * Encodes the per-event spans straight to OTLP instead of through the SDK's Span objects
   * (`new EventSpanExporter(eventSpanExporterOptionsFromEnv())` from `@loomtrace/otlp`). Used
   * when the registered sampler is parent-based; the spans are the same either way.
   */
  eventSpans?: EventSpanSink;
}

export interface CompiledWorkerOptions {
  readonly pool: Pool;
  readonly projection: string;
  readonly sink: Sink;
  readonly workerId: string;
  readonly batchSize: number;
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly pollIntervalMs: number;
  readonly reclaimIntervalMs: number;
  readonly presence: boolean;
  readonly maxAttempts: number;
  readonly backoff: BackoffPolicy;
  readonly random: () => number;
  readonly listen: boolean;
  readonly shutdownGraceMs: number;
  readonly logger: Logger;
  readonly eventSpans: EventSpanSink | undefined;
}

const silent: Logger = { info() {}, warn() {}, error() {} };

/** An integer option with its default and range; `what` names the options in the message (`worker`, `upkeep`). */
export function intOption(what: string, name: string, value: number | undefined, fallback: number, min: number, max: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${what} option ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return v;
}

const int = (name: string, value: number | undefined, fallback: number, min: number, max: number) => intOption('worker', name, value, fallback, min, max);

/** Validates once with precise messages, fills defaults, freezes. Nothing downstream reads raw options. */
export function compileWorkerOptions(o: WorkerOptions): CompiledWorkerOptions {
  if (!o.pool) throw new TypeError('worker option pool is required');
  if (!o.sink || typeof o.sink.write !== 'function') throw new TypeError('worker option sink must have a write() method');
  if (!PROJECTION_NAME.test(o.projection ?? '')) {
    throw new TypeError(`worker option projection must match [a-z][a-z0-9_.-]*, got ${JSON.stringify(o.projection)}`);
  }
  const leaseMs = int('leaseMs', o.leaseMs, 30_000, 100, 86_400_000);
  const presence = o.presence ?? true;
  const backoff = Object.freeze({ ...DEFAULT_BACKOFF, ...o.backoff });
  if (!(backoff.baseMs > 0 && backoff.maxMs >= backoff.baseMs && backoff.factor >= 1)) {
    throw new RangeError('worker option backoff needs baseMs > 0, maxMs >= baseMs, factor >= 1');
  }
  return Object.freeze({
    pool: o.pool,
    projection: o.projection,
    sink: o.sink,
    workerId: o.workerId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`,
    batchSize: int('batchSize', o.batchSize, 500, 1, 10_000),
    concurrency: int('concurrency', o.concurrency, 2, 1, 64),
    leaseMs,
    heartbeatMs: int('heartbeatMs', o.heartbeatMs, Math.max(50, Math.floor(leaseMs / 2)), 10, leaseMs),
    pollIntervalMs: int('pollIntervalMs', o.pollIntervalMs, 1_000, 10, 3_600_000),
    reclaimIntervalMs: int('reclaimIntervalMs', o.reclaimIntervalMs, presence ? Math.min(1_000, Math.max(50, Math.floor(leaseMs / 2))) : Math.min(5_000, Math.max(50, Math.floor(leaseMs / 2))), 10, 3_600_000),
    presence,
    maxAttempts: int('maxAttempts', o.maxAttempts, 10, 1, 1_000),
    backoff,
    random: o.random ?? Math.random,
    listen: o.listen ?? true,
    shutdownGraceMs: int('shutdownGraceMs', o.shutdownGraceMs, 10_000, 0, 3_600_000),
    logger: o.logger ?? silent,
    eventSpans: o.eventSpans,
  });
}
