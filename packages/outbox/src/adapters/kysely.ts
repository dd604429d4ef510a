import { CompiledQuery, type Kysely } from 'kysely';
import type { EnqueueClient } from '../types.js';

/**
 * `enqueue` inside a Kysely transaction (PostgresDialect):
 *
 * ```ts
 * await db.transaction().execute(async (trx) => {
 *   await trx.updateTable('orders').set({ status: 'shipped' }).where('id', '=', id).execute();
 *   await enqueue(fromKysely(trx), { projection: 'search', ... });
 * });
 * ```
 * The statement runs on the transaction's connection, so it commits or rolls back with it.
 */
export function fromKysely(trx: Pick<Kysely<any>, 'executeQuery'>): EnqueueClient {
  return {
    query: ({ text, values }) => trx.executeQuery(CompiledQuery.raw(text, values)),
  };
}
