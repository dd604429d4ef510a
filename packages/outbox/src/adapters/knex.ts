import type { Knex } from 'knex';
import type { EnqueueClient } from '../types.js';
import { splitPlaceholders } from './placeholders.js';

/**
 * `enqueue` inside a Knex transaction (client `pg`):
 *
 * ```ts
 * await knex.transaction(async (trx) => {
 *   await trx('orders').update({ status: 'shipped' }).where({ id });
 *   await enqueue(fromKnex(trx), { projection: 'search', ... });
 * });
 * ```
 */
export function fromKnex(trx: Pick<Knex, 'raw'>): EnqueueClient {
  return {
    query: async ({ text, values }) => {
      const { parts, params } = splitPlaceholders(text, values);
      // Knex numbers `?` itself; a literal question mark is written `\?`.
      const result: unknown = await trx.raw(parts.map((p) => p.replaceAll('?', '\\?')).join('?'), params as Knex.RawBinding[]);
      return result as { rows: unknown[] };
    },
  };
}
