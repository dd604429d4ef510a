/**
 * Capped exponential backoff with jitter, as one pure function.
 *
 * delay(attempt) = min(maxMs, baseMs * factor^(attempt-1)), then "equal jitter": half of it
 * fixed, half random, so retries of many events spread out but never come back early.
 * A Retry-After from the server is honoured as a floor. The table in docs/backoff.md is
 * generated from this function and checked by a test.
 */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly factor: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({ baseMs: 500, maxMs: 60_000, factor: 2 });

/** The delay before attempt `attempt + 1`, after attempt `attempt` (1-based) failed. */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: () => number = Math.random,
  retryAfterMs?: number,
): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * policy.factor ** Math.max(0, attempt - 1));
  const jittered = Math.round(exp / 2 + random() * (exp / 2));
  return retryAfterMs !== undefined ? Math.max(jittered, Math.round(retryAfterMs)) : jittered;
}

/** The un-jittered bounds for the docs table: [min, max] delay after attempt `attempt`. */
export function backoffBounds(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): [number, number] {
  return [backoffDelay(attempt, policy, () => 0), backoffDelay(attempt, policy, () => 1)];
}

/**
 * The docs table (docs/backoff.md, between its `backoff-table` markers), rendered from the
 * function itself: test/backoff.test.ts checks that the docs match.
 */
export function renderBackoffTable(policy: BackoffPolicy = DEFAULT_BACKOFF, attempts = 9): string {
  const fmt = (ms: number) => (ms < 1_000 ? `${ms} ms` : ms < 60_000 ? `${+(ms / 1_000).toFixed(2)} s` : `${+(ms / 60_000).toFixed(2)} min`);
  const lines = [
    `| after attempt | delay min | delay max | total waited, min | total waited, max |`,
    `|---:|---:|---:|---:|---:|`,
  ];
  let totalMin = 0;
  let totalMax = 0;
  for (let a = 1; a <= attempts; a++) {
    const [min, max] = backoffBounds(a, policy);
    totalMin += min;
    totalMax += max;
    lines.push(`| ${a} | ${fmt(min)} | ${fmt(max)} | ${fmt(totalMin)} | ${fmt(totalMax)} |`);
  }
  return lines.join('\n');
}
