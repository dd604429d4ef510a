import type { Queryable } from '@loomtrace/outbox';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Polls `check` until it returns a value (anything but undefined, null or false) and returns
 * it; fails with `timed out waiting for <what>` after `timeoutMs`. Tests never assert timing:
 * the timeout only bounds a run that would otherwise hang.
 */
export async function until<T>(
  what: string,
  timeoutMs: number,
  check: () => Promise<T | undefined | null | false>,
  opts: { intervalMs?: number; ignoreErrors?: boolean } = {},
): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = opts.ignoreErrors ? await check().catch(() => undefined) : await check();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(opts.intervalMs ?? 50);
  }
}

/** Outbox rows by state, e.g. `{ done: 998, dead: 2 }`. */
export async function outboxCounts(db: Queryable): Promise<Record<string, number>> {
  const { rows } = await db.query<{ state: string; n: number }>('select state, count(*)::int n from loomtrace.outbox_current group by state');
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

/** Waits until no outbox event is pending or claimed (every event acked or dead-lettered). */
export async function outboxDrained(db: Queryable, timeoutMs = 10_000): Promise<void> {
  await until('the outbox to drain', timeoutMs, async () => {
    const { rows } = await db.query<{ n: number }>("select count(*)::int n from loomtrace.outbox where state in ('pending','claimed')");
    return rows[0]!.n === 0;
  }, { intervalMs: 20 });
}
