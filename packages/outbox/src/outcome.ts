import { isConnectionError } from './connectionError.js';

/**
 * What a projection answers for each item of a batch, and how failures are classified.
 * Classified once, here: the worker only reads `kind`.
 */

/** Low-cardinality reasons, safe as metric labels and span attributes. */
export type FailureReason =
  | 'http_429'
  | 'http_5xx'
  | 'http_4xx'
  | 'timeout'
  | 'connection'
  | 'lease_lost'
  | 'lease_expired'
  | 'worker_gone'
  | 'bad_payload'
  | 'mapping'
  | 'shutdown'
  | 'unknown';

export type ItemOutcome =
  /** Applied to the projection. */
  | { readonly kind: 'written'; readonly statusCode?: number }
  /** The projection already holds this version or a newer one: success, nothing to do. */
  | { readonly kind: 'stale'; readonly statusCode?: number }
  /** A transient failure: try again after a backoff (at least `retryAfterMs`). */
  | {
      readonly kind: 'retry';
      readonly reason: FailureReason;
      readonly message: string;
      readonly statusCode?: number;
      readonly retryAfterMs?: number;
    }
  /** A deterministic failure: trying again cannot help; dead-letter it. */
  | { readonly kind: 'fail'; readonly reason: FailureReason; readonly message: string; readonly statusCode?: number };

export const WRITTEN: ItemOutcome = Object.freeze({ kind: 'written' });
export const STALE: ItemOutcome = Object.freeze({ kind: 'stale' });

export function isSuccess(o: ItemOutcome): boolean {
  return o.kind === 'written' || o.kind === 'stale';
}

/** An error a sink throws when it knows exactly what happened. */
export class ProjectionError extends Error {
  override readonly name = 'ProjectionError';
  constructor(
    message: string,
    readonly reason: FailureReason,
    readonly retryable: boolean,
    readonly statusCode?: number,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** Node/undici/pg error codes that mean "the other side was not reached or dropped us". */
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  // Postgres: connection exceptions, admin shutdown, cannot connect now.
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
  '57P01',
  '57P02',
  '57P03',
]);
const TIMEOUT_CODES = new Set(['ETIMEDOUT', 'ESOCKETTIMEDOUT', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', '57014']);
/** Postgres serialization failure and deadlock: the statement may simply be run again. */
const PG_RETRYABLE = new Set(['40001', '40P01', '55P03', '53300']);

/** Classifies an HTTP status the way every sink should. */
export function classifyStatus(status: number, message: string, retryAfterMs?: number): ItemOutcome {
  if (status >= 200 && status < 300) return WRITTEN;
  if (status === 409) return STALE;
  if (status === 429) return { kind: 'retry', reason: 'http_429', message, statusCode: status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  if (status === 408) return { kind: 'retry', reason: 'timeout', message, statusCode: status };
  if (status >= 500) return { kind: 'retry', reason: 'http_5xx', message, statusCode: status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  return { kind: 'fail', reason: 'http_4xx', message, statusCode: status };
}

/** Classifies a thrown error (a whole-batch failure). Unknown errors are retried: they may be transient. */
export function classifyError(err: unknown): ItemOutcome {
  const message = err instanceof Error ? err.message.split('\n', 1)[0]!.slice(0, 200) : String(err).slice(0, 200);
  if (err instanceof ProjectionError) {
    return err.retryable
      ? { kind: 'retry', reason: err.reason, message, ...(err.statusCode !== undefined ? { statusCode: err.statusCode } : {}), ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}) }
      : { kind: 'fail', reason: err.reason, message, ...(err.statusCode !== undefined ? { statusCode: err.statusCode } : {}) };
  }
  const e = err as { code?: unknown; name?: unknown; statusCode?: unknown; meta?: { statusCode?: unknown } };
  const code = typeof e?.code === 'string' ? e.code : '';
  const name = typeof e?.name === 'string' ? e.name : '';
  if (name === 'AbortError' || name === 'TimeoutError' || TIMEOUT_CODES.has(code)) return { kind: 'retry', reason: 'timeout', message };
  // isConnectionError also knows node-postgres's own errors for a lost connection (no code).
  if (CONNECTION_CODES.has(code) || name === 'ConnectionError' || isConnectionError(err)) return { kind: 'retry', reason: 'connection', message };
  if (PG_RETRYABLE.has(code)) return { kind: 'retry', reason: 'connection', message };
  const status = typeof e?.statusCode === 'number' ? e.statusCode : typeof e?.meta?.statusCode === 'number' ? e.meta.statusCode : undefined;
  if (status !== undefined) return classifyStatus(status, message);
  // Postgres data exceptions (class 22) and integrity violations (23) are deterministic.
  if (/^2[23]/.test(code)) return { kind: 'fail', reason: 'bad_payload', message };
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return { kind: 'fail', reason: 'bad_payload', message };
  return { kind: 'retry', reason: 'unknown', message };
}

/** Parses a Retry-After header (seconds or HTTP date) into milliseconds. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs) && secs >= 0) return Math.round(secs * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - now) : undefined;
}
