import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import type { FastifyInstance } from 'fastify';
import { createPool, enqueue, inTransaction, OutboxWaker, type Pool } from '@loomtrace/outbox';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { sleep, until } from './support/wait.js';
import { buildApp } from '../src/service/app.js';

/**
 * A block change and its outbox event are one statement (decision record 0012): both or
 * neither, version conflicts still 409, the event row the same as `enqueue` stores; and the
 * API's pool wakes the workers after its commits instead of inside its transactions.
 */
describe('a block change and its event in one statement', () => {
  let db: TestDatabase;
  let deferred: Pool;
  let app: FastifyInstance;
  let bookId: string;
  let libraryId: string;

  before(async () => {
    db = await freshDatabase('one_statement');
    deferred = createPool({ connectionString: db.url, max: 10, notifyAfterCommit: true });
    app = await buildApp({ pool: db.pool });
    libraryId = (await app.inject({ method: 'POST', url: '/api/v1/libraries', payload: { name: 'l' } })).json().id;
    bookId = (await app.inject({ method: 'POST', url: '/api/v1/books', payload: { library_id: libraryId, title: 't' } })).json().id;
  });
  after(async () => {
    await app.close();
    await deferred.end();
    await db.drop();
  });

  const newBlock = async (a = app) => (await a.inject({ method: 'POST', url: '/api/v1/blocks', payload: { book_id: bookId, block_type: 'text', content: 'c' } })).json() as { id: string; version: number };
  const events = async (id: string) => (await db.pool.query<{ n: number }>('select count(*)::int n from loomtrace.outbox where aggregate_id = $1', [id])).rows[0]!.n;
  const version = async (id: string) => (await db.pool.query<{ v: number }>('select version::int v from wordloom.blocks where id = $1', [id])).rows[0]!.v;

  it('a failure inside the statement, after the change, leaves neither the change nor the event', async () => {
    const block = await newBlock();
    // Fault injection around the real statement: the outbox refuses this one request's event.
    await db.pool.query(`create function test_fail_one_event() returns trigger language plpgsql as $$
      begin if new.request_id = 'fail-in-statement' then raise exception 'injected outbox failure'; end if; return new; end $$`);
    await db.pool.query('create trigger fail_one before insert on loomtrace.outbox for each row execute function test_fail_one_event()');
    try {
      const res = await app.inject({ method: 'PATCH', url: `/api/v1/blocks/${block.id}`, headers: { 'x-request-id': 'fail-in-statement' }, payload: { content: 'lost' } });
      assert.equal(res.statusCode, 500, res.body);
      assert.equal(await version(block.id), 1, 'the change rolled back');
      assert.equal(await events(block.id), 1, 'only the create event');
      const { rows } = await db.pool.query<{ content: string }>('select content from wordloom.blocks where id = $1', [block.id]);
      assert.equal(rows[0]!.content, 'c');
    } finally {
      await db.pool.query('drop trigger fail_one on loomtrace.outbox');
      await db.pool.query('drop function test_fail_one_event()');
    }
    const ok = await app.inject({ method: 'PATCH', url: `/api/v1/blocks/${block.id}`, payload: { content: 'kept' } });
    assert.equal(ok.statusCode, 200);
    assert.equal(await events(block.id), 2);
  });

  it('concurrent PATCHes at one expected_version: one applies with its event, the others get 409 and add none', async () => {
    const block = await newBlock();
    const res = await Promise.all(
      Array.from({ length: 8 }, (_, i) => app.inject({ method: 'PATCH', url: `/api/v1/blocks/${block.id}`, payload: { content: `race ${i}`, expected_version: 1 } })),
    );
    const codes = res.map((r) => r.statusCode).sort();
    assert.deepEqual(codes, [200, 409, 409, 409, 409, 409, 409, 409]);
    assert.equal(await version(block.id), 2);
    assert.equal(await events(block.id), 2, 'create + one update');
  });

  it('the event row holds what enqueue would store for the change (payload, attributes, aggregate, request id)', async () => {
    const block = await newBlock();
    const res = await app.inject({ method: 'PATCH', url: `/api/v1/blocks/${block.id}`, headers: { 'x-request-id': 'req-same-row' }, payload: { content: 'same <b>row</b> ü', position: 7 } });
    assert.equal(res.statusCode, 200);
    const b = res.json();
    const viaEnqueue = await inTransaction(db.pool, (c) =>
      enqueue(c, {
        projection: 'search',
        eventType: 'block.updated',
        aggregateType: 'block',
        aggregateId: b.id,
        aggregateVersion: b.version,
        attributes: { 'loomtrace.block.id': b.id, 'loomtrace.library.id': b.library_id },
        requestId: 'req-same-row',
        payload: { book_id: b.book_id, library_id: b.library_id, block_type: b.block_type, content: b.content, position: b.position },
      }),
    );
    const cols = 'projection, event_type, aggregate_type, aggregate_id, aggregate_version::int, request_id, attributes, payload, state';
    const { rows } = await db.pool.query(`select ${cols} from loomtrace.outbox where aggregate_id = $1 and event_type = 'block.updated' order by id`, [b.id]);
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[0], rows[1]);
    assert.equal(rows[0].payload.content, 'same <b>row</b> ü');
    await db.pool.query('delete from loomtrace.outbox where id = $1', [viaEnqueue]);
  });

  it('create and delete add their events in the same statement; an unknown book adds none', async () => {
    const block = await newBlock();
    const del = await app.inject({ method: 'DELETE', url: `/api/v1/blocks/${block.id}` });
    assert.equal(del.statusCode, 204);
    const { rows } = await db.pool.query<{ event_type: string; v: number }>('select event_type, aggregate_version::int v from loomtrace.outbox where aggregate_id = $1 order by id', [block.id]);
    assert.deepEqual(rows.map((r) => [r.event_type, r.v]), [['block.created', 1], ['block.deleted', 2]]);
    const before = (await db.pool.query<{ n: number }>('select count(*)::int n from loomtrace.outbox')).rows[0]!.n;
    const none = await app.inject({ method: 'POST', url: '/api/v1/blocks', payload: { book_id: '00000000-0000-4000-8000-000000000000', block_type: 'text', content: 'x' } });
    assert.equal(none.statusCode, 404);
    assert.equal((await db.pool.query<{ n: number }>('select count(*)::int n from loomtrace.outbox')).rows[0]!.n, before);
  });

  it('the event inserted by the statement is queued for the workers (the outbox trigger), and a PATCH of an unknown block queues nothing', async () => {
    // The statement inserts into loomtrace.outbox directly (decision 15): the queue row comes from the table's statement trigger.
    const block = await newBlock();
    const res = await app.inject({ method: 'PATCH', url: `/api/v1/blocks/${block.id}`, payload: { content: 'queued' } });
    assert.equal(res.statusCode, 200);
    const { rows } = await db.pool.query<{ id: string; projection: string; traceparent: string | null }>(
      `select o.id::text, q.projection, o.traceparent from loomtrace.outbox o join loomtrace.outbox_queue q on q.id = o.id
        where o.aggregate_id = $1 and o.aggregate_version = 2`,
      [block.id],
    );
    assert.equal(rows.length, 1, 'the update event is in the queue');
    assert.equal(rows[0]!.projection, 'search');
    const queued = async () => (await db.pool.query<{ n: number }>('select count(*)::int n from loomtrace.outbox_queue')).rows[0]!.n;
    const before = await queued();
    const missing = await app.inject({ method: 'PATCH', url: '/api/v1/blocks/00000000-0000-4000-8000-000000000000', payload: { content: 'x' } });
    assert.equal(missing.statusCode, 404);
    assert.equal(await queued(), before);
  });

  describe('waking the workers after the commit (notifyAfterCommit, OutboxWaker)', () => {
    let listener: pg.Client;
    let heard = 0;
    before(async () => {
      listener = new pg.Client({ connectionString: db.url });
      await listener.connect();
      listener.on('notification', (n) => {
        if (n.channel === 'loomtrace_outbox') heard++;
      });
      await listener.query('listen loomtrace_outbox');
    });
    after(async () => {
      await listener.end();
    });

    it('a default pool notifies in the transaction; a notifyAfterCommit pool does not, and its waker does', async () => {
      heard = 0;
      await newBlock();
      await until('the in-transaction notification', 5_000, async () => heard >= 1);

      const quiet = await buildApp({ pool: deferred });
      try {
        heard = 0;
        const b = await newBlock(quiet);
        assert.equal(await events(b.id), 1, 'the event is stored');
        await sleep(300);
        assert.equal(heard, 0, 'no notification from a notifyAfterCommit pool\'s transaction');
      } finally {
        await quiet.close();
      }

      const waker = new OutboxWaker(deferred);
      const woken = await buildApp({ pool: deferred, wake: waker.wake });
      try {
        heard = 0;
        await newBlock(woken);
        await until('the waker\'s notification', 5_000, async () => heard >= 1);
      } finally {
        await woken.close();
        await waker.close();
      }
    });

    it('wake() calls while a notification is in flight collapse into one more, sent after it', async () => {
      const waker = new OutboxWaker(deferred);
      heard = 0;
      for (let i = 0; i < 50; i++) waker.wake();
      await waker.close();
      await until('two notifications', 5_000, async () => heard >= 2);
      await sleep(200);
      assert.equal(heard, 2);
      waker.wake();
      await sleep(200);
      assert.equal(heard, 2, 'a closed waker sends nothing');
    });
  });
});
