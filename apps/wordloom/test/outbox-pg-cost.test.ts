import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { blockEvent } from './support/events.js';
import { until } from './support/wait.js';
import { enqueueMany } from '@loomtrace/outbox';
import { claimEvents, completeBatch, completeEvents } from '@loomtrace/outbox/internal';

/**
 * What the outbox costs Postgres per event (decision 0019): an ack stamps `done_at` once per
 * statement (its start), so the BRIN index on `done_at` grows a page range's summary once per
 * batch, not once per acked row (each growth is a WAL record under an exclusive lock on the
 * summary's page); a new event's queue row is a plain insert, not a speculative one (migration
 * 000090).
 */

/** WAL records of this database's relation `rel` between two LSNs, by record type (waits for the WAL writer: the test server does not flush at commit). */
async function walRecords(db: TestDatabase, rel: string, from: string, to: string): Promise<string[]> {
  await until('the WAL to be flushed', 10_000, async () =>
    (await db.pool.query<{ ok: boolean }>('select pg_current_wal_flush_lsn() >= $1::pg_lsn as ok', [to])).rows[0]!.ok,
  );
  const { rows } = await db.pool.query<{ t: string }>(
    `select resource_manager || ' ' || record_type as t from pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)
      where block_ref like '%rel ' || (select format('%s/%s/%s', (select oid from pg_tablespace where spcname = 'pg_default'),
                                         (select oid from pg_database where datname = current_database()), pg_relation_filenode($3::regclass))) || ' %'`,
    [from, to, rel],
  );
  return rows.map((r) => r.t);
}

const insertLsn = async (db: TestDatabase) => (await db.pool.query<{ l: string }>('select pg_current_wal_insert_lsn()::text as l')).rows[0]!.l;

async function claim(db: TestDatabase, limit: number): Promise<{ token: string; ids: string[] }> {
  const token = randomUUID();
  const rows = await claimEvents(db.pool, { projection: 'search', limit, leaseToken: token, owner: 'w', leaseMs: 30_000, commitTimestamps: false });
  return { token, ids: rows.map((r) => r[0]) };
}

async function doneTimes(db: TestDatabase, ids: readonly string[]) {
  const { rows } = await db.pool.query<{ done_at: Date; claimed_at: Date }>(
    'select done_at, claimed_at from loomtrace.outbox where id = any($1::bigint[]) and state = $2',
    [ids, 'done'],
  );
  return rows;
}

describe('Postgres cost per event', () => {
  it("a batch's ack, whole or partial, stamps every event with one done_at: the statement's start, after the claim", async () => {
    const db = await freshDatabase('ack_one_time');
    try {
      await enqueueMany(db.pool, Array.from({ length: 300 }, (_, i) => blockEvent(i)));
      const whole = await claim(db, 200);
      const t0 = Date.now();
      assert.equal((await completeBatch(db.pool, whole.ids, whole.token)).size, 200);
      const a = await doneTimes(db, whole.ids);
      assert.equal(a.length, 200);
      assert.equal(new Set(a.map((r) => r.done_at.getTime())).size, 1, 'one done_at for the whole batch');
      assert.ok(a.every((r) => r.done_at >= r.claimed_at), 'acked after the claim');
      assert.ok(Math.abs(a[0]!.done_at.getTime() - t0) < 5_000, 'the ack statement’s own time');

      const part = await claim(db, 100);
      const some = part.ids.slice(0, 60);
      assert.equal((await completeEvents(db.pool, some, part.token)).size, 60);
      const b = await doneTimes(db, part.ids);
      assert.equal(b.length, 60, 'only the events named are acked');
      assert.equal(new Set(b.map((r) => r.done_at.getTime())).size, 1, 'one done_at for the partial ack');
      assert.ok(b[0]!.done_at > a[0]!.done_at, 'a later statement, a later time');
    } finally {
      await db.drop();
    }
  });

  it("with the done_at BRIN's ranges summarized, acking 400 events grows each range's summary once, not once per row", async () => {
    const db = await freshDatabase('ack_brin_records');
    try {
      await enqueueMany(db.pool, Array.from({ length: 400 }, (_, i) => blockEvent(i)));
      await db.pool.query('create extension if not exists pg_walinspect');
      // As in a table that has run a while: every full page range already has a summary.
      await db.pool.query("select brin_summarize_new_values('loomtrace.outbox_done_brin')");
      const { rows: rel } = await db.pool.query<{ ranges: number }>(
        "select ceil(pg_relation_size('loomtrace.outbox') / current_setting('block_size')::numeric / 128)::int as ranges",
      );
      const { ranges } = rel[0]!;
      const c = await claim(db, 400);
      assert.equal(c.ids.length, 400);
      const from = await insertLsn(db);
      assert.equal((await completeBatch(db.pool, c.ids, c.token)).size, 400);
      const brin = (await walRecords(db, 'loomtrace.outbox_done_brin', from, await insertLsn(db))).filter((t) => t.startsWith('BRIN'));
      const rows = [{ n: brin.length }];
      assert.ok(rows[0]!.n >= 1, 'the summaries grew (the index is in use)');
      assert.ok(rows[0]!.n <= ranges + 1, `one summary update per range touched (${ranges}), not per row: ${rows[0]!.n} BRIN records`);
    } finally {
      await db.drop();
    }
  });

  it('a new event enters the queue by a plain insert (no speculative insertion, no HEAP_CONFIRM record); a hand-written queue row for an unused id makes that insert fail', async () => {
    const db = await freshDatabase('enqueue_plain_insert');
    try {
      await db.pool.query('create extension if not exists pg_walinspect');
      const from = await insertLsn(db);
      const [id] = (await enqueueMany(db.pool, [blockEvent(0)])) as [string];
      const records = await walRecords(db, 'loomtrace.outbox_queue', from, await insertLsn(db));
      assert.equal(records.length, 1, `one record for the queue row's heap: ${records.join(', ')}`);
      assert.match(records[0]!, /^Heap INSERT/, 'an insert, with no HEAP_CONFIRM of a speculative one');
      const { rows: q } = await db.pool.query<{ id: string }>('select id::text from loomtrace.outbox_queue');
      assert.deepEqual(q.map((r) => r.id), [id]);

      // A queue row written by hand for the next id (nothing else can make one): the event's insert fails, loudly, and leaves nothing.
      const next = (await db.pool.query<{ n: string }>("select (nextval(pg_get_serial_sequence('loomtrace.outbox', 'id')) + 1)::text as n")).rows[0]!.n;
      await db.pool.query("insert into loomtrace.outbox_queue (id, projection, run_at) values ($1, 'search', '2000-01-01')", [next]);
      await assert.rejects(enqueueMany(db.pool, [blockEvent(1)]), (e: { code?: string }) => e.code === '23505');
      const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from loomtrace.outbox where id = $1', [next]);
      assert.equal(rows[0]!.n, 0, 'the event was not stored without its queue row');
      // The next event gets the next id and is queued as usual.
      const [id3] = (await enqueueMany(db.pool, [blockEvent(2)])) as [string];
      assert.equal((await db.pool.query('select 1 from loomtrace.outbox_queue where id = $1', [id3])).rowCount, 1);
    } finally {
      await db.drop();
    }
  });
});
