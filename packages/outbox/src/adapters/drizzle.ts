import { sql, type SQLWrapper } from 'drizzle-orm';
import type { EnqueueClient } from '../types.js';
import { splitPlaceholders } from './placeholders.js';

/** What `fromDrizzle` needs: a node-postgres Drizzle database or transaction has it. */
export interface DrizzleExecutor {
  execute(query: SQLWrapper): PromiseLike<{ rows: unknown[] }>;
}

/**
 * `enqueue` inside a Drizzle transaction (drizzle-orm/node-postgres):
 *
 * ```ts
 * await db.transaction(async (tx) => {
 *   await tx.update(orders).set({ status: 'shipped' }).where(eq(orders.id, id));
 *   await enqueue(fromDrizzle(tx), { projection: 'search', ... });
 * });
 * ```
 */
export function fromDrizzle(tx: DrizzleExecutor): EnqueueClient {
  return {
    query: ({ text, values }) => {
      const { parts, params } = splitPlaceholders(text, values);
      const chunks = parts.flatMap((p, i) => (i < params.length ? [sql.raw(p), sql.param(params[i])] : [sql.raw(p)]));
      return tx.execute(sql.join(chunks));
    },
  };
}
