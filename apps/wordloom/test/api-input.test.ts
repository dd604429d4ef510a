import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { startApi, startWorker, type Proc } from './support/procs.js';
import { until } from './support/wait.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Hostile and mistyped input through the real API process: no type coercion of bodies, no 500
 * for what Postgres would refuse (NUL, out-of-range integers), request ids checked, and search
 * snippets that carry no markup.
 */
describe('API input, through the real API process', () => {
  let db: TestDatabase;
  let api: Proc & { url: string };
  let worker: Proc;
  let libId: string;
  let bookId: string;
  let blockId: string;

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const r = await fetch(`${api.url}${path}`, {
      method,
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await r.text();
    return { status: r.status, headers: r.headers, text, json: text ? (JSON.parse(text) as Record<string, any>) : undefined };
  };
  const count = async (sql: string) => (await db.pool.query<{ n: number }>(sql)).rows[0]!.n;
  const stored = async () => ({
    libraries: await count('select count(*)::int n from wordloom.libraries'),
    books: await count('select count(*)::int n from wordloom.books'),
    blocks: await count('select count(*)::int n from wordloom.blocks'),
    events: await count('select count(*)::int n from loomtrace.outbox'),
  });
  const block = async () => {
    const r = await call('GET', `/api/v1/blocks/${blockId}`);
    assert.equal(r.status, 200, r.text);
    return { content: r.json!['content'], version: r.json!['version'], position: r.json!['position'], block_type: r.json!['block_type'] };
  };
  const assertError = (r: { status: number; headers: Headers; json: Record<string, any> | undefined; text: string }, status: number, code: string) => {
    assert.equal(r.status, status, r.text.slice(0, 300));
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
    assert.equal(r.json!['statusCode'], status);
    assert.equal(r.json!['code'], code);
    assert.equal(typeof r.json!['error'], 'string');
    assert.equal(typeof r.json!['message'], 'string');
  };

  before(async () => {
    db = await freshDatabase('apiin');
    api = await startApi(db.url);
    worker = await startWorker(db.url, { WORKER_ID: 'w-apiin', WORKER_POLL_MS: '100' });
    libId = (await call('POST', '/api/v1/libraries', { name: 'lib' })).json!['id'];
    bookId = (await call('POST', '/api/v1/books', { library_id: libId, title: 'book' })).json!['id'];
    blockId = (await call('POST', '/api/v1/blocks', { book_id: bookId, block_type: 'text', content: 'original', position: 3 })).json!['id'];
  });
  after(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    await db?.drop();
  });

  const wrongTypes: [string, unknown][] = [['number', 42], ['boolean', true], ['null', null], ['array', ['x']]];

  describe('bodies are not coerced: a wrong type is 400 VALIDATION_FAILED and stores nothing', () => {
    const bodies: { route: string; method: string; path: () => string; body: (v: unknown) => Record<string, unknown>; field: string; values?: [string, unknown][] }[] = [
      { route: 'POST /libraries name', method: 'POST', path: () => '/api/v1/libraries', body: (v) => ({ name: v }), field: 'name' },
      { route: 'POST /books title', method: 'POST', path: () => '/api/v1/books', body: (v) => ({ library_id: libId, title: v }), field: 'title' },
      { route: 'POST /books library_id', method: 'POST', path: () => '/api/v1/books', body: (v) => ({ library_id: v, title: 't' }), field: 'library_id', values: [['array of the id', [libId]], ['null', null]] },
      { route: 'POST /blocks content', method: 'POST', path: () => '/api/v1/blocks', body: (v) => ({ book_id: bookId, block_type: 'text', content: v }), field: 'content' },
      { route: 'POST /blocks book_id', method: 'POST', path: () => '/api/v1/blocks', body: (v) => ({ book_id: v, block_type: 'text', content: 'c' }), field: 'book_id', values: [['array of the id', [bookId]]] },
      { route: 'POST /blocks block_type', method: 'POST', path: () => '/api/v1/blocks', body: (v) => ({ book_id: bookId, block_type: v, content: 'c' }), field: 'block_type', values: [['array', ['text']]] },
      { route: 'POST /blocks position', method: 'POST', path: () => '/api/v1/blocks', body: (v) => ({ book_id: bookId, block_type: 'text', content: 'c', position: v }), field: 'position', values: [['string', '7'], ['boolean', true], ['null', null], ['array', [7]]] },
      { route: 'PATCH /blocks/:id content', method: 'PATCH', path: () => `/api/v1/blocks/${blockId}`, body: (v) => ({ content: v }), field: 'content' },
      { route: 'PATCH /blocks/:id block_type', method: 'PATCH', path: () => `/api/v1/blocks/${blockId}`, body: (v) => ({ block_type: v }), field: 'block_type', values: [['array', ['heading']], ['null', null]] },
      { route: 'PATCH /blocks/:id position', method: 'PATCH', path: () => `/api/v1/blocks/${blockId}`, body: (v) => ({ position: v }), field: 'position', values: [['string', '7'], ['boolean', true], ['null', null], ['array', [7]]] },
      { route: 'PATCH /blocks/:id expected_version', method: 'PATCH', path: () => `/api/v1/blocks/${blockId}`, body: (v) => ({ content: 'changed', expected_version: v }), field: 'expected_version', values: [['string', '1'], ['boolean', true], ['null', null], ['array', [1]]] },
    ];
    for (const b of bodies) {
      for (const [kind, value] of b.values ?? wrongTypes) {
        it(`${b.route}: ${kind} ${JSON.stringify(value)}`, async () => {
          const was = { stored: await stored(), block: await block() };
          const r = await call(b.method, b.path(), b.body(value));
          assertError(r, 400, 'VALIDATION_FAILED');
          assert.match(r.json!['message'], new RegExp(b.field));
          assert.deepEqual(await stored(), was.stored, 'no row and no event was added');
          assert.deepEqual(await block(), was.block, 'the block keeps its value and version');
        });
      }
    }
  });

  describe('what Postgres would refuse is a 400, not a 500', () => {
    const bad: { name: string; method: string; path: () => string; body?: () => unknown; field: RegExp }[] = [
      { name: 'NUL in a library name', method: 'POST', path: () => '/api/v1/libraries', body: () => ({ name: 'a\u0000b' }), field: /body\/name must not contain NUL/ },
      { name: 'NUL in a book title', method: 'POST', path: () => '/api/v1/books', body: () => ({ library_id: libId, title: '\u0000' }), field: /body\/title must not contain NUL/ },
      { name: 'NUL in new content', method: 'POST', path: () => '/api/v1/blocks', body: () => ({ book_id: bookId, block_type: 'text', content: 'x\u0000' }), field: /body\/content must not contain NUL/ },
      { name: 'NUL in changed content', method: 'PATCH', path: () => `/api/v1/blocks/${blockId}`, body: () => ({ content: 'before\u0000after' }), field: /body\/content must not contain NUL/ },
      // JSON can carry an unpaired surrogate (\ud800); the driver would store U+FFFD instead.
      { name: 'an unpaired surrogate in content', method: 'PATCH', path: () => `/api/v1/blocks/${blockId}`, body: () => ({ content: 'half \ud800 a pair' }), field: /content must not contain .* unpaired surrogate/ },
      { name: 'NUL in a search', method: 'GET', path: () => '/api/v1/search?q=a%00b', field: /querystring\/q must not contain NUL/ },
      { name: 'expected_version 1e20', method: 'PATCH', path: () => `/api/v1/blocks/${blockId}`, body: () => '{"content":"changed","expected_version":1e20}', field: /expected_version/ },
      { name: 'expected_version beyond 2^53', method: 'PATCH', path: () => `/api/v1/blocks/${blockId}`, body: () => '{"content":"changed","expected_version":9007199254740993}', field: /expected_version/ },
      { name: 'expected_version negative', method: 'PATCH', path: () => `/api/v1/blocks/${blockId}`, body: () => ({ content: 'changed', expected_version: -1 }), field: /expected_version/ },
      { name: 'position 1e20', method: 'PATCH', path: () => `/api/v1/blocks/${blockId}`, body: () => '{"position":1e20}', field: /position/ },
      { name: 'offset=1e20', method: 'GET', path: () => `/api/v1/books/${bookId}/blocks?offset=1e20`, field: /offset/ },
      { name: 'offset beyond bigint', method: 'GET', path: () => `/api/v1/books/${bookId}/blocks?offset=99999999999999999999`, field: /offset/ },
      { name: 'offset negative', method: 'GET', path: () => `/api/v1/books/${bookId}/blocks?offset=-1`, field: /offset/ },
      { name: 'limit=1e20', method: 'GET', path: () => `/api/v1/books/${bookId}/blocks?limit=1e20`, field: /limit/ },
      { name: 'limit negative', method: 'GET', path: () => `/api/v1/books/${bookId}/blocks?limit=-5`, field: /limit/ },
      { name: 'search limit=1e20', method: 'GET', path: () => '/api/v1/search?q=x&limit=1e20', field: /limit/ },
      { name: 'search limit negative', method: 'GET', path: () => '/api/v1/search?q=x&limit=-1', field: /limit/ },
      { name: 'a block id that is not a UUID', method: 'GET', path: () => '/api/v1/blocks/12', field: /id/ },
      { name: 'a urn:uuid block id', method: 'GET', path: () => `/api/v1/blocks/urn:uuid:${blockId}`, field: /id/ },
      { name: 'a braced block id', method: 'PATCH', path: () => `/api/v1/blocks/%7B${blockId}%7D`, body: () => ({ content: 'changed' }), field: /id/ },
      { name: 'NUL as a book id', method: 'GET', path: () => '/api/v1/books/%00/blocks', field: /id/ },
      { name: 'a urn:uuid library_id in a body', method: 'POST', path: () => '/api/v1/books', body: () => ({ library_id: `urn:uuid:${libId}`, title: 't' }), field: /library_id/ },
      { name: 'a urn:uuid library_id in a search', method: 'GET', path: () => `/api/v1/search?q=x&library_id=urn:uuid:${libId}`, field: /library_id/ },
    ];
    for (const c of bad) {
      it(`${c.name} → 400 VALIDATION_FAILED, nothing stored`, async () => {
        const was = { stored: await stored(), block: await block() };
        const r = await call(c.method, c.path(), c.body?.());
        assertError(r, 400, 'VALIDATION_FAILED');
        assert.match(r.json!['message'], c.field);
        assert.deepEqual(await stored(), was.stored);
        assert.deepEqual(await block(), was.block);
      });
    }

    it('the largest accepted values still work', async () => {
      const list = await call('GET', `/api/v1/books/${bookId}/blocks?limit=1000&offset=${Number.MAX_SAFE_INTEGER}`);
      assert.equal(list.status, 200, list.text);
      assert.deepEqual(list.json!['blocks'], []);
      const conflict = await call('PATCH', `/api/v1/blocks/${blockId}`, { content: 'changed', expected_version: Number.MAX_SAFE_INTEGER });
      assertError(conflict, 409, 'VERSION_CONFLICT');
    });

    it('text with paired surrogates, markup and control characters other than NUL is stored as given', async () => {
      const text = 'emoji 😀, <b>markup</b>, tab\t and \u0001';
      const r = await call('POST', '/api/v1/blocks', { book_id: bookId, block_type: 'text', content: text });
      assert.equal(r.status, 201, r.text);
      const got = await call('GET', `/api/v1/blocks/${r.json!['id']}`);
      assert.equal(got.json!['content'], text);
    });

    it('query strings are still coerced where wanted: limit=1 is the number 1', async () => {
      const r = await call('GET', `/api/v1/books/${bookId}/blocks?limit=1&offset=0`);
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json!['blocks'].length, 1);
    });
  });

  describe('x-request-id', () => {
    const idOf = async (given?: string) => {
      const r = await call('GET', `/api/v1/blocks/${blockId}`, undefined, given === undefined ? {} : { 'x-request-id': given });
      assert.equal(r.status, 200, r.text);
      return r.headers.get('x-request-id');
    };

    it('a sane one is echoed', async () => {
      assert.equal(await idOf('req-42.a:b_c'), 'req-42.a:b_c');
    });
    it('none given: one is made', async () => {
      assert.match((await idOf()) ?? '', UUID);
    });
    for (const [name, given] of [
      ['10 KB', 'a'.repeat(10_240)],
      ['129 characters', 'a'.repeat(129)],
      ['markup', '<script>alert(1)</script>'],
      ['spaces and quotes', 'a b"c'],
    ] as const) {
      it(`${name}: replaced by a made one, not echoed`, async () => {
        const got = await idOf(given);
        assert.match(got ?? '', UUID);
        assert.notEqual(got, given);
      });
    }
    it('a replaced id is the one the outbox event records', async () => {
      const r = await call('PATCH', `/api/v1/blocks/${blockId}`, { position: 4 }, { 'x-request-id': '<b>x</b>' });
      assert.equal(r.status, 200, r.text);
      const made = r.headers.get('x-request-id');
      assert.match(made ?? '', UUID);
      const { rows } = await db.pool.query<{ request_id: string }>(
        'select request_id from loomtrace.outbox where aggregate_id = $1 order by id desc limit 1',
        [blockId],
      );
      assert.equal(rows[0]!.request_id, made);
    });
  });

  describe('search snippets carry no markup', () => {
    // The markers the API uses internally (STX/ETX) and HTML-looking text, around the words searched.
    const hostile = 'Zebra <img src=x onerror=alert(1)> and <b>bold</b> \u0002tag\u0003 zebra! ☃😀 zebras; ZEBRA.';
    let hit: Record<string, any>;

    before(async () => {
      const r = await call('POST', '/api/v1/blocks', { book_id: bookId, block_type: 'text', content: hostile });
      assert.equal(r.status, 201, r.text);
      hit = await until('the hostile block in search', 20_000, async () => {
        const s = await call('GET', `/api/v1/search?q=zebra&library_id=${libId}`);
        assert.equal(s.status, 200, s.text);
        return s.json!['hits'].find((h: any) => h.block_id === r.json!['id']);
      });
    });

    it('the snippet is the plain text of the content: no markup added, none of ours left in', () => {
      assert.equal(typeof hit['snippet'], 'string');
      assert.doesNotMatch(hit['snippet'], /<\/?b>/, 'no <b> marks (ours or the content\'s: tags are dropped by ts_headline)');
      assert.doesNotMatch(hit['snippet'], /[\u0002\u0003]/, 'no marker characters');
      assert.doesNotMatch(hit['snippet'], /&lt;|&gt;|&amp;/, 'plain text, not HTML-escaped');
      // The text around the matches is the content's own (plain text; a consumer renders it as text).
      assert.ok(hit['snippet'].includes('Zebra <img src=x onerror=alert(1)> and'), hit['snippet']);
      assert.ok(hit['snippet'].includes('tag\u001a zebra! ☃😀 zebras; ZEBRA'), hit['snippet']);
    });

    it('highlights are UTF-16 offsets of each matching word', () => {
      const marked = (hit['highlights'] as { start: number; end: number }[]).map((h) => hit['snippet'].slice(h.start, h.end));
      assert.deepEqual(marked, ['Zebra', 'zebra', 'ZEBRA']);
      for (const h of hit['highlights']) assert.ok(Number.isInteger(h.start) && h.end > h.start);
    });

    it('the OpenAPI document says what the snippet is', async () => {
      const doc = (await call('GET', '/openapi.json')).json!;
      const item = doc['paths']['/api/v1/search']['get']['responses']['200']['content']['application/json']['schema']['properties']['hits']['items'];
      assert.match(item.properties.snippet.description, /plain text/i);
      assert.match(item.properties.highlights.description, /UTF-16/);
    });
  });
});
