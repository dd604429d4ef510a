import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { startApi, type Proc } from './support/procs.js';
import { otlpEnv, startOtlpJsonReceiver } from './support/otlp.js';
import { until } from './support/wait.js';

/**
 * What a PATCH's trace holds once tracing is made cheaper (decision record 0009): the API as a
 * real process, its SDK spans on the fast OTLP path, BEGIN/COMMIT not traced as spans of their
 * own, the COMMIT's duration on the transaction span; the UPDATE and the outbox INSERT still
 * pg spans inside it.
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

  it('SERVER, db transaction (with commit_ms), UPDATE and INSERT, send search; no BEGIN or COMMIT span', async () => {
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
    const commitMs = tx.attributes['loomtrace.db.commit_ms'];
    assert.equal(typeof commitMs, 'number');
    assert.ok((commitMs as number) >= 0 && (commitMs as number) < 10_000);
    const inTx = spans.filter((s) => s.parentSpanId === tx.spanId);
    assert.ok(inTx.some((s) => /update/i.test(s.name) && s.kind === 3), `UPDATE pg span: ${names.join(', ')}`);
    const send = one((n) => n === 'send search', 'producer');
    assert.equal(send.parentSpanId, tx.spanId);
    // The outbox INSERT runs inside the producer span (src/outbox/enqueue.ts).
    assert.ok(spans.some((s) => (s.parentSpanId === tx.spanId || s.parentSpanId === send.spanId) && /insert/i.test(s.name) && s.kind === 3), `INSERT pg span: ${names.join(', ')}`);
    assert.ok(!spans.some((s) => /^(begin|commit|rollback)\b/i.test(s.name)), `no BEGIN/COMMIT spans: ${names.join(', ')}`);
    assert.equal(spans.length, 5, names.join(', '));
  });
});
