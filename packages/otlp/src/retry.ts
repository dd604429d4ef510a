/**
 * The stock OTLP exporter's retry policy (@opentelemetry/otlp-exporter-base 0.222.0,
 * build/src/retrying-transport.js): after the first try, up to 5 retries of a retryable result;
 * backoff 1 s, ×1.5 each retry, capped at 5 s, each with ±20 % jitter; the server's Retry-After
 * instead when it gave one; no retry when the wait would pass the export's deadline (its
 * timeout from the first try). Each retry gets as its own timeout what was left of the
 * deadline before the wait, as in the stock code. With the default 10 s timeout a receiver that
 * is down for about 8 s or more loses the batch (the fifth retry would come after the
 * deadline); a longer OTEL_EXPORTER_OTLP_TIMEOUT rides out a longer outage (about 13 s of
 * retries at most).
 */
import type { SendResult } from './transport.js';

export interface RetryPolicy {
  readonly maxRetries: number;
  readonly initialBackoffMs: number;
  readonly backoffMultiplier: number;
  readonly maxBackoffMs: number;
  /** ±fraction of the backoff. */
  readonly jitter: number;
}

export const STOCK_RETRY_POLICY: RetryPolicy = { maxRetries: 5, initialBackoffMs: 1000, backoffMultiplier: 1.5, maxBackoffMs: 5000, jitter: 0.2 };

export type RetriedResult = SendResult & { tries: number };

/** Sends, and retries as the stock exporter does; never rejects if `send` never does. */
export async function sendWithRetries(send: (timeoutMs: number) => Promise<SendResult>, timeoutMs: number, policy: RetryPolicy): Promise<RetriedResult> {
  const deadline = Date.now() + timeoutMs;
  let result = await send(timeoutMs);
  let tries = 1;
  let next = policy.initialBackoffMs;
  for (let left = policy.maxRetries; result.status === 'retryable' && left > 0; left--) {
    const jitter = Math.random() * 2 * policy.jitter - policy.jitter;
    const backoff = Math.max(Math.min(next * (1 + jitter), policy.maxBackoffMs), 0);
    next *= policy.backoffMultiplier;
    const wait = result.retryInMs ?? backoff;
    const remaining = deadline - Date.now();
    if (wait > remaining) return { ...result, why: `${result.why}; next try in ${Math.round(wait)} ms would pass the ${timeoutMs} ms timeout`, tries };
    await new Promise<void>((r) => setTimeout(r, wait).unref());
    result = await send(remaining);
    tries++;
  }
  return { ...result, tries };
}
