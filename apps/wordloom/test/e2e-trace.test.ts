import { assertTraceShape } from '@loomtrace/explorer';
import { BLOCK_TRACE_SHAPE } from '../src/traceShape.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { startApi, startWorker, type Proc } from './support/procs.js';
import { otlpEnv, startOtlpJsonReceiver, type ReceivedSpan } from './support/otlp.js';
import { until } from './support/wait.js';

/**
 * The slice end to end: the API and the worker as two real processes on a real Postgres,
 * exporting with the stock OTLP exporter to a receiver, as any backend would get the spans.
 */
describe('one change, one trace, across processes', () => {
  let db: TestDatabase;
  let api: Proc & { url: string };
  let worker: Proc;
  let otlp: Awaited<ReturnType<typeof startOtlpJsonReceiver>>;

  before(async () => {
    db = await freshDatabase('e2e');
    otlp = await startOtlpJsonReceiver();
    api = await startApi(db.url, otlpEnv(otlp.url, 'wordloom-api'));
    worker = await startWorker(db.url, { ...otlpEnv(otlp.url, 'wordloom-worker'), WORKER_ID: 'w-e2e' });
  });
  after(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    await otlp?.close();
    await db?.drop();
  });

  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const r = await fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
    assert.equal(r.status, 201, `${path}: ${await r.clone().text()}`);
    return (await r.json()) as Record<string, any>;
  };

  it('PATCH → transaction + outbox → worker → search, one trace id, worker under the request', async () => {
    const lib = await post('/api/v1/libraries', { name: 'e2e' });
    const book = await post('/api/v1/books', { library_id: lib.id, title: 'b' });
    const block = await post('/api/v1/blocks', { book_id: book.id, block_type: 'text', content: 'first words' });

    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const r = await fetch(`${api.url}/api/v1/blocks/${block.id}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-1111111111111111-01`, 'x-request-id': 'req-e2e-1' },
      body: JSON.stringify({ content: 'zebra crossing' }),
    });
    assert.equal(r.status, 200);
    assert.equal(((await r.json()) as any).version, 2);
    assert.equal(r.headers.get('x-request-id'), 'req-e2e-1');

    // Search finds the new content (through the worker and the projection).
    const hits = await until('search hit', 15_000, async () => {
      const s = (await (await fetch(`${api.url}/api/v1/search?q=zebra&library_id=${lib.id}`)).json()) as any;
      return s.hits.length ? s.hits : undefined;
    });
    assert.equal(hits[0].block_id, block.id);
    assert.equal(hits[0].version, 2);

    // Every span of the PATCH's trace, from both processes.
    const spans = await until('worker spans', 15_000, async () => {
      const t = otlp.spans.filter((s) => s.traceId === traceId);
      return t.some((s) => s.name === 'ack search') && t.some((s) => s.name === 'process search' && s.attributes['loomtrace.ack.rows_affected'] !== undefined) ? t : undefined;
    });
    // The declared shape (src/traceShape.ts, what `loomtrace check` holds a trace to) in one line;
    // the checks below add what a shape cannot say (values, links, no user content).
    assertTraceShape(spans as unknown as Record<string, unknown>[], BLOCK_TRACE_SHAPE);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const one = (name: string, service?: string) => {
      const found = spans.filter((s) => s.name === name && (!service || s.service === service));
      assert.equal(found.length, 1, `exactly one ${name} span in the trace; got ${spans.map((s) => s.name).join(', ')}`);
      return found[0]!;
    };
    const server = one('PATCH /api/v1/blocks/:id', 'wordloom-api');
    assert.equal(server.kind, 2, 'SERVER');
    assert.equal(server.parentSpanId, '1111111111111111', 'continues the caller\'s trace');
    assert.equal(server.attributes['loomtrace.block.id'], block.id);
    assert.equal(server.attributes['loomtrace.library.id'], lib.id);
    assert.equal(server.attributes['loomtrace.request.id'], 'req-e2e-1');

    const tx = one('db transaction', 'wordloom-api');
    const send = one('send search', 'wordloom-api');
    assert.equal(send.kind, 4, 'PRODUCER');
    assert.equal(byId.get(send.parentSpanId)?.name, 'db transaction');
    assert.equal(send.attributes['messaging.destination.name'], 'search');
    const eventId = send.attributes['messaging.message.id'];
    assert.ok(eventId, 'the producer span names the event id');
    assert.ok(spans.some((s) => s.parentSpanId === tx.spanId && /update/i.test(s.name) && s.service === 'wordloom-api'), 'the UPDATE from the pg instrumentation sits in the transaction');

    const proc = one('process search', 'wordloom-worker');
    assert.equal(proc.kind, 5, 'CONSUMER');
    assert.equal(proc.parentSpanId, send.spanId, 'the worker continues from the context stored in the row');
    // Walk up from the worker's span: it descends from the API request span.
    let cur: ReceivedSpan | undefined = proc;
    const chain: string[] = [];
    while (cur) {
      chain.push(cur.name);
      cur = byId.get(cur.parentSpanId);
    }
    assert.ok(chain.includes('PATCH /api/v1/blocks/:id'), `process span descends from the request: ${chain.join(' <- ')}`);

    for (const [k, v] of Object.entries({
      'messaging.message.id': eventId,
      'messaging.operation.type': 'process',
      'loomtrace.projection': 'search',
      'loomtrace.block.id': block.id,
      'loomtrace.library.id': lib.id,
      'loomtrace.request.id': 'req-e2e-1',
      'loomtrace.attempt': 1,
      'loomtrace.lease.owner': 'w-e2e',
      'loomtrace.ack.rows_affected': 1,
      'loomtrace.outcome': 'done',
      'loomtrace.reclaimed': false,
    })) assert.equal(proc.attributes[k], v, k);
    assert.equal(typeof proc.attributes['loomtrace.queue_wait_ms'], 'number');

    const children = spans.filter((s) => s.parentSpanId === proc.spanId).map((s) => s.name).sort();
    assert.deepEqual(children, ['ack search', 'claim search', 'write search']);
    const ack = one('ack search', 'wordloom-worker');
    assert.equal(ack.attributes['loomtrace.ack.rows_affected'], 1);
    const write = one('write search', 'wordloom-worker');
    assert.equal(write.attributes['loomtrace.write.result'], 'written');

    // The queue wait is its own span, from commit to claim, under the producer's context.
    const wait = one('queue wait search', 'wordloom-worker');
    assert.equal(wait.parentSpanId, send.spanId);
    assert.ok(wait.endNs >= wait.startNs);
    assert.equal(wait.attributes['loomtrace.queue_wait.source'], 'commit_timestamp');

    // The batch exists once, in its own trace, and the event's span links to it.
    const link = proc.links.find((l) => l.attributes['loomtrace.link'] === 'batch');
    assert.ok(link, 'process span links to its batch');
    assert.ok(otlp.spans.some((s) => s.spanId === link.spanId && s.name === 'batch search'));

    // No block text anywhere in any span.
    const leaks = otlp.spans.filter((s) => JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)).match(/zebra|first words/));
    assert.deepEqual(leaks.map((s) => s.name), [], `user content never reaches a span: ${JSON.stringify(leaks.map((s) => s.attributes))}`);
  });

  it('a malformed traceparent starts a new trace, and the worker still joins it', async () => {
    const lib = await post('/api/v1/libraries', { name: 'e2e-2' });
    const book = await post('/api/v1/books', { library_id: lib.id, title: 'b' });
    const block = await post('/api/v1/blocks', { book_id: book.id, block_type: 'text', content: 'x' }, { traceparent: 'garbage-not-a-traceparent' });
    const server = await until('server span', 15_000, async () =>
      otlp.spans.find((s) => s.name === 'POST /api/v1/blocks' && s.attributes['loomtrace.block.id'] === block.id),
    );
    assert.equal(server.parentSpanId, '', 'a fresh root span');
    assert.match(server.traceId, /^[0-9a-f]{32}$/);
    const proc = await until('worker span', 15_000, async () =>
      otlp.spans.find((s) => s.name === 'process search' && s.attributes['loomtrace.block.id'] === block.id && s.attributes['loomtrace.outcome']),
    );
    assert.equal(proc.traceId, server.traceId);
  });

  it('logs are JSON lines with trace_id and span_id, and carry no block text', async () => {
    const withTrace = api.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => typeof l['trace_id'] === 'string');
    assert.ok(withTrace.length > 0, 'some API log lines carry a trace id');
    assert.match(String(withTrace[0]!['span_id']), /^[0-9a-f]{16}$/);
    assert.deepEqual([...api.lines, ...worker.lines].filter((l) => l.includes('zebra')), [], 'no block text in logs');
  });
});
