import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { blockEvent } from './support/events.js';
import { until } from './support/wait.js';
import { enqueueMany, migrate, migrationsDir, OutboxWorker, runMigrations, WRITTEN } from '@loomtrace/outbox';
import type { OutboxEvent, Sink } from '@loomtrace/outbox';
import { claimEvents, completeBatch, failEvents, reclaimExpired, releaseEvents, renewLease } from '@loomtrace/outbox/internal';

/**
 * The claim lives in the lease row (migration 000080, decision 0013): the claim leaves the
 * outbox row as it is, the statement that ends the attempt writes it once, and
 * `loomtrace.outbox_current` shows a leased event as claimed.
 */

const event = blockEvent;

interface Current {
  state: string;
  attempts: number;
  lease_owner: string | null;
  renewals: number;
}
async function current(db: TestDatabase, id: string): Promise<Current> {
  const { rows } = await db.pool.query<Current>('select state, attempts, lease_owner, renewals from loomtrace.outbox_current where id = $1', [id]);
  return rows[0]!;
}

describe('claim in the lease row', () => {
  it('the claim leaves the outbox row untouched; a lost lease makes the ack, the retry, the release and the heartbeat change 0 rows', async () => {
    const db = await freshDatabase('claim_lease_guards');
    try {
      const ids = await enqueueMany(db.pool, [event(0), event(1)]);
      const raw = async () => (await db.pool.query('select xmin::text, state, attempts from loomtrace.outbox order by id')).rows;
      const before = await raw();
      const token = randomUUID();
      const claimed = await claimEvents(db.pool, { projection: 'search', limit: 10, leaseToken: token, owner: 'w1', leaseMs: 50, commitTimestamps: false });
      assert.deepEqual(claimed.map((r) => [r[0], r[10]]), ids.map((id) => [id, 1]), 'attempt 1 of each event');
      assert.deepEqual(await raw(), before, 'no new row version: the claim wrote nothing into the outbox rows');
      assert.deepEqual(await current(db, ids[0]!), { state: 'claimed', attempts: 1, lease_owner: 'w1', renewals: 0 });
      assert.equal((await renewLease(db.pool, ids, token, 50)).size, 2, 'the heartbeat holds both');
      assert.equal((await current(db, ids[0]!)).renewals, 1, 'the renewal is on the lease');

      await new Promise((r) => setTimeout(r, 80));
      assert.deepEqual(await reclaimExpired(db.pool, 'search', 10, 5), { reclaimed: 2, dead: 0 });
      // Every statement of the old holder is guarded by its lease row, now gone.
      assert.equal((await completeBatch(db.pool, ids, token)).size, 0, 'stale ack: 0 rows');
      assert.equal((await failEvents(db.pool, ids.map((id) => ({ id, nextState: 'pending', delayMs: 0, reason: 'x', error: 'x', span: null })), token)).size, 0);
      assert.equal(await releaseEvents(db.pool, ids, token, 'w1'), 0);
      assert.equal((await renewLease(db.pool, ids, token, 50)).size, 0);

      const { rows } = await db.pool.query(
        `select o.state, o.attempts, o.previous_owner, o.reclaims, o.lease_owner, o.renewals, a.outcome, a.reason, a.lease_owner as a_owner, a.attempt
           from loomtrace.outbox o join loomtrace.outbox_attempts a on a.event_id = o.id where o.id = $1`,
        [ids[0]],
      );
      assert.deepEqual(rows, [
        { state: 'pending', attempts: 1, previous_owner: 'w1', reclaims: 1, lease_owner: 'w1', renewals: 1, outcome: 'lost', reason: 'lease_expired', a_owner: 'w1', attempt: 1 },
      ]);
      assert.equal((await db.pool.query('select count(*)::int n from loomtrace.outbox_queue')).rows[0].n, 2, 'both back in the queue');

      // The next attempt is attempt 2; its ack is the row's one update.
      const t2 = randomUUID();
      const again = await claimEvents(db.pool, { projection: 'search', limit: 10, leaseToken: t2, owner: 'w2', leaseMs: 30_000, commitTimestamps: false });
      assert.deepEqual(again.map((r) => r[10]), [2, 2]);
      assert.deepEqual([...(await completeBatch(db.pool, ids, t2))].sort(), [...ids].sort());
      assert.deepEqual(await current(db, ids[1]!), { state: 'done', attempts: 2, lease_owner: 'w2', renewals: 0 });
      assert.deepEqual((await completeBatch(db.pool, ids, t2)).size, 2, 'a repeated ack reads back what the first one settled');
    } finally {
      await db.drop();
    }
  });

  it('migration 000080 moves batches claimed before it into the lease rows: a live one is acked by its token, an expired one reclaimed', async () => {
    const db = await freshDatabase('claim_lease_migration', { template: false });
    const dir = await mkdtemp(path.join(tmpdir(), 'loomtrace-migrations-'));
    try {
      for (const f of await readdir(migrationsDir())) if (f < '000080') await cp(path.join(migrationsDir(), f), path.join(dir, f));
      await runMigrations(db.pool, { schema: 'loomtrace', dir });
      const [live1, live2, gone, waiting] = (await enqueueMany(db.pool, [event(0), event(1), event(2), event(3)])) as [string, string, string, string];
      const [liveToken, goneToken] = [randomUUID(), randomUUID()];
      // Claimed as the claim before 000080 did: rows moved to `claimed` (attempt counted), one lease row per batch.
      await db.pool.query(
        `with b(ids, token, owner, claimed, expires, renewals) as (
           values ($1::bigint[], $3::uuid, 'old-live', now(), now() + interval '1 minute', 2),
                  ($2::bigint[], $4::uuid, 'old-gone', now() - interval '2 minutes', now() - interval '1 minute', 0)
         ), q as (
           delete from loomtrace.outbox_queue where id in (select unnest(ids) from b)
         ), o as (
           update loomtrace.outbox o set state = 'claimed', attempts = 1, lease_token = b.token, lease_owner = b.owner,
                  claimed_at = b.claimed, lease_expires_at = b.expires, renewals = b.renewals, last_renewed_at = now()
             from b where o.id = any(b.ids)
         )
         insert into loomtrace.outbox_leases (token, projection, owner, claimed_at, expires_at, event_ids)
         select token, 'search', owner, claimed, expires, ids from b`,
        [[live1, live2], [gone], liveToken, goneToken],
      );

      await migrate(db.pool);
      const raw = (await db.pool.query('select id::text, state, attempts from loomtrace.outbox order by id')).rows;
      assert.deepEqual(raw.map((r) => [r.state, r.attempts]), [['pending', 0], ['pending', 0], ['pending', 0], ['pending', 0]], 'the rows hold finished attempts only');
      assert.deepEqual((await db.pool.query('select id::text from loomtrace.outbox_queue')).rows.map((r) => r.id), [waiting], 'leased events are not queued again');
      assert.deepEqual(await current(db, live1), { state: 'claimed', attempts: 1, lease_owner: 'old-live', renewals: 2 });
      assert.deepEqual(await current(db, waiting), { state: 'pending', attempts: 0, lease_owner: null, renewals: 0 });

      // The batch's holder acks by its token, as it always did.
      assert.deepEqual([...(await completeBatch(db.pool, [live1, live2], liveToken))].sort(), [live1, live2].sort());
      assert.deepEqual(await current(db, live2), { state: 'done', attempts: 1, lease_owner: 'old-live', renewals: 2 });

      const seen: string[] = [];
      const sink: Sink = { name: 'recording', system: 'test', async write(events: readonly OutboxEvent[]) { seen.push(...events.map((e) => e.id)); return events.map(() => WRITTEN); } };
      const worker = new OutboxWorker({ pool: db.pool, projection: 'search', sink, listen: false, pollIntervalMs: 20, reclaimIntervalMs: 50, concurrency: 1, workerId: 'new' });
      await worker.start();
      try {
        await until('the rest delivered', 15_000, async () => (await db.pool.query("select count(*)::int n from loomtrace.outbox_current where state <> 'done'")).rows[0].n === 0);
      } finally {
        await worker.stop();
      }
      assert.deepEqual(seen.sort(), [gone, waiting].sort());
      const { rows } = await db.pool.query('select state, attempts, previous_owner, reclaims, lease_owner from loomtrace.outbox where id = $1', [gone]);
      assert.deepEqual(rows[0], { state: 'done', attempts: 2, previous_owner: 'old-gone', reclaims: 1, lease_owner: 'new' });
      const lost = (await db.pool.query('select attempt, outcome, reason, lease_owner from loomtrace.outbox_attempts where event_id = $1', [gone])).rows;
      assert.deepEqual(lost, [{ attempt: 1, outcome: 'lost', reason: 'lease_expired', lease_owner: 'old-gone' }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
      await db.drop();
    }
  });

  it('two claims at once take disjoint batches, oldest first, and delete exactly the queue rows they locked (by ctid)', async () => {
    const db = await freshDatabase('claim_lease_async_ctid', { max: 4 });
    const a = await db.pool.connect();
    const b = await db.pool.connect();
    try {
      const ids = await enqueueMany(db.pool, Array.from({ length: 30 }, (_, i) => event(i)));
      // Two claims at once, each in an open transaction: the second skips the rows the first locked.
      await a.query('begin');
      await b.query('begin');
      const ta = randomUUID();
      const tb = randomUUID();
      const first = await claimEvents(a, { projection: 'search', limit: 10, leaseToken: ta, owner: 'wa', leaseMs: 30_000, commitTimestamps: false });
      const second = await claimEvents(b, { projection: 'search', limit: 10, leaseToken: tb, owner: 'wb', leaseMs: 30_000, commitTimestamps: false });
      await a.query('commit');
      await b.query('commit');
      const got = [...first, ...second].map((r) => r[0]);
      assert.equal(first.length, 10);
      assert.equal(second.length, 10);
      assert.equal(new Set(got).size, 20, 'no event in both batches');
      assert.deepEqual(got, ids.slice(0, 20), 'oldest first, the second claim after the rows the first locked');
      const { rows: queued } = await db.pool.query<{ id: string }>('select id::text from loomtrace.outbox_queue order by id');
      assert.deepEqual(queued.map((r) => r.id), ids.slice(20), 'exactly the claimed rows left the queue');
      const { rows: leases } = await db.pool.query<{ owner: string; ids: string[] }>('select owner, event_ids::text[] as ids from loomtrace.outbox_leases order by owner');
      assert.deepEqual(leases, [
        { owner: 'wa', ids: first.map((r) => r[0]) },
        { owner: 'wb', ids: second.map((r) => r[0]) },
      ]);
      // An autocommit claim (what the worker sends) takes the rest.
      const third = await claimEvents(a, { projection: 'search', limit: 10, leaseToken: randomUUID(), owner: 'wa', leaseMs: 30_000, commitTimestamps: false });
      assert.deepEqual(third.map((r) => r[0]), ids.slice(20));
      assert.equal((await completeBatch(db.pool, first.map((r) => r[0]), ta)).size, 10, 'the ack by token still finds its batch');
    } finally {
      a.release();
      b.release();
      await db.drop();
    }
  });
});
