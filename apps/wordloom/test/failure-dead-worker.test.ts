/**
 * A worker that dies is noticed from Postgres itself (decision 0011): its session ends, its
 * presence lock goes with it, and another worker takes its leases over at once, not after
 * the default 30 s lease. A live worker that is merely slow keeps its leases until they expire.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { startWorker, type Proc } from './support/procs.js';
import { outboxCounts, sleep, until } from './support/wait.js';

async function seed(db: TestDatabase, n: number): Promise<void> {
  await db.pool.query(
    `insert into loomtrace.outbox (projection, event_type, aggregate_type, aggregate_id, aggregate_version, payload)
     select 'search', 'block.updated', 'block', gen_random_uuid()::text, 1,
            jsonb_build_object('book_id', '00000000-0000-4000-8000-000000000002', 'library_id', '00000000-0000-4000-8000-000000000001',
                               'block_type', 'text', 'content', 'dead worker drill ' || g)
       from generate_series(1, $1) g`,
    [n],
  );
}

const held = async (db: TestDatabase, owner: string): Promise<number> =>
  (await db.pool.query<{ n: number }>("select count(*)::int n from loomtrace.outbox_current where state = 'claimed' and lease_owner = $1", [owner])).rows[0]!.n;

describe('a dead worker is noticed from Postgres', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('SIGKILL a worker holding a batch under the default 30 s lease: another worker acks its events within 2 s', async () => {
    const db = await freshDatabase('dead_worker', { max: 4 });
    cleanups.push(() => db.drop());
    const quiet = { METRICS_PORT: '-1', OTEL_SDK_DISABLED: 'true' };
    // The victim's writes take a minute: it surely holds its batch when it is killed. No lease setting: the default 30 s.
    const victim: Proc = await startWorker(db.url, { ...quiet, WORKER_ID: 'victim', WORKER_CONCURRENCY: '1', LOOMTRACE_FAULTS: 'latency:60000' });
    cleanups.push(() => victim.stop(0));
    await seed(db, 50);
    await until('the victim to hold the events', 20_000, async () => ((await held(db, 'victim')) === 50 ? true : undefined));
    const lease = (await db.pool.query<{ ms: number; presence: number | null }>(
      "select (extract(epoch from expires_at - claimed_at) * 1000)::int ms, presence from loomtrace.outbox_leases where owner = 'victim'",
    )).rows[0]!;
    assert.ok(lease.ms >= 29_000, `the default 30 s lease (${lease.ms} ms)`);
    assert.ok(lease.presence !== null, 'the lease names the victim\'s presence lock');

    const rescuer = await startWorker(db.url, { ...quiet, WORKER_ID: 'rescuer' });
    cleanups.push(() => rescuer.stop());
    // A live worker keeps its lease: the rescuer takes nothing while the victim lives.
    await sleep(2_500);
    assert.equal(await held(db, 'victim'), 50, 'a slow but live worker keeps its leases');

    victim.proc.kill('SIGKILL');
    await victim.exited;
    const killedAt = performance.now();
    await until('the rescuer to ack every event', 15_000, async () => ((await outboxCounts(db.pool))['done'] === 50 ? true : undefined), { intervalMs: 50 });
    const tookMs = performance.now() - killedAt;
    process.stdout.write(`# dead worker: its 50 events acked by another worker ${Math.round(tookMs)} ms after SIGKILL (lease 30 s)\n`);
    assert.ok(tookMs < 2_000, `acked within 2 s of the kill, took ${Math.round(tookMs)} ms`);

    const attempts = (await db.pool.query<{ outcome: string; reason: string; n: number }>(
      "select outcome, reason, count(*)::int n from loomtrace.outbox_attempts where lease_owner = 'victim' group by 1, 2",
    )).rows;
    assert.deepEqual(attempts, [{ outcome: 'lost', reason: 'worker_gone', n: 50 }], 'each event records the lost attempt and why');
    const events = (await db.pool.query<{ owner: string; previous: string; attempts: number; n: number }>(
      "select lease_owner owner, previous_owner previous, attempts, count(*)::int n from loomtrace.outbox group by 1, 2, 3",
    )).rows;
    assert.deepEqual(events, [{ owner: 'rescuer', previous: 'victim', attempts: 2, n: 50 }]);
  });
});
