import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { buildApp } from '../src/service/app.js';
import { MAX_CONTENT_CHARS } from '../src/service/model.js';

/** Bad input gets a clear 4xx JSON error and changes nothing. Real Postgres, app in process. */
describe('API input validation', () => {
  let db: TestDatabase;
  let app: FastifyInstance;
  let bookId: string;
  let blockId: string;

  before(async () => {
    db = await freshDatabase('api');
    app = await buildApp({ pool: db.pool });
    const lib = (await app.inject({ method: 'POST', url: '/api/v1/libraries', payload: { name: 'v' } })).json();
    bookId = (await app.inject({ method: 'POST', url: '/api/v1/books', payload: { library_id: lib.id, title: 't' } })).json().id;
    blockId = (await app.inject({ method: 'POST', url: '/api/v1/blocks', payload: { book_id: bookId, block_type: 'text', content: 'c' } })).json().id;
  });
  after(async () => {
    await app.close();
    await db.drop();
  });

  const events = async () => (await db.pool.query<{ n: number }>('select count(*)::int n from loomtrace.outbox')).rows[0]!.n;

  const cases: { name: string; method: 'GET' | 'POST' | 'PATCH' | 'DELETE'; url: () => string; body?: () => unknown; raw?: string; status: number; code: string; message?: RegExp }[] = [
    { name: 'unknown block', method: 'GET', url: () => `/api/v1/blocks/${randomUUID()}`, status: 404, code: 'NOT_FOUND', message: /block .* does not exist/ },
    { name: 'unknown block on PATCH', method: 'PATCH', url: () => `/api/v1/blocks/${randomUUID()}`, body: () => ({ content: 'x' }), status: 404, code: 'NOT_FOUND' },
    { name: 'unknown block on DELETE', method: 'DELETE', url: () => `/api/v1/blocks/${randomUUID()}`, status: 404, code: 'NOT_FOUND' },
    { name: 'unknown book for a block', method: 'POST', url: () => '/api/v1/blocks', body: () => ({ book_id: randomUUID(), block_type: 'text', content: 'x' }), status: 404, code: 'NOT_FOUND', message: /book/ },
    { name: 'unknown library for a book', method: 'POST', url: () => '/api/v1/books', body: () => ({ library_id: randomUUID(), title: 'x' }), status: 404, code: 'NOT_FOUND', message: /library/ },
    { name: 'unknown book listing', method: 'GET', url: () => `/api/v1/books/${randomUUID()}/blocks`, status: 404, code: 'NOT_FOUND' },
    { name: 'malformed id', method: 'GET', url: () => '/api/v1/blocks/not-a-uuid', status: 400, code: 'VALIDATION_FAILED', message: /uuid/ },
    { name: 'content of the wrong type', method: 'PATCH', url: () => `/api/v1/blocks/${blockId}`, body: () => ({ content: { evil: true } }), status: 400, code: 'VALIDATION_FAILED', message: /content/ },
    { name: 'position of the wrong type', method: 'PATCH', url: () => `/api/v1/blocks/${blockId}`, body: () => ({ position: 'third' }), status: 400, code: 'VALIDATION_FAILED', message: /position/ },
    { name: 'unknown block type', method: 'POST', url: () => '/api/v1/blocks', body: () => ({ book_id: bookId, block_type: 'video', content: 'x' }), status: 400, code: 'VALIDATION_FAILED', message: /block_type/ },
    { name: 'missing required field', method: 'POST', url: () => '/api/v1/blocks', body: () => ({ book_id: bookId, block_type: 'text' }), status: 400, code: 'VALIDATION_FAILED', message: /content/ },
    { name: 'unknown field', method: 'PATCH', url: () => `/api/v1/blocks/${blockId}`, body: () => ({ contents: 'typo' }), status: 400, code: 'VALIDATION_FAILED' },
    { name: 'empty patch', method: 'PATCH', url: () => `/api/v1/blocks/${blockId}`, body: () => ({}), status: 400, code: 'VALIDATION_FAILED' },
    { name: 'malformed JSON', method: 'POST', url: () => '/api/v1/libraries', raw: '{"name": ', status: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' },
    { name: 'content over the limit', method: 'PATCH', url: () => `/api/v1/blocks/${blockId}`, body: () => ({ content: 'x'.repeat(MAX_CONTENT_CHARS + 1) }), status: 422, code: 'CONTENT_TOO_LONG', message: /limit is 65536/ },
    { name: 'body over 1 MiB', method: 'PATCH', url: () => `/api/v1/blocks/${blockId}`, body: () => ({ content: 'x'.repeat(1_100_000) }), status: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE' },
    { name: 'version conflict', method: 'PATCH', url: () => `/api/v1/blocks/${blockId}`, body: () => ({ content: 'y', expected_version: 99 }), status: 409, code: 'VERSION_CONFLICT' },
    { name: 'search without q', method: 'GET', url: () => '/api/v1/search', status: 400, code: 'VALIDATION_FAILED', message: /q/ },
    { name: 'unknown route', method: 'GET', url: () => '/api/v1/nothing', status: 404, code: 'ROUTE_NOT_FOUND' },
  ];

  for (const c of cases) {
    it(`${c.name} → ${c.status} ${c.code}, nothing enqueued`, async () => {
      const before = await events();
      const res = await app.inject({
        method: c.method,
        url: c.url(),
        ...(c.raw !== undefined ? { payload: c.raw, headers: { 'content-type': 'application/json' } } : c.body ? { payload: c.body() as object } : {}),
      });
      assert.equal(res.statusCode, c.status, res.body.slice(0, 300));
      assert.match(String(res.headers['content-type'] ?? ''), /application\/json/);
      const body = res.json();
      assert.equal(body.statusCode, c.status);
      assert.equal(body.code, c.code);
      assert.equal(typeof body.message, 'string');
      if (c.message) assert.match(body.message, c.message);
      assert.equal(await events(), before, 'bad input enqueues nothing');
    });
  }

  it('a good PATCH raises the version and enqueues exactly one event in the same transaction', async () => {
    const before = await events();
    const res = await app.inject({ method: 'PATCH', url: `/api/v1/blocks/${blockId}`, payload: { content: 'new', expected_version: 1 } });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().version, 2);
    assert.equal(await events(), before + 1);
    const { rows } = await db.pool.query('select event_type, aggregate_version::int, payload->>\'content\' as content from loomtrace.outbox order by id desc limit 1');
    assert.deepEqual(rows[0], { event_type: 'block.updated', aggregate_version: 2, content: 'new' });
  });

  it('serves the OpenAPI document', async () => {
    const res = await app.inject({ method: 'GET', url: '/openapi.json' });
    assert.equal(res.statusCode, 200);
    const doc = res.json();
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.paths['/api/v1/blocks/{id}'].patch);
    assert.ok(doc.paths['/api/v1/search'].get);
  });
});
