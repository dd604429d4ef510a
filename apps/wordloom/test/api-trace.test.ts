import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { startApi, type Proc } from './support/procs.js';
import { otlpEnv, startOtlpJsonReceiver } from './support/otlp.js';
import { until } from './support/wait.js';

/**
 * What a PATCH's trace holds (decision records 0009 and 0012): the API as a real process, its
 * SDK spans on the fast OTLP path; the change and its outbox event are one statement, so the
 * transaction span holds one pg span (the UPDATE, which also inserts the event) and the
 * `send search` PRODUCER span whose context the row stores; no BEGIN/COMMIT spans.
 */
describe('the API trace of one PATCH', () => {
  let db: TestDatabase;
  let api: Proc & { url: string };
  let otlp: Awaited<ReturnType<typeof startOtlpJsonReceiver>>;

  before(async () => {
    db = await freshDatabase('api_trace');
    otlp = await startOtlpJsonReceiver();
    api = await startApi(db.url, otlpEnv(otlp.url, 'wordloom-api'));
  });
  after(async () => {
    await api?.stop();
    await otlp?.close();
    await db?.drop();
  });

  const post = async (path: string, body: unknown) => {
    const r = await fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    assert.equal(r.status, 201);
    return (await r.json()) as Record<string, any>;
  };

  it('SERVER, db transaction, the one-statement UPDATE (a pg span) and send search beside it; the row holds send search\'s context', async () => {
    const lib = await post('/api/v1/libraries', { name: 't' });
    const book = await post('/api/v1/books', { library_id: lib.id, title: 'b' });
    const block = await post('/api/v1/blocks', { book_id: book.id, block_type: 'text', content: 'one' });
    const traceId = 'b1b2c3d4e5f60718293a4b5c6d7e8f90';
    const r = await fetch(`${api.url}/api/v1/blocks/${block.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-2222222222222222-01`, 'x-request-id': 'req-api-trace' },
      body: JSON.stringify({ content: 'two' }),
    });
    assert.equal(r.status, 200);
    const spans = await until('the PATCH spans', 10_000, async () => {
      const t = otlp.spans.filter((s) => s.traceId === traceId);
      return t.some((s) => s.name.startsWith('PATCH')) && t.some((s) => s.name === 'send search') ? t : undefined;
    });
    const names = spans.map((s) => s.name);
    const one = (pred: (n: string) => boolean, what: string) => {
      const f = spans.filter((s) => pred(s.name));
      assert.equal(f.length, 1, `one ${what}: ${names.join(', ')}`);
      return f[0]!;
    };
    const server = one((n) => n === 'PATCH /api/v1/blocks/:id', 'server span');
    assert.equal(server.kind, 2);
    assert.equal(server.attributes['http.route'] ?? '/api/v1/blocks/:id', '/api/v1/blocks/:id');
    assert.equal(server.attributes['loomtrace.request.id'], 'req-api-trace');
    assert.equal(server.attributes['loomtrace.block.id'], block.id);
    const tx = one((n) => n === 'db transaction', 'db transaction');
    assert.equal(tx.parentSpanId, server.spanId);
    assert.equal(tx.attributes['loomtrace.block.id'], block.id);
    // The change and its event are one statement (decision record 0012): one pg span, a CLIENT
    // child of the transaction span, named after the UPDATE.
    const update = one((n) => n.startsWith('pg.query:'), 'pg span');
    assert.match(update.name, /^pg\.query:wordloom_update_block\b/);
    assert.equal(update.kind, 3);
    assert.equal(update.parentSpanId, tx.spanId);
    const send = one((n) => n === 'send search', 'producer');
    assert.equal(send.kind, 4);
    assert.equal(send.parentSpanId, tx.spanId);
    assert.equal(send.attributes['messaging.destination.name'], 'search');
    assert.equal(send.attributes['loomtrace.aggregate.id'], block.id);
    assert.equal(send.attributes['loomtrace.aggregate.version'], 2);
    assert.equal(send.attributes['loomtrace.block.id'], block.id);
    assert.equal(send.attributes['loomtrace.library.id'], lib.id);
    assert.equal(send.attributes['loomtrace.request.id'], 'req-api-trace');
    const { rows } = await db.pool.query<{ id: string; traceparent: string }>(
      "select id::text, traceparent from loomtrace.outbox where aggregate_id = $1 and event_type = 'block.updated'",
      [block.id],
    );
    assert.equal(rows.length, 1);
    assert.equal(send.attributes['messaging.message.id'], rows[0]!.id);
    assert.equal(rows[0]!.traceparent, `00-${traceId}-${send.spanId}-01`, 'the row stores the producer span\'s context');
    assert.ok(!spans.some((s) => /^(begin|commit|rollback)\b/i.test(s.name)), `no BEGIN/COMMIT spans: ${names.join(', ')}`);
    assert.equal(spans.length, 4, names.join(', '));
  });

  it('a version conflict exports no send span and stores no event', async () => {
    const lib = await post('/api/v1/libraries', { name: 't2' });
    const book = await post('/api/v1/books', { library_id: lib.id, title: 'b' });
    const block = await post('/api/v1/blocks', { book_id: book.id, block_type: 'text', content: 'one' });
    const traceId = 'c1b2c3d4e5f60718293a4b5c6d7e8f91';
    const r = await fetch(`${api.url}/api/v1/blocks/${block.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-2222222222222222-01` },
      body: JSON.stringify({ content: 'two', expected_version: 7 }),
    });
    assert.equal(r.status, 409);
    const spans = await until('the 409 PATCH spans', 10_000, async () => {
      const t = otlp.spans.filter((s) => s.traceId === traceId);
      return t.some((s) => s.name.startsWith('PATCH')) ? t : undefined;
    });
    assert.ok(spans.some((s) => s.name === 'db transaction'));
    assert.ok(!spans.some((s) => s.name === 'send search'), spans.map((s) => s.name).join(', '));
    const { rows } = await db.pool.query("select 1 from loomtrace.outbox where aggregate_id = $1 and event_type = 'block.updated'", [block.id]);
    assert.equal(rows.length, 0);
  });
});
