import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { isConnectionError } from '@loomtrace/outbox';
import { inTransaction } from '@loomtrace/outbox';
import { classifyError } from '@loomtrace/outbox';
import { freshDatabase, type TestDatabase } from './support/db.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What node-postgres does when the server terminates a connection that a caller holds, on a
 * pool from createPool: real connections, really terminated. A checked-out client whose
 * backend dies emits 'error'; without a listener that is an uncaught exception and this test
 * process would die. The errors the holder sees are recognised as connection errors.
 */
describe('connection loss: a checked-out client whose backend is terminated', () => {
  let db: TestDatabase;
  let admin: pg.Client | undefined;

  after(async () => {
    await admin?.end().catch(() => undefined);
    await db?.drop();
  });

  const backendPid = async (c: pg.PoolClient) => (await c.query<{ pid: number }>('select pg_backend_pid() pid')).rows[0]!.pid;
  const terminate = async (pid: number) => {
    const { rows } = await admin!.query<{ ok: boolean }>('select pg_terminate_backend($1) ok', [pid]);
    assert.equal(rows[0]!.ok, true);
  };

  /** Waits (bounded) until the backend has exited, and a little longer for its socket to close. */
  const gone = async (pid: number) => {
    for (let i = 0; i < 100 && (await admin!.query('select 1 from pg_stat_activity where pid = $1', [pid])).rowCount! > 0; i++) await sleep(50);
    await sleep(200);
  };

  it('rejects its queries with connection errors, emits no uncaught error, and the pool carries on', async () => {
    db = await freshDatabase('connloss_errors', { max: 4 });
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
    const errors: unknown[] = [];

    // Killed while idle in the caller's hands (no query in flight): 'error' is emitted on the client.
    const idle = await db.pool.connect();
    const idlePid = await backendPid(idle);
    await terminate(idlePid);
    await gone(idlePid);
    await idle.query('select 1').then(() => assert.fail('a dead client answered'), (e: unknown) => errors.push(e));
    idle.release(errors.at(-1) as Error);

    // Killed mid-query: the query rejects (57P01), then the connection ends.
    const busy = await db.pool.connect();
    const pid = await backendPid(busy);
    const inFlight = busy.query('select pg_sleep(30)').then(() => assert.fail('the sleep finished'), (e: unknown) => errors.push(e));
    for (let i = 0; i < 100 && (await admin.query("select 1 from pg_stat_activity where pid = $1 and query like 'select pg_sleep%'", [pid])).rowCount === 0; i++) await sleep(50);
    await terminate(pid);
    await inFlight;
    await gone(pid);
    await busy.query('select 1').then(() => assert.fail('a dead client answered'), (e: unknown) => errors.push(e));
    busy.release(errors.at(-1) as Error);

    // Killed inside inTransaction: the statement's error reaches the caller, the client is discarded.
    const tx = inTransaction(db.pool, async (c) => {
      const p = await backendPid(c);
      await terminate(p);
      await gone(p);
      await c.query('select 1');
    });
    await tx.then(() => assert.fail('the transaction committed'), (e: unknown) => errors.push(e));

    assert.equal(errors.length, 4);
    for (const e of errors) {
      assert.ok(isConnectionError(e), `a connection error: ${(e as Error).message}`);
      assert.equal(classifyError(e).kind, 'retry');
      assert.equal((classifyError(e) as { reason: string }).reason, 'connection', (e as Error).message);
    }
    assert.equal(isConnectionError(Object.assign(new Error('duplicate key'), { code: '23505' })), false);
    assert.equal(isConnectionError(new Error('Connection terminated by the user')), true);
    assert.equal(isConnectionError(Object.assign(new Error('Connection terminated'), { code: '23505' })), false, 'a code decides');

    // The pool hands out working connections again, none of the dead ones.
    for (let i = 0; i < 8; i++) assert.equal((await db.pool.query<{ one: number }>('select 1 one')).rows[0]!.one, 1);
    assert.equal(db.pool.totalCount <= 4, true);
  });
});
