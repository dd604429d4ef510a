/**
 * "Why is this block not in search?" against a real pipeline state: an indexed block (a real
 * worker wrote it), a retrying one, a dead-lettered one, a queued one, and the two bugs the
 * diagnosis must name. Outbox states beyond the happy path are set by SQL. Also the replay,
 * health, and the CLI commands (`why`, `events`, `trace`) as real processes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { runCli, type RunResult } from './support/procs.js';
import { compileExplorerOptions } from '@loomtrace/explorer';
import { startExplorer, type RunningExplorer } from '@loomtrace/explorer';
import { wordloomPipelines } from '../src/pipeline.js';
import type { Diagnosis } from '@loomtrace/explorer';
import { createBlock, patchBlock } from '../src/service/blocks.js';
import { insertLibrary } from '../src/service/sql/insertLibrary.js';
import { insertBook } from '../src/service/sql/insertBook.js';
import { OutboxWorker } from '@loomtrace/outbox';
import { PostgresSearchSink } from '../src/projection/postgres/sink.js';
import { SEARCH_PROJECTION } from '../src/service/model.js';

let db: TestDatabase;
let ex: RunningExplorer;
let bookId: string;

before(async () => {
  db = await freshDatabase('explorer_diagnosis');
  ex = await startExplorer(db.pool, compileExplorerOptions({ port: 0, otlpPort: 0 }), undefined, { pipelines: wordloomPipelines(db.pool).pipelines });
  const lib = await insertLibrary(db.pool, 'diagnosis');
  bookId = (await insertBook(db.pool, lib.id, 'book'))!.id;
});
after(async () => {
  await ex?.close();
  await db?.drop();
});

async function newBlock(): Promise<string> {
  const b = await createBlock(db.pool, 'req-diag', { bookId, blockType: 'text', content: 'private text', position: 0 });
  return b!.id;
}
async function eventOf(blockId: string): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>('select id::text from loomtrace.outbox where aggregate_id = $1 order by id desc limit 1', [blockId]);
  return rows[0]!.id;
}
async function diagnose(blockId: string): Promise<Diagnosis> {
  const r = await fetch(`${ex.uiUrl}/api/diagnosis/block/${blockId}`);
  assert.equal(r.status, 200);
  return (await r.json()) as Diagnosis;
}
const stepStatus = (d: Diagnosis) => Object.fromEntries(d.steps.map((s) => [s.step, s.status]));

function cli(args: string[]): Promise<RunResult> {
  return runCli(args, { DATABASE_URL: db.url }, 20_000);
}

let indexed: string;
let retrying: string;
let dead: string;
let queued: string;
let acknowledgedBehind: string;
let bypassed: string;

describe('block diagnosis', () => {
  test('an indexed block: every step done, verdict "in search"', async () => {
    indexed = await newBlock();
    const worker = new OutboxWorker({ pool: db.pool, projection: SEARCH_PROJECTION, sink: new PostgresSearchSink(db.pool), pollIntervalMs: 20, listen: false });
    await worker.start();
    try {
      const until = Date.now() + 15_000;
      for (;;) {
        const { rows } = await db.pool.query<{ state: string }>('select state from loomtrace.outbox where aggregate_id = $1', [indexed]);
        if (rows[0]?.state === 'done') break;
        assert.ok(Date.now() < until, 'the worker acks the event');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await worker.stop();
    }
    const d = await diagnose(indexed);
    assert.equal(d.kind, 'visible');
    assert.match(d.verdict, /in search at version 1/);
    assert.deepEqual(stepStatus(d), { source_updated: 'done', outbox_inserted: 'done', claimed: 'done', written: 'done', acked: 'done', visible: 'done' });
    assert.ok(d.steps.every((s) => s.at !== null), 'every step has a time');
    assert.equal(d.trace, null, 'no trace context was stored (no SDK in this process)');
  });

  test('a retrying block: attempt k, last reason, next try', async () => {
    retrying = await newBlock();
    const id = await eventOf(retrying);
    await db.pool.query(
      `update loomtrace.outbox set state = 'pending', attempts = 2, last_reason = 'http_429', last_error = 'bulk item 429',
              last_delay_ms = 800, run_at = clock_timestamp() + interval '30 seconds', claimed_at = clock_timestamp() - interval '1 second',
              previous_owner = 'worker-a' where id = $1`,
      [id],
    );
    await db.pool.query(
      `insert into loomtrace.outbox_attempts (event_id, attempt, lease_owner, claimed_at, finished_at, outcome, reason, error, delay_ms)
       select id, a, owner, enqueued_at + make_interval(secs => a * 0.01), enqueued_at + make_interval(secs => a * 0.01 + 0.005),
              'retry', 'http_429', 'bulk item 429', 400 * a
         from loomtrace.outbox, (values (1, 'worker-a'), (2, 'worker-b')) as v(a, owner)
        where id = $1`,
      [id],
    );
    const d = await diagnose(retrying);
    assert.equal(d.kind, 'retrying');
    assert.match(d.verdict, /^Retrying: attempt 2 failed with http_429; next try at .* \(in \d+ s\)\.$/);
    assert.deepEqual(stepStatus(d), { source_updated: 'done', outbox_inserted: 'done', claimed: 'done', written: 'failed', acked: 'pending', visible: 'pending' });
    assert.deepEqual(d.attempts.map((a) => [a.attempt, a.owner, a.reason]), [[1, 'worker-a', 'http_429'], [2, 'worker-b', 'http_429']]);
  });

  test('a dead-lettered block: the reason', async () => {
    dead = await newBlock();
    const id = await eventOf(dead);
    await db.pool.query(
      `update loomtrace.outbox set state = 'dead', attempts = 3, last_reason = 'http_400', last_error = 'mapper_parsing_exception',
              dead_at = clock_timestamp(), claimed_at = clock_timestamp() where id = $1`,
      [id],
    );
    const d = await diagnose(dead);
    assert.equal(d.kind, 'dead');
    assert.match(d.verdict, /^Dead-lettered after 3 attempt\(s\): http_400 \(mapper_parsing_exception\)/);
    assert.equal(stepStatus(d)['acked'], 'failed');
    assert.equal(stepStatus(d)['visible'], 'pending');
  });

  test('a queued block, and the two bugs: acked but index behind, a change without an outbox event', async () => {
    queued = await newBlock();
    const q = await diagnose(queued);
    assert.equal(q.kind, 'queued');
    assert.match(q.verdict, /^Still queued for .*: \d+ event\(s\) ahead, queue depth \d+, /);
    assert.equal(stepStatus(q)['claimed'], 'pending');

    acknowledgedBehind = await newBlock();
    await db.pool.query(`update loomtrace.outbox set state = 'done', attempts = 1, done_at = clock_timestamp(), claimed_at = clock_timestamp() where id = $1`, [await eventOf(acknowledgedBehind)]);
    const b = await diagnose(acknowledgedBehind);
    assert.equal(b.kind, 'bug_index_behind');
    assert.match(b.verdict, /^Bug: event \d+ was acked .* but search has no row for the block/);

    // The indexed block changes without its outbox event (a write that bypassed the library).
    bypassed = indexed;
    await db.pool.query('update wordloom.blocks set version = version + 1 where id = $1', [bypassed]);
    const n = await diagnose(bypassed);
    assert.equal(n.kind, 'bug_no_event');
    assert.match(n.verdict, /no outbox event was written for that change \(search holds version 1\)/);
    // Asked about the old version, it is fine: version 1 is in search.
    const old = (await (await fetch(`${ex.uiUrl}/api/diagnosis/block/${bypassed}?version=1`)).json()) as Diagnosis;
    assert.equal(old.kind, 'visible');
    // A proper change through the service brings back a normal verdict (queued).
    await patchBlock(db.pool, 'req-2', bypassed, { content: 'new private text' });
    assert.equal((await diagnose(bypassed)).kind, 'queued');
    const older = (await (await fetch(`${ex.uiUrl}/api/diagnosis/block/${bypassed}?version=1`)).json()) as Diagnosis;
    assert.equal(older.kind, 'visible');

    const unknown = await diagnose('00000000-0000-4000-8000-000000000000');
    assert.equal(unknown.kind, 'unknown_aggregate');
    assert.equal((await fetch(`${ex.uiUrl}/api/diagnosis/block/not-a-uuid`)).status, 400);
  });

  test('the trace is linked when the outbox row carries a context and spans were stored', async () => {
    const traceId = 'ab'.repeat(16);
    const id = await eventOf(retrying);
    await db.pool.query(`update loomtrace.outbox set traceparent = $2 where id = $1`, [id, `00-${traceId}-${'cd'.repeat(8)}-01`]);
    const before = await diagnose(retrying);
    assert.deepEqual(before.trace, { traceId, sampled: true, storedSpans: 0 });
    const now = BigInt(Date.now()) * 1_000_000n;
    const span = (spanId: string, name: string, parent: string | undefined, attrs: Record<string, unknown>, kind: number) => ({
      traceId,
      spanId,
      ...(parent ? { parentSpanId: parent } : {}),
      name,
      kind,
      startTimeUnixNano: String(now),
      endTimeUnixNano: String(now + 2_000_000n),
      attributes: Object.entries(attrs).map(([key, v]) => ({ key, value: typeof v === 'number' ? { intValue: v } : { stringValue: String(v) } })),
    });
    const body = {
      resourceSpans: [
        { resource: { attributes: [{ key: 'service.name', value: { stringValue: 'wordloom-api' } }] }, scopeSpans: [{ spans: [span('cd'.repeat(8), 'send search', undefined, { 'loomtrace.block.id': retrying }, 4)] }] },
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'wordloom-worker' } }] },
          scopeSpans: [{ spans: [
            span('01'.repeat(8), 'process search', 'cd'.repeat(8), { 'messaging.message.id': id, 'loomtrace.attempt': 2, 'loomtrace.lease.owner': 'worker-b' }, 5),
            span('02'.repeat(8), 'write search', '01'.repeat(8), { 'loomtrace.write.result': 'failed' }, 3),
          ] }],
        },
      ],
    };
    const r = await fetch(`${ex.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, 200);
    const d = await diagnose(retrying);
    assert.deepEqual(d.trace, { traceId, sampled: true, storedSpans: 3 });

    // The replay of that event: enqueue, two failed attempts, the next try; attempt 2 linked to its span.
    const rep = (await (await fetch(`${ex.uiUrl}/api/events/${id}`)).json()) as { traceId: string; timeline: { what: string; attempt: number | null; spanId: string | null; reason: string | null }[] };
    assert.equal(rep.traceId, traceId);
    assert.deepEqual(rep.timeline.map((t) => t.what), ['enqueued', 'claimed', 'retry', 'claimed', 'retry', 'pending']);
    assert.equal(rep.timeline.find((t) => t.what === 'retry' && t.attempt === 2)?.spanId, '01'.repeat(8));
    assert.equal((await fetch(`${ex.uiUrl}/api/events/999999`)).status, 404);
  });

  test('events list, health, and the CLI: why / events --dead / trace, with --json', async () => {
    const deadList = (await (await fetch(`${ex.uiUrl}/api/events?state=dead`)).json()) as { events: { aggregateId: string; lastReason: string }[] };
    assert.deepEqual(deadList.events.map((e) => [e.aggregateId, e.lastReason]), [[dead, 'http_400']]);
    const h = (await (await fetch(`${ex.uiUrl}/api/health?minutes=5`)).json()) as { now: { dead: number; pending: number; done: number; queueDepth: number }; series: { done: number; retries: number; queueDepth: number }[] };
    assert.equal(h.now.dead, 1);
    assert.equal(h.now.done, 2);
    assert.equal(h.series.length, 5);
    assert.equal(h.series.reduce((n, b) => n + b.retries, 0), 2);
    assert.equal(h.series.reduce((n, b) => n + b.done, 0), 2);
    // The last minute's depth is the queue now (pending + claimed).
    assert.equal(h.series[h.series.length - 1]!.queueDepth, h.now.queueDepth);
    assert.ok(h.now.queueDepth >= 3, `queued, retrying and the patched block are unfinished (${h.now.queueDepth})`);

    const why = await cli(['why', 'block', dead, '--json']);
    assert.equal(why.code, 1, why.err);
    assert.equal((JSON.parse(why.out) as Diagnosis).kind, 'dead');
    const whyText = await cli(['why', 'block', retrying]);
    assert.match(whyText.out, /Retrying: attempt 2 failed with http_429/);
    assert.match(whyText.out, /✘ written to the index/);
    const ev = await cli(['events', '--dead', '--json']);
    assert.equal(ev.code, 0, ev.err);
    assert.deepEqual((JSON.parse(ev.out) as { events: { aggregateId: string }[] }).events.map((e) => e.aggregateId), [dead]);
    const tr = await cli(['trace', 'ab'.repeat(16)]);
    assert.equal(tr.code, 0, tr.err);
    assert.match(tr.out, /── attempt 2 · worker-b/);
    assert.match(tr.out, /process search \[wordloom-worker\]/);
    assert.equal((await cli(['why', 'block', 'nope'])).code, 2);
  });
});
