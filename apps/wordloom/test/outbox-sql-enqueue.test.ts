import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { enqueue, inTransaction, type EnqueueInput } from '@loomtrace/outbox';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { until } from './support/wait.js';

/**
 * `loomtrace.enqueue(...)`, the SQL function for producers in any language (migration 000060),
 * on a real Postgres: the caller's transaction decides, the row is the one the TypeScript
 * `enqueue` writes, a malformed traceparent is dropped, bad attributes are refused.
 */

const CALL = `select loomtrace.enqueue($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)::text as id`;
const TP = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/** The function's ten arguments, in order, with the test's defaults. */
function args(over: Partial<Record<'projection' | 'traceparent' | 'tracestate', string | null>> & { attributes?: unknown; payload?: unknown } = {}): unknown[] {
  return [
    over.projection === undefined ? 'orders' : over.projection,
    'order.shipped',
    'order',
    '42',
    2,
    JSON.stringify(over.payload === undefined ? { status: 'shipped' } : over.payload),
    over.traceparent === undefined ? TP : over.traceparent,
    over.tracestate === undefined ? 'py=1' : over.tracestate,
    'req-1',
    over.attributes === undefined ? null : JSON.stringify(over.attributes),
  ];
}

const COLUMNS = `projection, event_type, aggregate_type, aggregate_id, aggregate_version, request_id, attributes,
                 traceparent, tracestate, payload, state, attempts`;

describe('loomtrace.enqueue (SQL)', () => {
  let db: TestDatabase;
  before(async () => {
    db = await freshDatabase('sql_enqueue');
    await db.pool.query('create table app_orders (id bigint primary key, status text not null)');
    await db.pool.query("insert into app_orders values (42, 'new')");
  });
  after(() => db.drop());

  it('commits and rolls back with the caller, queues and wakes the workers like the TypeScript enqueue, and writes the same row', async () => {
    const listener = new pg.Client({ connectionString: db.url });
    await listener.connect();
    const woken: string[] = [];
    listener.on('notification', (n) => woken.push(n.channel));
    await listener.query('listen loomtrace_outbox');
    const client = await db.pool.connect();
    try {
      await client.query('begin');
      await client.query("update app_orders set status = 'shipped' where id = 42");
      const id = (await client.query<{ id: string }>(CALL, args({ attributes: { tenant: 'acme' } }))).rows[0]!.id;
      assert.deepEqual(woken, [], 'no wake-up before the commit');
      await client.query('commit');
      await until('the NOTIFY at commit', 5_000, async () => woken.length > 0);

      const row = (await db.pool.query(`select ${COLUMNS} from loomtrace.outbox where id = $1`, [id])).rows[0];
      assert.deepEqual(row, {
        projection: 'orders', event_type: 'order.shipped', aggregate_type: 'order', aggregate_id: '42', aggregate_version: '2',
        request_id: 'req-1', attributes: { tenant: 'acme' }, traceparent: TP, tracestate: 'py=1', payload: { status: 'shipped' },
        state: 'pending', attempts: 0,
      });
      const queued = await db.pool.query('select projection from loomtrace.outbox_queue where id = $1', [id]);
      assert.deepEqual(queued.rows, [{ projection: 'orders' }], 'the queue trigger took it in');

      // The TypeScript enqueue, same input (no SDK here, so no context either): the same row.
      const input: EnqueueInput = { projection: 'orders', eventType: 'order.shipped', aggregateType: 'order', aggregateId: '42', aggregateVersion: 2, requestId: 'req-1', attributes: { tenant: 'acme' }, payload: { status: 'shipped' } };
      const tsId = await inTransaction(db.pool, (c) => enqueue(c, input));
      const sqlId = (await db.pool.query<{ id: string }>(CALL, args({ attributes: { tenant: 'acme' }, traceparent: null, tracestate: null }))).rows[0]!.id;
      const both = await db.pool.query(`select ${COLUMNS} from loomtrace.outbox where id = any($1::bigint[]) order by id`, [[tsId, sqlId]]);
      assert.equal(both.rows.length, 2);
      assert.deepEqual(both.rows[1], both.rows[0]);

      // Rolled back: neither the change nor the event, nor a queue entry.
      const before = (await db.pool.query<{ n: number }>('select count(*)::int n from loomtrace.outbox')).rows[0]!.n;
      await client.query('begin');
      await client.query("update app_orders set status = 'cancelled' where id = 42");
      const lost = (await client.query<{ id: string }>(CALL, args())).rows[0]!.id;
      await client.query('rollback');
      assert.equal((await db.pool.query<{ n: number }>('select count(*)::int n from loomtrace.outbox')).rows[0]!.n, before);
      assert.equal((await db.pool.query('select 1 from loomtrace.outbox_queue where id = $1', [lost])).rowCount, 0);
      assert.equal((await db.pool.query('select status from app_orders where id = 42')).rows[0].status, 'shipped');
    } finally {
      client.release();
      await listener.end();
    }
  });

  it('a malformed traceparent is stored as null with its tracestate (a notice says so); a well-formed one as given', async () => {
    const client = await db.pool.connect();
    const notices: string[] = [];
    const onNotice = (n: { message?: string }) => notices.push(n.message ?? '');
    client.on('notice', onNotice);
    try {
      const malformed = [
        'garbage',
        '',
        TP.toUpperCase(), // upper-case hex
        TP.replace(/^00/, '01'), // a version this function does not read
        `${TP}-extra`,
        TP.slice(0, -1),
        '00-00000000000000000000000000000000-b7ad6b7169203331-01', // all-zero trace id
        '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', // all-zero span id
        '00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01', // not hex
      ];
      for (const tp of malformed) {
        const id = (await client.query<{ id: string }>(CALL, args({ traceparent: tp, tracestate: 'py=1' }))).rows[0]!.id;
        const { rows } = await client.query('select traceparent, tracestate from loomtrace.outbox where id = $1', [id]);
        assert.deepEqual(rows[0], { traceparent: null, tracestate: null }, `traceparent ${JSON.stringify(tp)}`);
      }
      assert.equal(notices.filter((m) => /malformed traceparent .* ignored; the event starts a new trace/.test(m)).length, malformed.length);

      // Unsampled is still well-formed: kept, flags and all (the worker follows the producer's decision).
      const unsampled = TP.replace(/-01$/, '-00');
      const kept = (await client.query<{ id: string }>(CALL, args({ traceparent: unsampled, tracestate: 'a=1,b=2' }))).rows[0]!.id;
      assert.deepEqual((await client.query('select traceparent, tracestate from loomtrace.outbox where id = $1', [kept])).rows[0], { traceparent: unsampled, tracestate: 'a=1,b=2' });
      // A tracestate with no traceparent, an empty one, or one over 512 characters is not kept.
      for (const [tp, ts] of [[null, 'py=1'], [TP, ''], [TP, `k=${'v'.repeat(511)}`]] as const) {
        const id = (await client.query<{ id: string }>(CALL, args({ traceparent: tp, tracestate: ts }))).rows[0]!.id;
        assert.equal((await client.query('select tracestate from loomtrace.outbox where id = $1', [id])).rows[0].tracestate, null);
      }
    } finally {
      client.off('notice', onNotice);
      client.release();
    }
  });

  it('refuses bad attributes, projection names and payloads with a clear error (22023), by the TypeScript enqueue rules', async () => {
    const ok = { 'loomtrace.library.id': 'lib-1', tenant: 'acme', 'a/b-c_d.e': 'x'.repeat(256), n: 1.5, flag: false };
    const id = (await db.pool.query<{ id: string }>(CALL, args({ attributes: ok }))).rows[0]!.id;
    assert.deepEqual((await db.pool.query('select attributes from loomtrace.outbox where id = $1', [id])).rows[0].attributes, ok);
    const sixteen = Object.fromEntries(Array.from({ length: 16 }, (_, i) => [`k${i}`, i]));
    await db.pool.query(CALL, args({ attributes: sixteen }));

    const bad: [string, unknown, RegExp][] = [
      ['an array', ['tenant'], /attributes must be an object of string, number or boolean values, got array/],
      ['a string', 'tenant', /attributes must be an object .*, got string/],
      ['17 keys', { ...sixteen, k16: 16 }, /at most 16 attributes, got 17/],
      ['a key with a space', { 'a b': 1 }, /attribute key 'a b' must be 1 to 128 letters, digits, _ \. - \//],
      ['an empty key', { '': 1 }, /attribute key '' must be 1 to 128/],
      ['a key of 129 characters', { ['k'.repeat(129)]: 1 }, /must be 1 to 128/],
      ['the request id key', { 'loomtrace.request.id': 'r' }, /attribute key loomtrace\.request\.id is the outbox's own/],
      ['a messaging key', { 'messaging.system': 'x' }, /attribute key messaging\.system is the outbox's own/],
      ['a reserved loomtrace namespace', { 'loomtrace.lease.token': 'x' }, /attribute key loomtrace\.lease\.token is the outbox's own/],
      ['a nested object', { tenant: { id: 1 } }, /attribute tenant must be a string, number or boolean, got object/],
      ['an array value', { tenant: [1] }, /attribute tenant must be a string, number or boolean, got array/],
      ['a null value', { tenant: null }, /attribute tenant must be a string, number or boolean, got null/],
      ['a string of 257 characters', { tenant: 'x'.repeat(257) }, /attribute tenant is longer than 256 characters/],
    ];
    for (const [what, attributes, message] of bad) {
      await assert.rejects(db.pool.query(CALL, args({ attributes })), (err: pg.DatabaseError) => {
        assert.equal(err.code, '22023', what);
        assert.match(err.message, message, what);
        return true;
      });
      // The TypeScript enqueue refuses the same attributes before it writes anything.
      await assert.rejects(enqueue(db.pool, { ...input('orders'), attributes: attributes as EnqueueInput['attributes'] }), /enqueue: /, what);
    }
    // A number a double cannot hold would be an infinity on the worker's spans (JSON.parse says so too).
    await assert.rejects(db.pool.query(CALL, [...args().slice(0, 9), '{"n": 1e400}']), /attribute n must be a finite number/);
    await assert.rejects(enqueue(db.pool, { ...input('orders'), attributes: JSON.parse('{"n": 1e400}') }), /attribute n must be a finite number/);

    for (const projection of ['Orders', '', 'a'.repeat(64), 'orders search', null]) {
      await assert.rejects(db.pool.query(CALL, args({ projection })), /projection must match \[a-z\]\[a-z0-9_\.-\]\*/, String(projection));
      await assert.rejects(enqueue(db.pool, input(projection as string)), /projection must match/, String(projection));
    }
    await assert.rejects(db.pool.query(CALL, args({ payload: [1, 2] })), /payload must be a JSON object, got array/);
    await assert.rejects(db.pool.query(CALL, [...args().slice(0, 5), null, ...args().slice(6)]), /payload must be a JSON object, got null/);
    await assert.rejects(db.pool.query(CALL, [...args().slice(0, 4), null, ...args().slice(5)]), /aggregate_version are required/);
    const written = (await db.pool.query<{ n: number }>("select count(*)::int n from loomtrace.outbox where projection <> 'orders'")).rows[0]!.n;
    assert.equal(written, 0, 'nothing refused was written');
  });
});

function input(projection: string): EnqueueInput {
  return { projection, eventType: 'order.shipped', aggregateType: 'order', aggregateId: '42', aggregateVersion: 2, payload: {} };
}
