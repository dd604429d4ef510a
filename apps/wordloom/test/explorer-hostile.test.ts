/**
 * Hostile input for the OTLP receiver: garbage, truncated protobuf, a gzip bomb, oversize
 * bodies, huge attribute counts and strings, unstorable text, and overload. Every answer is a
 * clear status code, memory stays bounded, and the receiver keeps serving afterwards.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync, deflateSync } from 'node:zlib';
import { request } from 'node:http';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { compileExplorerOptions } from '@loomtrace/explorer';
import { startExplorer, type RunningExplorer } from '@loomtrace/explorer';
import { ExportTraceServiceRequest, ExportTraceServiceResponse } from '@loomtrace/explorer';

let db: TestDatabase;
let ex: RunningExplorer;
const MAX_BODY = 1024 * 1024;
const MAX_INFLATED = 4 * 1024 * 1024;

before(async () => {
  db = await freshDatabase('explorer_hostile');
  ex = await startExplorer(
    db.pool,
    compileExplorerOptions({ port: 0, otlpPort: 0, maxBodyBytes: MAX_BODY, maxDecompressedBytes: MAX_INFLATED, queueMaxSpans: 1_000, limits: { maxAttributes: 64, maxValueChars: 1_000 } }),
  );
});
after(async () => {
  await ex?.close();
  await db?.drop();
});

let seq = 1;
function ids() {
  const n = seq++;
  return { traceId: Buffer.from(n.toString(16).padStart(32, 'a'), 'hex'), spanId: Buffer.from(n.toString(16).padStart(16, 'b'), 'hex') };
}
let tick = 0n;
/** Distinct, increasing times: retention by size orders by start time. */
const nowNs = () => (BigInt(Date.now()) * 1_000_000n + tick++).toString();

function protoRequest(spans: Record<string, unknown>[], service = 'hostile'): Buffer {
  const msg = ExportTraceServiceRequest.fromObject({
    resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 'h' }, spans }] }],
  });
  return Buffer.from(ExportTraceServiceRequest.encode(msg).finish());
}
function span(extra: Record<string, unknown> = {}) {
  return { ...ids(), name: 'hostile span', kind: 1, startTimeUnixNano: nowNs(), endTimeUnixNano: nowNs(), ...extra };
}

async function post(body: Buffer | string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: Buffer }> {
  const r = await fetch(`${ex.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf', ...headers }, body });
  return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

async function stillServing() {
  const r = await post(protoRequest([span()]));
  assert.equal(r.status, 200, 'the receiver still accepts a valid request');
}

describe('explorer receiver under hostile input', () => {
  test('garbage, truncated protobuf, broken JSON and broken gzip get 400', async () => {
    assert.equal((await post(Buffer.from('this is not protobuf \u0000\u00ff\u00fe'))).status, 400);
    assert.equal((await post(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]))).status, 400, 'length prefix past the end');
    const valid = protoRequest([span({ attributes: [{ key: 'k', value: { stringValue: 'v'.repeat(200) } }] })]);
    for (const cut of [valid.length - 1, valid.length - 7, Math.floor(valid.length / 2), 3]) {
      const r = await post(valid.subarray(0, cut));
      assert.equal(r.status, 400, `protobuf truncated to ${cut} of ${valid.length} bytes`);
    }
    assert.equal((await post('{"resourceSpans": [', { 'content-type': 'application/json' })).status, 400);
    assert.equal((await post('[1,2,3]', { 'content-type': 'application/json' })).status, 400);
    assert.equal((await post('{"resourceSpans": 7}', { 'content-type': 'application/json' })).status, 400);
    assert.equal((await post(Buffer.from('not gzip at all'), { 'content-encoding': 'gzip' })).status, 400);
    assert.equal((await post(gzipSync(valid).subarray(0, 20), { 'content-encoding': 'gzip' })).status, 400, 'truncated gzip');
    assert.equal((await post(valid, { 'content-type': 'text/plain' })).status, 415);
    assert.equal((await post(valid, { 'content-encoding': 'br' })).status, 415);
    const deep = '{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"' + '1'.repeat(32) + '","spanId":"' + '2'.repeat(16) + '","name":"deep","startTimeUnixNano":"1","endTimeUnixNano":"2","attributes":[{"key":"d","value":' + '{"arrayValue":{"values":['.repeat(5000) + ']}}'.repeat(5000) + '}]}]}]}]}';
    const d = await post(deep, { 'content-type': 'application/json' });
    assert.ok(d.status === 200 || d.status === 400, `deep nesting answered ${d.status}`);
    const wrongPath = await fetch(`${ex.otlpUrl}/v1/metrics`, { method: 'POST', body: 'x' });
    assert.equal(wrongPath.status, 404);
    await stillServing();
  });

  test('oversize: refused from Content-Length before reading, and while streaming without it', async () => {
    const big = Buffer.alloc(MAX_BODY + 10, 1);
    const r = await post(big);
    assert.equal(r.status, 413);
    // Chunked (no Content-Length): the cap applies while reading.
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(`${ex.otlpUrl}/v1/traces`);
      const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { 'content-type': 'application/x-protobuf', 'transfer-encoding': 'chunked' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(64 * 1024, 1);
      let sent = 0;
      const pump = () => {
        while (sent < MAX_BODY * 3) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    assert.equal(status, 413);
    await stillServing();
  });

  test('a gzip bomb is stopped at the decompression cap, with bounded memory', async () => {
    // 512 MiB of zeros compresses to about 0.5 MiB: under the body cap, far over the inflated cap.
    const bomb = gzipSync(Buffer.alloc(512 * 1024 * 1024), { level: 9 });
    assert.ok(bomb.length < MAX_BODY);
    const before = process.memoryUsage().rss;
    const r = await post(bomb, { 'content-encoding': 'gzip' });
    assert.equal(r.status, 413);
    const r2 = await post(deflateSync(Buffer.alloc(64 * 1024 * 1024)), { 'content-encoding': 'deflate' });
    assert.equal(r2.status, 413);
    const grown = process.memoryUsage().rss - before;
    assert.ok(grown < 200 * 1024 * 1024, `rss grew by ${Math.round(grown / 1048576)} MiB`);
    await stillServing();
  });

  test('huge attribute counts and strings are trimmed to the limits and counted as dropped', async () => {
    const attrs = Array.from({ length: 20_000 }, (_, i) => ({ key: `k${i}`, value: { intValue: i } }));
    const s = span({ attributes: [{ key: 'huge', value: { stringValue: 'x'.repeat(300_000) } }, ...attrs], events: Array.from({ length: 1_000 }, () => ({ name: 'e', timeUnixNano: nowNs() })) });
    const body = protoRequest([s]);
    assert.ok(body.length < MAX_BODY);
    const r = await post(body);
    assert.equal(r.status, 200);
    const traceId = (s.traceId as Buffer).toString('hex');
    const t = (await (await fetch(`${ex.uiUrl}/api/traces/${traceId}`)).json()) as { spans: { attributes: Record<string, unknown>; events: unknown[]; dropped: number }[] };
    const stored = t.spans[0]!;
    assert.equal(Object.keys(stored.attributes).length, 64);
    assert.equal((stored.attributes['huge'] as string).length, 1_000);
    assert.ok(stored.events.length <= 128);
    assert.ok(stored.dropped >= 20_000 - 63, `dropped = ${stored.dropped}`);
  });

  test('invalid spans are rejected one by one (partial success); unstorable text is cleaned', async () => {
    const good = span({ name: 'nul\u0000 and lone \ud800 surrogate', attributes: [{ key: 'bad\u0000key', value: { stringValue: 'v\u0000\udfff' } }] });
    const body = protoRequest([good, { ...span(), traceId: Buffer.alloc(16) }, { ...span(), spanId: Buffer.alloc(3, 1) }]);
    const r = await post(body);
    assert.equal(r.status, 200);
    const resp = ExportTraceServiceResponse.toObject(ExportTraceServiceResponse.decode(r.body), { longs: Number }) as { partialSuccess?: { rejectedSpans: number; errorMessage: string } };
    assert.equal(resp.partialSuccess?.rejectedSpans, 2);
    assert.match(resp.partialSuccess?.errorMessage ?? '', /invalid trace id/);
    const t = (await (await fetch(`${ex.uiUrl}/api/traces/${(good.traceId as Buffer).toString('hex')}`)).json()) as { spans: { name: string; attributes: Record<string, string> }[] };
    // (protobuf's UTF-8 turns the lone surrogate into replacement characters on the wire.)
    assert.match(t.spans[0]!.name, /^nul\uFFFD and lone \uFFFD+ surrogate$/);
    assert.match(t.spans[0]!.attributes['bad\uFFFDkey']!, /^v\uFFFD\uFFFD+$/);
    // JSON: the same, with a partial-success body in JSON.
    // JSON carries the lone surrogate itself (as an escape); it must still be storable.
    const lone = { traceId: 'c'.repeat(32), spanId: '1'.repeat(16), name: 'lone \ud800 here', startTimeUnixNano: nowNs(), endTimeUnixNano: nowNs() };
    const j = await post(JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId: 'zz', spanId: '1'.repeat(16), name: 'x' }, lone] }] }] }), { 'content-type': 'application/json' });
    assert.equal(j.status, 200);
    assert.equal((JSON.parse(j.body.toString()) as { partialSuccess: { rejectedSpans: number } }).partialSuccess.rejectedSpans, 1);
    const tj = (await (await fetch(`${ex.uiUrl}/api/traces/${'c'.repeat(32)}`)).json()) as { spans: { name: string }[] };
    assert.equal(tj.spans[0]!.name, 'lone \uFFFD here');
  });

  test('when the store cannot keep up, the receiver answers 429 with Retry-After, then recovers', async () => {
    // Hold the span table: the first request's spans wait in the queue (up to its 1,000-span capacity).
    const blocker = await db.pool.connect();
    await blocker.query('begin');
    await blocker.query('lock table explorer.spans in access exclusive mode');
    let first: Promise<{ status: number }> | undefined;
    try {
      first = post(protoRequest(Array.from({ length: 900 }, () => span())));
      const until = Date.now() + 15_000;
      while (ex.queue.stats.queuedSpans < 900) {
        assert.ok(Date.now() < until, 'the first request reaches the write queue');
        await new Promise((r) => setTimeout(r, 20));
      }
      const second = await post(protoRequest(Array.from({ length: 200 }, () => span())));
      assert.equal(second.status, 429);
      assert.equal(second.headers.get('retry-after'), '1');
    } finally {
      await blocker.query('rollback');
      blocker.release();
    }
    assert.equal((await first!).status, 200, 'the queued request is written once the table is free');
    await stillServing();
  });

  test('retention by size keeps the newest spans; retention by age drops old ones', async () => {
    const { rows } = await db.pool.query<{ n: number }>('select count(*)::int as n from explorer.spans');
    assert.ok(rows[0]!.n > 100);
    const { pruneBySize, pruneByAge } = await import('@loomtrace/explorer');
    const removed = await pruneBySize(db.pool, 100);
    assert.ok(removed > 0);
    const after1 = await db.pool.query<{ n: number }>('select count(*)::int as n from explorer.spans');
    assert.ok(after1.rows[0]!.n <= 100 && after1.rows[0]!.n > 0, `kept ${after1.rows[0]!.n}`);
    await db.pool.query(`update explorer.spans set received_at = now() - interval '2 days' where ctid in (select ctid from explorer.spans limit 10)`);
    assert.equal(await pruneByAge(db.pool, 86_400_000), 10);
  });
});
