import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { trace } from '@opentelemetry/api';
import pg from 'pg';
import { Kysely, PostgresDialect } from 'kysely';
import { drizzle } from 'drizzle-orm/node-postgres';
import { bigint, pgTable, text } from 'drizzle-orm/pg-core';
import { eq } from 'drizzle-orm';
import knex from 'knex';
import { enqueue, enqueueMany, type EnqueueClient, type EnqueueInput } from '@loomtrace/outbox';
import { fromKysely } from '@loomtrace/outbox/kysely';
import { fromDrizzle } from '@loomtrace/outbox/drizzle';
import { fromKnex } from '@loomtrace/outbox/knex';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { deliver, memoryTracing, processSpan } from './support/deliver.js';

/**
 * `enqueue` in the application's own transaction, whatever holds it: a plain node-postgres
 * client from the application's own pool, and Kysely's, Drizzle's and Knex's transactions
 * through `@loomtrace/outbox/kysely`, `/drizzle` and `/knex`. Each library makes the change
 * with its own query builder, then enqueues on the same transaction.
 */

interface Holder {
  name: string;
  /** In the library's own transaction: sets the order's status with the library, then `fn` on the adapter. */
  transact(orderId: number, status: string, fn: (db: EnqueueClient) => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

interface OrdersTable {
  id: number;
  status: string;
}
const ordersTable = pgTable('app_orders', { id: bigint('id', { mode: 'number' }).primaryKey(), status: text('status').notNull() });

function holders(url: string): Holder[] {
  const own = new pg.Pool({ connectionString: url, max: 2 });
  const kysely = new Kysely<{ app_orders: OrdersTable }>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 2 }) }) });
  const drizzlePool = new pg.Pool({ connectionString: url, max: 2 });
  const db = drizzle({ client: drizzlePool });
  const k = knex({ client: 'pg', connection: url, pool: { min: 0, max: 2 } });
  return [
    {
      name: 'pg',
      async transact(id, status, fn) {
        const client = await own.connect();
        try {
          await client.query('begin');
          await client.query('update app_orders set status = $1 where id = $2', [status, id]);
          await fn(client);
          await client.query('commit');
        } catch (err) {
          await client.query('rollback');
          throw err;
        } finally {
          client.release();
        }
      },
      close: () => own.end(),
    },
    {
      name: 'kysely',
      transact: (id, status, fn) =>
        kysely.transaction().execute(async (trx) => {
          await trx.updateTable('app_orders').set({ status }).where('id', '=', id).execute();
          await fn(fromKysely(trx));
        }),
      close: () => kysely.destroy(),
    },
    {
      name: 'drizzle',
      transact: (id, status, fn) =>
        db.transaction(async (tx) => {
          await tx.update(ordersTable).set({ status }).where(eq(ordersTable.id, id));
          await fn(fromDrizzle(tx));
        }),
      close: () => drizzlePool.end(),
    },
    {
      name: 'knex',
      transact: (id, status, fn) =>
        k.transaction(async (trx) => {
          await trx('app_orders').update({ status }).where({ id });
          await fn(fromKnex(trx));
        }),
      close: () => k.destroy(),
    },
  ];
}

describe('enqueue in your own transaction', () => {
  let db: TestDatabase;
  let all: Holder[] = [];
  const { exporter, provider } = memoryTracing();
  const tracer = trace.getTracer('adapters-test');

  before(async () => {
    db = await freshDatabase('adapters');
    await db.pool.query('create table app_orders (id bigint primary key, status text not null)');
    await db.pool.query("insert into app_orders select i, 'new' from generate_series(1, 8) i");
    all = holders(db.url);
  });
  after(async () => {
    await Promise.all(all.map((h) => h.close()));
    await db.drop();
    await provider.shutdown();
  });

  const event = (projection: string, orderId: number, version: number): EnqueueInput => ({
    projection,
    eventType: 'order.updated',
    aggregateType: 'order',
    aggregateId: String(orderId),
    aggregateVersion: version,
    attributes: { tenant: 'acme', n: 7, flag: true },
    payload: { order: orderId, note: `v${version}`, items: [{ sku: 'a', qty: 2 }] },
  });
  const status = async (id: number) => (await db.pool.query<{ status: string }>('select status from app_orders where id = $1', [id])).rows[0]!.status;
  const outboxCount = async () => (await db.pool.query<{ n: number }>('select count(*)::int n from loomtrace.outbox')).rows[0]!.n;

  for (const [i, name] of ['pg', 'kysely', 'drizzle', 'knex'].entries()) {
    const orderId = 2 * i + 1;
    const projection = `orders.${name}`;
    const holder = () => all.find((h) => h.name === name)!;

    it(`${name}: a rollback takes the event away with the change`, async () => {
      const before = await outboxCount();
      await assert.rejects(
        holder().transact(orderId, 'cancelled', async (c) => {
          const id = await enqueue(c, event(projection, orderId, 1));
          assert.match(id, /^\d+$/);
          // Visible inside the transaction, not outside: written on the transaction's own connection.
          // (The jsonb `?` operator: Knex's own placeholder character reaches Postgres as written.)
          const inside = await c.query({ text: "select count(*)::int as n from loomtrace.outbox where id = $1 and payload ? 'items'", values: [id] });
          assert.deepEqual(inside.rows, [{ n: 1 }]);
          assert.equal(await outboxCount(), before, 'not visible outside the transaction before its commit');
          throw new Error('a business rule failed after the enqueue');
        }),
        /business rule/,
      );
      assert.equal(await outboxCount(), before, 'no event');
      assert.equal(await status(orderId), 'new', 'no change');
    });

    it(`${name}: a commit delivers the events to the sink, and the worker continues the producer's trace (enqueue and enqueueMany)`, async () => {
      exporter.reset();
      const ids: string[] = [];
      const order = orderId + 1;
      const parent = await tracer.startActiveSpan('place order', async (span) => {
        try {
          await holder().transact(order, 'placed', async (c) => {
            ids.push(await enqueue(c, event(projection, order, 2)));
            ids.push(...(await enqueueMany(c, [event(projection, order, 3), event(projection, order, 4)])));
          });
        } finally {
          span.end();
        }
        return span.spanContext();
      });
      assert.equal(await status(order), 'placed');
      assert.equal(new Set(ids).size, 3);

      const seen = await deliver(db.pool, projection, ids);
      assert.deepEqual(seen.map((e) => e.id).sort(), [...ids].sort());
      const first = seen.find((e) => e.id === ids[0])!;
      assert.deepEqual(first.payload, event(projection, order, 2).payload, 'the payload round-trips as JSON');
      assert.deepEqual(first.attributes, { tenant: 'acme', n: 7, flag: true });
      assert.equal(first.aggregateVersion, 2);

      const spans = exporter.getFinishedSpans();
      const send = spans.find((s) => s.name === `send ${projection}` && s.attributes['messaging.message.id'] === ids[0]);
      assert.ok(send, 'the send span of enqueue');
      assert.equal(send.parentSpanContext?.spanId, parent.spanId);
      const proc = processSpan(spans, projection, ids[0]!);
      assert.equal(proc.spanContext().traceId, parent.traceId);
      assert.equal(proc.parentSpanContext?.spanId, send.spanContext().spanId, 'process is a child of send');
      assert.equal(proc.attributes['tenant'], 'acme');
      // enqueueMany stores the active context (no span per event): the caller's span.
      for (const id of ids.slice(1)) {
        const p = processSpan(spans, projection, id);
        assert.equal(p.spanContext().traceId, parent.traceId);
        assert.equal(p.parentSpanContext?.spanId, parent.spanId);
      }
    });
  }
});
