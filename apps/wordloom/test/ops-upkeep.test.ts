import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/db.js';
import { enqueueMany } from '@loomtrace/outbox';
import { OutboxUpkeep } from '@loomtrace/outbox';
import { purgeDone } from '@loomtrace/outbox/internal';
import type { EnqueueInput } from '@loomtrace/outbox';

const ev = (i: number): EnqueueInput => ({
  projection: 'search',
  eventType: 'block.updated',
  aggregateType: 'block',
  aggregateId: `agg-${i}`,
  aggregateVersion: 1,
  payload: {},
});

test('upkeep deletes done events past retention in batches; keeps recent, pending and dead ones', { timeout: 60_000 }, async (t) => {
  const db = await freshDatabase('ops_upkeep');
  t.after(() => db.drop());
  const ids = await enqueueMany(db.pool, Array.from({ length: 400 }, (_, i) => ev(i)));
  const old = ids.slice(0, 250);
  const recent = ids.slice(250, 300);
  const deadOld = ids.slice(300, 320);
  // Move timestamps back in SQL rather than waiting.
  await db.pool.query(`update loomtrace.outbox set state = 'done', done_at = now() - interval '2 days' where id = any($1::bigint[])`, [old]);
  await db.pool.query(`update loomtrace.outbox set state = 'done', done_at = now() - interval '1 minute' where id = any($1::bigint[])`, [recent]);
  await db.pool.query(`update loomtrace.outbox set state = 'dead', dead_at = now() - interval '30 days' where id = any($1::bigint[])`, [deadOld]);
  // An old done event that had a retry on record: its attempts go with it.
  await db.pool.query(`insert into loomtrace.outbox_attempts (event_id, attempt, outcome, reason) values ($1, 1, 'retry', 'http_429')`, [old[0]]);

  const upkeep = new OutboxUpkeep({ pool: db.pool, retentionMs: 86_400_000, batchSize: 40 });
  // One statement deletes at most one batch.
  const first = await purgeDone(db.pool, 86_400_000, 40);
  assert.equal(first, 40);
  const n = await upkeep.sweep();
  assert.equal(n, 210, 'the sweep loops batch by batch until nothing past retention is left');
  assert.equal(await upkeep.sweep(), 0);

  const { rows } = await db.pool.query<{ state: string; n: number }>(`select state, count(*)::int as n from loomtrace.outbox group by state order by state`);
  assert.deepEqual(rows, [
    { state: 'dead', n: 20 },
    { state: 'done', n: 50 },
    { state: 'pending', n: 80 },
  ]);
  const left = await db.pool.query(`select 1 from loomtrace.outbox where id = any($1::bigint[])`, [old]);
  assert.equal(left.rowCount, 0);
  const attempts = await db.pool.query(`select 1 from loomtrace.outbox_attempts where event_id = $1`, [old[0]]);
  assert.equal(attempts.rowCount, 0, 'attempts of purged events are purged too');

  // Retention 0 takes the recent done events as well, still never the dead letters.
  assert.equal(await new OutboxUpkeep({ pool: db.pool, retentionMs: 0, batchSize: 1000 }).sweep(), 50);
  const dead = await db.pool.query(`select 1 from loomtrace.outbox where state = 'dead'`);
  assert.equal(dead.rowCount, 20);
});
