/**
 * Retries, backoff, dead letters and replay with real worker processes on a real Postgres
 * (issue 3). Faults come from LOOMTRACE_FAULTS (src/projection/faults.ts) in the workers.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { runCli, startWorker, type Proc, type RunResult } from './support/procs.js';
import { otlpEnv, startOtlpJsonReceiver } from './support/otlp.js';
import { outboxCounts, until } from './support/wait.js';
import { backoffBounds, DEFAULT_BACKOFF } from '@loomtrace/outbox';

const LIB = '00000000-0000-4000-8000-000000000001';
const BOOK = '00000000-0000-4000-8000-000000000002';

/**
 * `blocks` × `versions` valid block events in random order. Each carries a producer's
 * traceparent, sampled for about `sampled` of them (as a parent-based API would store them).
 */
async function seed(db: TestDatabase, blocks: number, versions: number, sampled = 1): Promise<void> {
  await db.pool.query(
    `insert into loomtrace.outbox (projection, event_type, aggregate_type, aggregate_id, aggregate_version, attributes, traceparent, payload)
     select 'search', 'block.updated', 'block', b.id::text, v, jsonb_build_object('loomtrace.library.id', $3::text),
            '00-' || md5(random()::text) || '-' || substr(md5(random()::text), 1, 16) || case when random() < $5 then '-01' else '-00' end,
            jsonb_build_object('book_id', $4::text, 'library_id', $3::text, 'block_type', 'text', 'content', 'retry drill ' || b.n || ' v' || v)
       from (select n, gen_random_uuid() id from generate_series(1, $1) n) b cross join generate_series(1, $2) v
      order by random()`,
    [blocks, versions, LIB, BOOK, sampled],
  );
}

/** Runs the `loomtrace` CLI as a process. */
function cli(dbUrl: string, args: string[]): Promise<RunResult> {
  return runCli(args, { DATABASE_URL: dbUrl, OTEL_SDK_DISABLED: 'true' });
}

const quiet = { METRICS_PORT: '-1', LOG_LEVEL: 'info' };

describe('failure semantics: retries, dead letters, replay', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('30% injected 429s and timeouts on 5,000 events: all indexed; attempts, reasons and waits recorded; backoff respected', async () => {
    const db = await freshDatabase('fail_retry', { max: 4 });
    cleanups.push(() => db.drop());
    const otlp = await startOtlpJsonReceiver();
    cleanups.push(() => otlp.close());
    const env = {
      ...quiet,
      ...otlpEnv(otlp.url, 'wordloom-worker'),
      WORKER_BATCH_SIZE: '50',
      WORKER_CONCURRENCY: '2',
      WORKER_LEASE_MS: '5000',
    };
    // 15% of bulk calls answer 429 (Retry-After 300 ms), 15% time out after 100 ms; an event is hit
    // at most 3 times (cap), so the test's duration stays bounded by the backoff of attempt 3.
    const faults = (seed: number) => `429:0.15,timeout:0.15,timeout_ms:100,retry_after_ms:300,cap:3,seed:${seed}`;
    const workers: Proc[] = await Promise.all([1, 2].map((n) => startWorker(db.url, { ...env, WORKER_ID: `r${n}`, LOOMTRACE_FAULTS: faults(n) })));
    cleanups.push(() => Promise.all(workers.map((w) => w.stop())));
    // 10% of the producers' traces sampled: parent-based, the workers record only those.
    await seed(db, 1_250, 4, 0.1);
    await until('all 5,000 events done', 120_000, async () => (await outboxCounts(db.pool))['done'] === 5_000);
    assert.deepEqual(await outboxCounts(db.pool), { done: 5_000 }, 'all indexed in the end, nothing dead-lettered');
    const idx = (await db.pool.query<{ n: number; lo: number }>('select count(*)::int n, min(version)::int lo from search.blocks')).rows[0]!;
    assert.deepEqual(idx, { n: 1_250, lo: 4 });

    // Attempts and reasons.
    const att = await db.pool.query<{ event_id: string; attempt: number; reason: string; delay_ms: number; run_at_ms: number; next_claim_ms: number; retry_after: boolean }>(
      `select a.event_id::text, a.attempt, a.reason, a.delay_ms,
              (extract(epoch from a.run_at) * 1000)::float8 as run_at_ms,
              (extract(epoch from coalesce(n.claimed_at, case when o.attempts = a.attempt + 1 then o.claimed_at end)) * 1000)::float8 as next_claim_ms,
              a.error like '%429%' as retry_after
         from loomtrace.outbox_attempts a
         join loomtrace.outbox o on o.id = a.event_id
         left join loomtrace.outbox_attempts n on n.event_id = a.event_id and n.attempt = a.attempt + 1
        where a.outcome = 'retry'`,
    );
    assert.ok(att.rowCount! > 0);
    const reasons = new Set(att.rows.map((r) => r.reason));
    assert.ok(reasons.has('http_429') && reasons.has('timeout'), 'the injected reasons, each classified once');
    // Besides the injected faults, the only transient failure allowed is a real Postgres deadlock
    // between two workers' concurrent upserts of the same blocks (40P01, retryable).
    const other = (await db.pool.query<{ reason: string; error: string }>(
      "select reason, error from loomtrace.outbox_attempts where outcome = 'retry' and reason not in ('http_429', 'timeout')",
    )).rows;
    assert.ok(other.every((o) => o.reason === 'connection' && /deadlock/.test(o.error)), `unexpected failures: ${JSON.stringify(other.slice(0, 3))}`);
    if (other.length) process.stdout.write(`# note: ${other.length} retries were real upsert deadlocks (sink sorts nothing)\n`);
    const firstFailed = new Set(att.rows.filter((r) => r.attempt === 1).map((r) => r.event_id)).size;
    assert.ok(firstFailed > 5_000 * 0.15 && firstFailed < 5_000 * 0.45, `about 30% of first attempts failed (${firstFailed})`);
    const maxAttempts = (await db.pool.query<{ m: number }>('select max(attempts)::int m from loomtrace.outbox')).rows[0]!.m;
    assert.ok(maxAttempts >= 2 && maxAttempts <= 4, `cap 3: at most 4 attempts (${maxAttempts})`);

    // Backoff respected: each wait within the policy's bounds (Retry-After as a floor), and the
    // next attempt never claimed before the scheduled end of the wait (run_at = failure + delay).
    for (const r of att.rows) {
      const [min, max] = backoffBounds(r.attempt, DEFAULT_BACKOFF);
      const floor = r.reason === 'http_429' ? Math.max(min, 300) : min;
      const ceil = r.reason === 'http_429' ? Math.max(max, 300) : max;
      assert.ok(r.delay_ms >= floor && r.delay_ms <= ceil, `attempt ${r.attempt} ${r.reason}: waited ${r.delay_ms} ms, outside [${floor}, ${ceil}]`);
      assert.ok(r.next_claim_ms !== null, `event ${r.event_id}: attempt ${r.attempt + 1} is recorded`);
      assert.ok(r.run_at_ms !== null, 'the scheduled run_at is recorded with the retry');
      assert.ok(r.next_claim_ms >= r.run_at_ms, `event ${r.event_id}: attempt ${r.attempt + 1} started ${r.run_at_ms - r.next_claim_ms} ms before its backoff ended`);
    }

    // In the traces: a sampled retry attempt carries its number, the reason and the wait, and links to the failed one.
    const byKey = new Map(att.rows.map((r) => [`${r.event_id}/${r.attempt}`, r]));
    const retries = await until('sampled retry attempts', 20_000, async () => {
      const s = otlp.spans.filter((x) => x.name === 'process search' && Number(x.attributes['loomtrace.attempt']) >= 2 && x.attributes['loomtrace.outcome'] === 'done');
      return s.length >= 5 ? s : undefined;
    });
    for (const s of retries) {
      const prev = byKey.get(`${s.attributes['messaging.message.id']}/${Number(s.attributes['loomtrace.attempt']) - 1}`);
      assert.ok(prev);
      assert.equal(s.attributes['loomtrace.retry.reason'], prev.reason);
      assert.equal(s.attributes['loomtrace.retry.delay_ms'], prev.delay_ms);
      assert.ok(s.links.some((l) => l.attributes['loomtrace.link'] === 'previous_attempt'), 'attempt N links to attempt N-1');
      assert.notEqual(s.status.code, 2, 'a failure fixed by a later attempt does not mark the trace failed');
    }
  });

  it('a poison event is dead-lettered after N attempts while the rest flow; replay brings it in once, continuing its trace', async () => {
    const db = await freshDatabase('fail_poison', { max: 4 });
    cleanups.push(() => db.drop());
    const otlp = await startOtlpJsonReceiver();
    cleanups.push(() => otlp.close());
    const env = { ...quiet, ...otlpEnv(otlp.url, 'wordloom-worker'), WORKER_MAX_ATTEMPTS: '3', WORKER_BATCH_SIZE: '50' };
    // The drill: events marked __poison always get a 503 (retryable: dead after 3 attempts).
    const w1 = await startWorker(db.url, { ...env, WORKER_ID: 'p1', LOOMTRACE_FAULTS: 'poison:5xx' });
    cleanups.push(() => w1.stop());
    await seed(db, 200, 1);
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const parentSpan = '1122334455667788';
    const poison = (
      await db.pool.query<{ id: string; block: string }>(
        `insert into loomtrace.outbox (projection, event_type, aggregate_type, aggregate_id, aggregate_version, attributes, traceparent, payload)
         values ('search', 'block.updated', 'block', gen_random_uuid()::text, 1, jsonb_build_object('loomtrace.library.id', $1::text), $3,
                 jsonb_build_object('book_id', $2::text, 'library_id', $1::text, 'block_type', 'text', 'content', 'poison', '__poison', true))
         returning id::text, aggregate_id block`,
        [LIB, BOOK, `00-${traceId}-${parentSpan}-01`],
      )
    ).rows[0]!;
    // And a payload the Postgres sink rejects deterministically: dead at once (non-retryable).
    const bad = (
      await db.pool.query<{ id: string; block: string }>(
        `insert into loomtrace.outbox (projection, event_type, aggregate_type, aggregate_id, aggregate_version, attributes, payload)
         values ('search', 'block.updated', 'block', gen_random_uuid()::text, 1, jsonb_build_object('loomtrace.library.id', $1::text), jsonb_build_object('book_id', $2::text, 'library_id', $1::text))
         returning id::text, aggregate_id block`,
        [LIB, BOOK],
      )
    ).rows[0]!;
    await until('200 done and 2 dead', 30_000, async () => {
      const c = await outboxCounts(db.pool);
      return c['done'] === 200 && c['dead'] === 2;
    });
    const dead = (
      await db.pool.query<{ id: string; attempts: number; last_reason: string }>("select id::text, attempts, last_reason from loomtrace.outbox where state = 'dead' order by id")
    ).rows;
    assert.deepEqual(dead, [
      { id: poison.id, attempts: 3, last_reason: 'http_5xx' },
      { id: bad.id, attempts: 1, last_reason: 'bad_payload' },
    ]);
    const history = (await db.pool.query<{ outcome: string }>('select outcome from loomtrace.outbox_attempts where event_id = $1 order by attempt', [poison.id])).rows;
    assert.deepEqual(history.map((h) => h.outcome), ['retry', 'retry', 'dead']);
    const others = (await db.pool.query<{ m: number }>("select max(attempts)::int m from loomtrace.outbox where state = 'done'")).rows[0]!.m;
    assert.equal(others, 1, 'the rest flowed on their first attempt');

    // The CLI: list, dry run, precise errors; nothing changes until a real replay.
    const list = await cli(db.url, ['replay', 'list', '--json']);
    assert.equal(list.code, 0, list.err);
    // Oldest dead first: the bad payload died at once, the poison after its third attempt.
    assert.deepEqual((JSON.parse(list.out) as { events: { id: string }[] }).events.map((e) => e.id), [bad.id, poison.id]);
    const dry = await cli(db.url, ['replay', '--dry-run', '--reason', 'http_5xx', '--json']);
    assert.deepEqual((JSON.parse(dry.out) as { events: { id: string }[] }).events.map((e) => e.id), [poison.id]);
    const old = await cli(db.url, ['replay', 'list', '--older-than', '1h', '--json']);
    assert.deepEqual((JSON.parse(old.out) as { events: unknown[] }).events, []);
    const noWhy = await cli(db.url, ['replay', '--reason', 'http_5xx']);
    assert.equal(noWhy.code, 2);
    assert.match(noWhy.err, /needs --why/);
    assert.equal((await outboxCounts(db.pool))['dead'], 2, 'listing and dry runs change nothing');

    // Fix the causes: the 503 drill ends (a worker without faults); an operator repairs the payload.
    await w1.stop();
    const w2 = await startWorker(db.url, { ...env, WORKER_ID: 'p2' });
    cleanups.push(() => w2.stop());
    await db.pool.query(`update loomtrace.outbox set payload = payload || '{"content": "repaired", "block_type": "text"}' where id = $1`, [bad.id]);

    const r1 = await cli(db.url, ['replay', '--reason', 'http_5xx', '--projection', 'search', '--by', 'ops-test', '--why', 'search cluster back', '--json']);
    assert.equal(r1.code, 0, r1.err);
    assert.deepEqual(JSON.parse(r1.out).replayed, [poison.id]);
    const r2 = await cli(db.url, ['replay', '--id', bad.id, '--by', 'ops-test', '--why', 'payload repaired']);
    assert.equal(r2.code, 0, r2.err);
    assert.match(r2.out, /replayed 1 event/);
    await until('both replayed events done', 20_000, async () => (await outboxCounts(db.pool))['done'] === 202);
    const again = await cli(db.url, ['replay', '--why', 'again', '--json']);
    assert.deepEqual(JSON.parse(again.out).replayed, [], 'nothing left to replay');

    // In once: one write each, on the first replayed attempt.
    for (const e of [poison, bad]) {
      const o = (await db.pool.query('select state, attempts, replays from loomtrace.outbox where id = $1', [e.id])).rows[0];
      assert.deepEqual(o, { state: 'done', attempts: 1, replays: 1 });
      const s = (await db.pool.query('select event_id::text, version::int from search.blocks where block_id = $1', [e.block])).rows;
      assert.deepEqual(s, [{ event_id: e.id, version: 1 }]);
    }
    const rec = (
      await db.pool.query(`select event_id::text, replayed_by, why, dead_reason, attempts_before from loomtrace.outbox_replays order by event_id`)
    ).rows;
    assert.deepEqual(rec, [
      { event_id: poison.id, replayed_by: 'ops-test', why: 'search cluster back', dead_reason: 'http_5xx', attempts_before: 3 },
      { event_id: bad.id, replayed_by: 'ops-test', why: 'payload repaired', dead_reason: 'bad_payload', attempts_before: 1 },
    ]);

    // The replayed attempt continues the original trace, marked replayed, linked to the dead attempt.
    const spans = await until("the poison event's four process spans", 20_000, async () => {
      const s = otlp.spans.filter((x) => x.name === 'process search' && x.attributes['messaging.message.id'] === poison.id);
      return s.length === 4 ? s : undefined;
    });
    assert.ok(spans.every((s) => s.traceId === traceId && s.parentSpanId === parentSpan), 'every attempt, the replay included, is in the original trace');
    const deadSpan = spans.find((s) => s.attributes['loomtrace.outcome'] === 'dead')!;
    assert.equal(deadSpan.status.code, 2, 'the dead-lettered attempt is marked failed');
    const replayed = spans.find((s) => s.attributes['loomtrace.replayed'] === true)!;
    assert.ok(replayed);
    assert.equal(replayed.attributes['loomtrace.outcome'], 'done');
    const link = replayed.links.find((l) => l.attributes['loomtrace.link'] === 'previous_attempt');
    assert.equal(link?.spanId, deadSpan.spanId, 'the replay links to the dead-lettered attempt');
  });
});
