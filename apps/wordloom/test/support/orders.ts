/**
 * A second pipeline that is not Wordloom, declared the way a user would: `shop.orders` →
 * the `order-summaries` projection, a table (`shop.order_summaries`) written by a real
 * OutboxWorker through a small version-guarded sink. Its sink can be told to answer `retry`,
 * `fail` or to hold an order (to see it in progress).
 */
import { enqueue, inTransaction, STALE, WRITTEN, type ItemOutcome, type OutboxEvent, type Pipeline, type Pool, type ProjectedState, type ProjectionInspector, type Queryable, type Sink } from '@loomtrace/outbox';

export const ORDERS_PROJECTION = 'order-summaries';
export const ORDER_ID = /^ord-[0-9a-z]{1,40}$/;

export async function createOrdersSchema(db: Queryable): Promise<void> {
  await db.query(`create schema if not exists shop;
    create table if not exists shop.orders (id text primary key, total_cents bigint not null, version bigint not null default 1,
      deleted_at timestamptz, updated_at timestamptz not null default clock_timestamp());
    create table if not exists shop.order_summaries (order_id text primary key, total_cents bigint, version bigint not null,
      deleted boolean not null default false, written_at timestamptz not null default clock_timestamp(), event_id bigint)`);
}

/** Places or changes an order and enqueues its event in the same transaction (version + 1). */
export async function saveOrder(pool: Pool, id: string, totalCents: number): Promise<number> {
  return inTransaction(pool, async (tx) => {
    const { rows } = await tx.query<{ version: string }>(
      `insert into shop.orders (id, total_cents) values ($1, $2)
       on conflict (id) do update set total_cents = excluded.total_cents, version = shop.orders.version + 1, updated_at = clock_timestamp()
       returning version::text`,
      [id, totalCents],
    );
    const version = Number(rows[0]!.version);
    await enqueue(tx, { projection: ORDERS_PROJECTION, eventType: 'order.saved', aggregateType: 'order', aggregateId: id, aggregateVersion: version, payload: { total_cents: totalCents } });
    return version;
  });
}

export async function cancelOrder(pool: Pool, id: string): Promise<number> {
  return inTransaction(pool, async (tx) => {
    const { rows } = await tx.query<{ version: string }>(`update shop.orders set deleted_at = clock_timestamp(), version = version + 1, updated_at = clock_timestamp() where id = $1 returning version::text`, [id]);
    const version = Number(rows[0]!.version);
    await enqueue(tx, { projection: ORDERS_PROJECTION, eventType: 'order.cancelled', aggregateType: 'order', aggregateId: id, aggregateVersion: version, payload: {} });
    return version;
  });
}

/** The projection's sink; `behaviour` picks an outcome per order id (default: write). */
export class OrderSummarySink implements Sink, ProjectionInspector {
  readonly name = 'order-summaries';
  readonly system = 'postgresql';
  readonly behaviour = new Map<string, 'retry' | 'fail' | 'hold'>();
  private release: (() => void) | undefined;
  readonly held = new Promise<void>((r) => (this.release = r));
  constructor(private readonly pool: Pool) {}

  releaseHeld(): void {
    this.release?.();
  }

  async write(events: readonly OutboxEvent[]): Promise<readonly ItemOutcome[]> {
    const out: ItemOutcome[] = [];
    for (const e of events) {
      const b = this.behaviour.get(e.aggregateId);
      if (b === 'hold') await this.held;
      if (b === 'retry') {
        out.push({ kind: 'retry', reason: 'http_5xx', message: 'summary store answered 503', statusCode: 503 });
        continue;
      }
      if (b === 'fail') {
        out.push({ kind: 'fail', reason: 'bad_payload', message: 'order payload rejected' });
        continue;
      }
      const deleted = e.eventType === 'order.cancelled';
      const { rowCount } = await this.pool.query(
        `insert into shop.order_summaries as s (order_id, total_cents, version, deleted, event_id) values ($1, $2, $3, $4, $5::bigint)
         on conflict (order_id) do update set total_cents = excluded.total_cents, version = excluded.version, deleted = excluded.deleted,
                event_id = excluded.event_id, written_at = clock_timestamp()
          where s.version < excluded.version`,
        [e.aggregateId, deleted ? null : (e.payload['total_cents'] as number), e.aggregateVersion, deleted, e.id],
      );
      out.push(rowCount ? WRITTEN : STALE);
    }
    return out;
  }

  async inspect(orderId: string): Promise<ProjectedState | null> {
    const { rows } = await this.pool.query<{ version: string; deleted: boolean; written_at: Date; event_id: string | null }>(
      'select version::text, deleted, written_at, event_id::text from shop.order_summaries where order_id = $1',
      [orderId],
    );
    const r = rows[0];
    return r ? { version: Number(r.version), deleted: r.deleted, at: r.written_at, eventId: r.event_id, where: 'shop.order_summaries' } : null;
  }
}

/** The declaration: everything the explorer needs to explain an order's summary. */
export function ordersPipeline(inspector: ProjectionInspector): Pipeline {
  return {
    projection: ORDERS_PROJECTION,
    aggregateType: 'order',
    labels: { aggregate: 'order', projection: 'order summaries', target: 'the summary table' },
    idPattern: ORDER_ID,
    async readSource(db, id) {
      const { rows } = await db.query<{ version: string; deleted_at: Date | null; updated_at: Date }>('select version::text, deleted_at, updated_at from shop.orders where id = $1', [id]);
      const r = rows[0];
      return r ? { version: Number(r.version), deleted: r.deleted_at !== null, updatedAt: r.updated_at } : null;
    },
    inspector,
    traceShape: [
      { name: `send ${ORDERS_PROJECTION}`, kind: 'PRODUCER', attributes: ['messaging.message.id'] },
      { name: `process ${ORDERS_PROJECTION}`, kind: 'CONSUMER', under: `send ${ORDERS_PROJECTION}`, after: `send ${ORDERS_PROJECTION}`, attributes: ['loomtrace.attempt'] },
    ],
  };
}
