/**
 * The Elasticsearch and OpenSearch sinks, each through its REAL official client, talking HTTP
 * to a local server that answers like a cluster does (recorded response shapes: `_bulk` with
 * HTTP 200 and `errors: true`, mixed item statuses; whole-request 429 with Retry-After). No
 * cluster can be installed here; docs/operations.md says which versions were verified live.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { freshDatabase } from './support/db.js';
import { enqueueMany } from '@loomtrace/outbox';
import { OutboxWorker } from '@loomtrace/outbox';
import { ProjectionError, classifyError } from '@loomtrace/outbox';
import type { OutboxEvent } from '@loomtrace/outbox';
import { elasticsearchClient, opensearchClient } from '../src/projection/elasticsearch/clients.js';
import { ClusterSearchSink, SEARCH_MAPPINGS } from '../src/projection/elasticsearch/sink.js';
import { rebuildSearch, sinkWriter } from '../src/cli/commands/rebuild.js';

interface Recorded {
  method: string;
  path: string;
  body: string;
}
type Reply = { status: number; headers?: Record<string, string>; body: unknown };

/** A fake cluster: records every request; `_bulk` answers come from `bulk(lines)`. */
async function fakeCluster(bulk: (actions: { action: string; meta: Record<string, unknown>; doc?: Record<string, unknown> }[]) => Reply) {
  const requests: Recorded[] = [];
  let indexExists = false;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '/').split('?')[0]!;
      requests.push({ method: req.method ?? '', path, body });
      const send = (r: Reply) => {
        res.writeHead(r.status, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch', ...r.headers });
        res.end(req.method === 'HEAD' ? undefined : JSON.stringify(r.body));
      };
      if (path === '/' ) return send({ status: 200, body: { name: 'fake', cluster_name: 'fake', version: { number: '9.1.0' }, tagline: 'You Know, for Search' } });
      if (path === '/_bulk') {
        const lines = body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>);
        const actions: { action: string; meta: Record<string, unknown>; doc?: Record<string, unknown> }[] = [];
        for (let i = 0; i < lines.length; i++) {
          const action = Object.keys(lines[i]!)[0]!;
          const a: { action: string; meta: Record<string, unknown>; doc?: Record<string, unknown> } = { action, meta: lines[i]![action]! };
          if (action === 'index') a.doc = lines[++i] as Record<string, unknown>;
          actions.push(a);
        }
        return send(bulk(actions));
      }
      if (req.method === 'HEAD') return send({ status: indexExists ? 200 : 404, body: {} });
      if (req.method === 'PUT') {
        indexExists = true;
        return send({ status: 200, body: { acknowledged: true, shards_acknowledged: true, index: path.slice(1) } });
      }
      send({ status: 404, body: { error: { type: 'not_found' }, status: 404 } });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** A bulk item as the cluster writes it. */
function item(action: string, meta: Record<string, unknown>, status: number): Record<string, unknown> {
  const base = { _index: meta['_index'], _id: meta['_id'], status };
  if (status === 201 || status === 200) return { [action]: { ...base, _version: meta['version'], result: action === 'delete' ? 'deleted' : 'created', _shards: { total: 2, successful: 1, failed: 0 }, _seq_no: 1, _primary_term: 1 } };
  if (status === 404 && action === 'delete') return { [action]: { ...base, _version: meta['version'], result: 'not_found' } };
  const errors: Record<number, { type: string; reason: string }> = {
    409: { type: 'version_conflict_engine_exception', reason: `[${String(meta['_id'])}]: version conflict, current version [3] is higher or equal to the one provided [${String(meta['version'])}]` },
    429: { type: 'es_rejected_execution_exception', reason: 'rejected execution of coordinating operation' },
    503: { type: 'unavailable_shards_exception', reason: '[wordloom-blocks][0] primary shard is not active' },
    400: { type: 'document_parsing_exception', reason: '[1:42] failed to parse field [version] of type [long]' },
  };
  return { [action]: { ...base, error: errors[status] ?? { type: 'exception', reason: 'x' } } };
}

const LIB = randomUUID();
// A real tracer provider, so the sink's and the worker's spans can be checked.
const spans = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
const BOOK = randomUUID();

for (const system of ['elasticsearch', 'opensearch'] as const) {
  test(`${system}: a bulk answer mixing 201, 409, 429, 503, 400 resends only the retryable items and settles the rest`, { timeout: 60_000 }, async (t) => {
    spans.reset();
    const db = await freshDatabase(`ops_es_${system}`);
    t.after(() => db.drop());
    const ids = Array.from({ length: 6 }, () => randomUUID());
    // Per block: the statuses the cluster answers, one per time it sees the block.
    const script = new Map<string, number[]>([
      [ids[0]!, [201]],
      [ids[1]!, [409]],
      [ids[2]!, [429, 201]],
      [ids[3]!, [503, 201]],
      [ids[4]!, [400]],
      [ids[5]!, [404]],
    ]);
    const cluster = await fakeCluster((actions) => {
      const items = actions.map((a) => item(a.action, a.meta, script.get(String(a.meta['_id']))!.shift() ?? 500));
      return { status: 200, body: { took: 3, errors: items.some((i) => Object.values(i)[0]!['status' as never] >= 300), items } };
    });
    t.after(() => cluster.close());
    const client = system === 'elasticsearch' ? elasticsearchClient({ url: cluster.url }) : opensearchClient({ url: cluster.url });
    const sink = new ClusterSearchSink(client, { index: 'wordloom-blocks' });
    t.after(() => sink.close());
    assert.equal(sink.system, system);

    const versions = [1, 3, 2, 1, 1, 4];
    await enqueueMany(
      db.pool,
      ids.map((id, i) => ({
        projection: 'search',
        eventType: i === 5 ? 'block.deleted' : 'block.updated',
        aggregateType: 'block',
        aggregateId: id,
        aggregateVersion: versions[i]!,
        attributes: { 'loomtrace.library.id': LIB },
        payload: { book_id: BOOK, library_id: LIB, block_type: 'text', content: `text ${i}` },
      })),
    );
    // One lane: two lanes starting together can split the six events between two claims
    // (SKIP LOCKED), and this test is about one bulk answer's items.
    const worker = new OutboxWorker({ pool: db.pool, projection: 'search', sink, listen: false, pollIntervalMs: 20, backoff: { baseMs: 20, maxMs: 50 }, random: () => 0.5, maxAttempts: 5, concurrency: 1 });
    await worker.start();
    t.after(() => worker.stop());
    const until = Date.now() + 20_000;
    for (;;) {
      const { rows } = await db.pool.query<{ n: number }>(`select count(*)::int as n from loomtrace.outbox where state in ('pending', 'claimed')`);
      if (rows[0]!.n === 0) break;
      assert.ok(Date.now() < until, 'the outbox drains');
      await new Promise((r) => setTimeout(r, 20));
    }
    await worker.stop();

    // The bulk request's own span follows the database conventions; each event's write span has its item's status.
    const finished = spans.getFinishedSpans();
    const bulkSpans = finished.filter((s) => s.name === 'write search' && s.attributes['loomtrace.write.result'] === undefined);
    assert.ok(bulkSpans.length >= 2, 'a span per bulk request');
    assert.deepEqual(
      { ...bulkSpans[0]!.attributes },
      { 'db.system.name': system, 'db.operation.name': 'bulk', 'db.operation.batch.size': 6, 'loomtrace.write.status_code': 200 },
    );
    const itemStatus = (id: string) =>
      finished
        .filter((s) => s.name === 'write search' && s.attributes['loomtrace.write.result'] !== undefined)
        .filter((s) => finished.some((p) => p.name === 'process search' && p.spanContext().spanId === s.parentSpanContext?.spanId && p.attributes['loomtrace.aggregate.id'] === id))
        .map((s) => s.attributes['loomtrace.write.status_code']);
    assert.deepEqual(itemStatus(ids[2]!), [429, 201]);
    assert.deepEqual(itemStatus(ids[4]!), [400]);
    spans.reset();

    const { rows } = await db.pool.query<{ aggregate_id: string; state: string; attempts: number; last_reason: string | null }>(
      'select aggregate_id, state, attempts, last_reason from loomtrace.outbox order by id',
    );
    assert.deepEqual(
      rows.map((r) => [r.state, r.attempts, r.state === 'dead' ? r.last_reason : null]),
      [
        ['done', 1, null], // 201 written
        ['done', 1, null], // 409: an older version than the cluster's: stale, which is success
        ['done', 2, null], // 429, then 201
        ['done', 2, null], // 503, then 201
        ['dead', 1, 'mapping'], // 400 document_parsing_exception: dead-lettered at once
        ['done', 1, null], // delete of a missing doc: the versioned tombstone is recorded
      ],
    );

    // The index was created once, with the explicit mapping and a long delete-tombstone window.
    const creates = cluster.requests.filter((r) => r.method === 'PUT');
    assert.equal(creates.length, 1);
    assert.equal(creates[0]!.path, '/wordloom-blocks');
    const created = JSON.parse(creates[0]!.body) as { mappings: unknown; settings: Record<string, unknown> };
    assert.deepEqual(created.mappings, SEARCH_MAPPINGS);
    assert.equal(created.settings['index.gc_deletes'], '1h');

    // Request bodies: external versioning on the aggregate version; only retryable items resent.
    const bulks = cluster.requests.filter((r) => r.path === '/_bulk').map((r) => r.body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>));
    const first = bulks[0]!;
    assert.equal(first.filter((l) => l['index'] || l['delete']).length, 6);
    for (let i = 0; i < 6; i++) {
      const action = first.find((l) => (l['index'] ?? l['delete'])?.['_id'] === ids[i])!;
      const meta = (action['index'] ?? action['delete'])!;
      assert.equal(meta['version_type'], 'external');
      assert.equal(meta['version'], versions[i]);
      assert.equal(meta['_index'], 'wordloom-blocks');
      assert.ok(i === 5 ? action['delete'] : action['index'], 'deletes are delete actions with the version');
    }
    const doc = first[first.findIndex((l) => l['index']?.['_id'] === ids[0]) + 1]!;
    assert.deepEqual(Object.keys(doc).sort(), ['block_id', 'block_type', 'book_id', 'content', 'library_id', 'version']);
    const resent = bulks.slice(1).flatMap((b) => b.filter((l) => l['index'] || l['delete']).map((l) => String((l['index'] ?? l['delete'])!['_id'])));
    assert.deepEqual(resent.sort(), [ids[2]!, ids[3]!].sort(), 'exactly the 429 and 503 items were sent again, once each');
  });

  test(`${system}: a whole-request 429 honours Retry-After; a 200 with a Retry-After header passes it to the retried items`, { timeout: 30_000 }, async (t) => {
    let mode: 'reject' | 'partial' = 'reject';
    const cluster = await fakeCluster((actions) =>
      mode === 'reject'
        ? { status: 429, headers: { 'retry-after': '7' }, body: { error: { type: 'es_rejected_execution_exception', reason: 'rejected' }, status: 429 } }
        : { status: 200, headers: { 'retry-after': '3' }, body: { took: 1, errors: true, items: actions.map((a, i) => item(a.action, a.meta, i === 0 ? 429 : 201)) } },
    );
    t.after(() => cluster.close());
    const client = system === 'elasticsearch' ? elasticsearchClient({ url: cluster.url }) : opensearchClient({ url: cluster.url });
    const sink = new ClusterSearchSink(client, { index: 'wordloom-blocks' });
    t.after(() => sink.close());
    const ev = (i: number): OutboxEvent => ({
      id: String(i + 1), projection: 'search', eventType: 'block.updated', aggregateType: 'block', aggregateId: randomUUID(), aggregateVersion: 1,
      attributes: { 'loomtrace.library.id': LIB }, requestId: null, traceparent: null, tracestate: null, payload: { book_id: BOOK, library_id: LIB, block_type: 'text', content: 'x' },
      attempt: 1, previousOwner: null, previousToken: null, reclaimed: false, previousLeaseMs: null, lastReason: null, lastDelayMs: null, lastAttemptSpan: null,
      readyAtMs: Date.now(), readySource: 'insert_time', claimedAtMs: Date.now(),
    });
    const events = [ev(0), ev(1)];
    const err = await sink.write(events, new AbortController().signal).then(
      () => assert.fail('a 429 for the whole request must throw'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ProjectionError);
    const c = classifyError(err);
    assert.equal(c.kind, 'retry');
    assert.equal(c.kind === 'retry' && c.reason, 'http_429');
    assert.equal(c.kind === 'retry' && c.retryAfterMs, 7_000);
    assert.equal(cluster.requests.filter((r) => r.path === '/_bulk').length, 1, "the client's own retries are off");

    mode = 'partial';
    const out = await sink.write(events, new AbortController().signal);
    assert.equal(out[0]!.kind, 'retry');
    assert.equal(out[0]!.kind === 'retry' && out[0]!.retryAfterMs, 3_000);
    assert.equal(out[1]!.kind, 'written');
  });
}

test('rebuild into a cluster: external versions from the source, 409 counted as current, the 429 item resent', { timeout: 60_000 }, async (t) => {
  const db = await freshDatabase('ops_es_rebuild');
  t.after(() => db.drop());
  const lib = (await db.pool.query<{ id: string }>(`insert into wordloom.libraries (name) values ('l') returning id`)).rows[0]!.id;
  const book = (await db.pool.query<{ id: string }>(`insert into wordloom.books (library_id, title) values ($1, 't') returning id`, [lib])).rows[0]!.id;
  const { rows: blocks } = await db.pool.query<{ id: string; version: string }>(
    `insert into wordloom.blocks (book_id, library_id, block_type, content, version, deleted_at)
     select $1, $2, 'text', 'c' || g, g, case when g = 5 then now() end from generate_series(1, 5) g returning id, version::text`,
    [book, lib],
  );
  const byVersion = new Map(blocks.map((b) => [Number(b.version), b.id]));
  const script = new Map<string, number[]>([[byVersion.get(2)!, [409]], [byVersion.get(3)!, [429, 201]], [byVersion.get(5)!, [200]]]);
  const cluster = await fakeCluster((actions) => {
    const items = actions.map((a) => item(a.action, a.meta, script.get(String(a.meta['_id']))?.shift() ?? 201));
    return { status: 200, body: { took: 1, errors: true, items } };
  });
  t.after(() => cluster.close());
  const sink = new ClusterSearchSink(elasticsearchClient({ url: cluster.url }), { index: 'wordloom-blocks' });
  t.after(() => sink.close());
  const p = await rebuildSearch(db.pool, { batchSize: 10, writer: await sinkWriter(sink, { baseDelayMs: 10 }) });
  assert.deepEqual({ read: p.read, written: p.written, stale: p.stale, failed: p.failed }, { read: 5, written: 4, stale: 1, failed: 0 });
  const bulks = cluster.requests.filter((r) => r.path === '/_bulk').map((r) => r.body.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>));
  assert.equal(bulks.length, 2);
  const metas = bulks[0]!.filter((l) => l['index'] || l['delete']);
  assert.equal(metas.length, 5);
  for (const l of metas) {
    const m = (l['index'] ?? l['delete'])!;
    assert.equal(m['version_type'], 'external');
    assert.equal(byVersion.get(Number(m['version'])), m['_id'], 'each block is sent at its source version');
  }
  assert.ok(metas.find((l) => l['delete']?.['_id'] === byVersion.get(5)), 'a deleted block is a versioned delete');
  assert.deepEqual(bulks[1]!.filter((l) => l['index']).map((l) => l['index']!['_id']), [byVersion.get(3)], 'only the 429 item is resent');
});
