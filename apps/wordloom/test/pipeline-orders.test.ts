/**
 * A declared pipeline that is not Wordloom: orders (`shop.orders`) → order summaries (a
 * table), defined in test/support/orders.ts, written by a real OutboxWorker on a real
 * Postgres. The diagnosis, run from the declaration alone, gives the right verdict in each
 * state; the JSON API lists and answers it next to Wordloom's; the CLI a user builds with
 * `runCli` exits 0 when the projection holds the current version, 1 otherwise, 2 for bad usage.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OutboxWorker } from '@loomtrace/outbox';
import { compileExplorerOptions, startExplorer, type Diagnosis, type RunningExplorer } from '@loomtrace/explorer';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { runScript, type RunResult } from './support/procs.js';
import { until } from './support/wait.js';
import { cancelOrder, createOrdersSchema, ORDERS_PROJECTION, OrderSummarySink, ordersPipeline, saveOrder } from './support/orders.js';
import { wordloomPipelines } from '../src/pipeline.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let db: TestDatabase;
let ex: RunningExplorer;
let sink: OrderSummarySink;
let worker: OutboxWorker;

before(async () => {
  db = await freshDatabase('pipeline_orders');
  await createOrdersSchema(db.pool);
  sink = new OrderSummarySink(db.pool);
  ex = await startExplorer(db.pool, compileExplorerOptions({ port: 0, otlpPort: 0 }), undefined, { pipelines: [...wordloomPipelines(db.pool).pipelines, ordersPipeline(sink)] });
});
after(async () => {
  sink?.releaseHeld();
  await worker?.stop();
  await ex?.close();
  await db?.drop();
});

async function why(id: string, query = ''): Promise<Diagnosis> {
  const r = await fetch(`${ex.uiUrl}/api/diagnosis/order/${id}${query}`);
  assert.equal(r.status, 200, await r.clone().text());
  return (await r.json()) as Diagnosis;
}
const state = async (id: string, version?: number) =>
  (await db.pool.query<{ state: string; attempts: number }>(`select state, attempts from loomtrace.outbox_current where aggregate_id = $1 ${version ? `and aggregate_version = ${version}` : ''} order by id desc limit 1`, [id])).rows[0];
const steps = (d: Diagnosis) => Object.fromEntries(d.steps.map((s) => [s.step, s.status]));

function cli(args: string[]): Promise<RunResult> {
  return runScript(path.join(here, 'support', 'ordersCli.js'), args, { DATABASE_URL: db.url }, 20_000);
}

describe('orders → order summaries, a pipeline declared in a test', () => {
  test('a real worker: written, retrying, dead, in progress, superseded, cancelled and removed', { timeout: 60_000 }, async () => {
    for (const id of ['ord-ok', 'ord-retry', 'ord-dead', 'ord-held', 'ord-twice', 'ord-cancel']) await saveOrder(db.pool, id, 1_000);
    await saveOrder(db.pool, 'ord-twice', 2_000);
    await cancelOrder(db.pool, 'ord-cancel');
    sink.behaviour.set('ord-retry', 'retry').set('ord-dead', 'fail').set('ord-held', 'hold');
    worker = new OutboxWorker({ pool: db.pool, projection: ORDERS_PROJECTION, sink, pollIntervalMs: 20, listen: false, batchSize: 1, concurrency: 2, backoff: { baseMs: 120_000, maxMs: 600_000 }, workerId: 'orders-worker' });
    await worker.start();
    await until('every order reached its state', 20_000, async () => {
      const s = await Promise.all(['ord-ok', 'ord-retry', 'ord-dead', 'ord-held', 'ord-twice', 'ord-cancel'].map((id) => state(id)));
      return s[0]?.state === 'done' && s[1]?.state === 'pending' && s[1].attempts === 1 && s[2]?.state === 'dead' && s[3]?.state === 'claimed' && s[4]?.state === 'done' && s[5]?.state === 'done';
    });

    const ok = await why('ord-ok');
    assert.equal(ok.kind, 'visible');
    assert.match(ok.verdict, /^Order is in order summaries at version 1 \(shop\.order_summaries\), written \d+(\.\d)? (ms|s) after the change\.$/);
    assert.deepEqual(steps(ok), { source_updated: 'done', outbox_inserted: 'done', claimed: 'done', written: 'done', acked: 'done', visible: 'done' });
    assert.equal(ok.system, 'postgresql');
    assert.equal(ok.projected?.version, 1);

    const retry = await why('ord-retry');
    assert.equal(retry.kind, 'retrying');
    assert.match(retry.verdict, /^Retrying: attempt 1 failed with http_5xx; next try at .* \(in \d+(\.\d)? (s|min)\)\.$/);
    assert.equal(steps(retry)['written'], 'failed');
    assert.equal(retry.steps.find((s) => s.step === 'written')?.label, 'written to the summary table');

    const dead = await why('ord-dead');
    assert.equal(dead.kind, 'dead');
    assert.match(dead.verdict, /^Dead-lettered after 1 attempt\(s\): bad_payload \(order payload rejected\)/);

    const held = await why('ord-held');
    assert.equal(held.kind, 'in_progress');
    assert.match(held.verdict, /^Being processed: attempt 1 by orders-worker/);

    assert.equal((await why('ord-twice')).kind, 'visible');
    const old = await why('ord-twice', '?version=1');
    assert.equal(old.kind, 'superseded');
    assert.match(old.verdict, /^Version 1 was superseded: order summaries already holds version 2/);

    const cancelled = await why('ord-cancel');
    assert.equal(cancelled.kind, 'deleted_and_removed');
    assert.match(cancelled.verdict, /^The order was deleted \(version 2\) and order summaries removed it \(shop\.order_summaries\)/);

    sink.releaseHeld();
    await until('the held order written', 10_000, async () => (await state('ord-held'))?.state === 'done');
    await worker.stop();
  });

  test('queued, lease expired, and the two bugs, with the worker stopped', async () => {
    sink.releaseHeld();
    await worker.stop();
    await saveOrder(db.pool, 'ord-queued', 5);
    const q = await why('ord-queued');
    assert.equal(q.kind, 'queued');
    assert.match(q.verdict, /^Still queued for .*: 1 event\(s\) ahead, queue depth 2, no worker is connected\.$/, 'the retrying order waits ahead of it');

    await saveOrder(db.pool, 'ord-lease', 5);
    await db.pool.query(
      `update loomtrace.outbox set state = 'claimed', attempts = 1, lease_owner = 'gone-worker', claimed_at = clock_timestamp() - interval '2 minutes',
              lease_expires_at = clock_timestamp() - interval '1 minute' where aggregate_id = 'ord-lease'`,
    );
    const lease = await why('ord-lease');
    assert.equal(lease.kind, 'lease_expired');
    assert.match(lease.verdict, /^Attempt 1 by gone-worker holds an expired lease \(expired \d+ s ago\)/);

    await saveOrder(db.pool, 'ord-behind', 5);
    await db.pool.query(`update loomtrace.outbox set state = 'done', attempts = 1, done_at = clock_timestamp(), claimed_at = clock_timestamp() where aggregate_id = 'ord-behind'`);
    const behind = await why('ord-behind');
    assert.equal(behind.kind, 'bug_index_behind');
    assert.match(behind.verdict, /^Bug: event \d+ was acked at .* but order summaries has no row for the order, behind version 1\.$/);
    assert.equal(steps(behind)['visible'], 'failed');

    // A change that bypassed the outbox: the source moves to version 2, no event says so.
    await db.pool.query(`update shop.orders set version = version + 1 where id = 'ord-ok'`);
    const bypass = await why('ord-ok');
    assert.equal(bypass.kind, 'bug_no_event');
    assert.match(bypass.verdict, /^Bug: the order changed to version 2 but no outbox event was written for that change \(order summaries holds version 1\)\.$/);

    assert.equal((await why('ord-nope')).kind, 'unknown_aggregate');
  });

  test('the JSON API: declared pipelines, unknown types and projections, bad ids', async () => {
    const list = (await (await fetch(`${ex.uiUrl}/api/pipelines`)).json()) as { pipelines: { aggregateType: string; projection: string; system: string }[] };
    assert.deepEqual(list.pipelines.map((p) => [p.aggregateType, p.projection, p.system]), [['block', 'search', 'postgresql'], ['order', ORDERS_PROJECTION, 'postgresql']]);
    assert.equal((await why('ord-queued', `?projection=${ORDERS_PROJECTION}`)).kind, 'queued');
    const cases: [string, number, RegExp][] = [
      ['/api/diagnosis/invoice/inv-1', 404, /no pipeline is declared for aggregate type "invoice" \(declared: block → search, order → order-summaries\)/],
      ['/api/diagnosis/order/ord-ok?projection=mailer', 404, /aggregate type "order" has no projection "mailer"/],
      ['/api/diagnosis/order/NOT-AN-ORDER', 400, /not a valid order id/],
      ['/api/diagnosis/order/ord-ok?version=0', 400, /version must be a whole number/],
    ];
    for (const [url, status, message] of cases) {
      const r = await fetch(`${ex.uiUrl}${url}`);
      assert.equal(r.status, status, url);
      assert.match(((await r.json()) as { error: string }).error, message);
    }
  });

  test('the CLI a user builds with runCli: exit 0 when the projection holds the current version, 1 otherwise', async () => {
    const ok = await cli(['why', 'order', 'ord-twice']);
    assert.equal(ok.code, 0, ok.err);
    assert.match(ok.out, /^order ord-twice → order summaries \(postgresql\)/);
    assert.match(ok.out, /Order is in order summaries at version 2/);
    const queued = await cli(['why', 'order', 'ord-queued', '--json']);
    assert.equal(queued.code, 1, queued.err);
    assert.equal((JSON.parse(queued.out) as Diagnosis).kind, 'queued');
    assert.equal((await cli(['why', 'order', 'ord-twice', '--version', '1', '--projection', ORDERS_PROJECTION])).code, 0, 'superseded holds');
    assert.equal((await cli(['why', 'order', 'ord-behind'])).code, 1);
    const unknownType = await cli(['why', 'block', '00000000-0000-4000-8000-000000000000']);
    assert.equal(unknownType.code, 2);
    assert.match(unknownType.err, /no pipeline is declared for aggregate type "block" \(declared: order → order-summaries\)/);
    assert.equal((await cli(['why', 'order', 'BAD'])).code, 2);
    assert.equal((await cli(['why', 'order'])).code, 2);
    assert.equal((await cli(['why', 'order', 'ord-ok', '--version', 'x'])).code, 2);
  });
});
