/**
 * Input the explorer must refuse with a clear 4xx, never a 500: query and route parameters
 * with NUL characters or absurd numbers and dates; OTLP/JSON with values of the wrong JSON
 * type. And an attribute named `__proto__` is kept as a key, not used as a prototype.
 * Against a real explorer process.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { startExplorerProcess } from './support/explorerProc.js';
import type { Proc } from './support/procs.js';
import { ExportTraceServiceRequest, RpcStatus } from '@loomtrace/explorer/internal';

let db: TestDatabase;
let ex: Proc & { uiUrl: string; otlpUrl: string };

before(async () => {
  db = await freshDatabase('explorer_input_types');
  ex = await startExplorerProcess(db.url);
});
after(async () => {
  await ex?.stop();
  await db?.drop();
});

const BLOCK = '6f1c2d3e-0000-4000-8000-000000000001';

async function get(path: string): Promise<{ status: number; type: string; body: unknown }> {
  const r = await fetch(`${ex.uiUrl}${path}`);
  const type = r.headers.get('content-type') ?? '';
  return { status: r.status, type, body: type.includes('json') ? await r.json() : await r.text() };
}

async function postJson(body: unknown): Promise<{ status: number; body: { message?: string; partialSuccess?: unknown } }> {
  const r = await fetch(`${ex.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as { message?: string } };
}

let seq = 0;
function validSpan(extra: Record<string, unknown> = {}): Record<string, unknown> {
  seq++;
  return { traceId: seq.toString(16).padStart(32, '5'), spanId: seq.toString(16).padStart(16, '6'), name: 'typed', startTimeUnixNano: '1000', endTimeUnixNano: '2000', ...extra };
}
const oneSpan = (span: Record<string, unknown>, resource: Record<string, unknown> = {}) => ({ resourceSpans: [{ resource, scopeSpans: [{ scope: { name: 's' }, spans: [span] }] }] });
const attr = (value: unknown, key: unknown = 'k') => ({ attributes: [{ key, value }] });

describe('explorer query API: bad parameters get 400 with a JSON error', () => {
  const cases = [
    '/api/traces?from=1e300',
    '/api/traces?to=99999999999999999999',
    '/api/traces?from=%2B300000-01-01T00:00:00Z',
    '/api/traces?to=%2B275760-09-13T00:00:00Z',
    '/api/traces?from=9999999999999',
    '/api/traces?from=-5',
    '/api/traces?min_ms=1e300',
    '/api/traces?min_ms=99999999999999999999',
    '/api/traces?limit=abc',
    '/api/traces?service=a%00b',
    '/api/traces?name=%00',
    '/api/traces?attr=k%00=v',
    '/api/traces?attr=k=v%00',
    '/api/traces?block_id=%00',
    '/api/traces?request_id=x%00',
    '/api/traces?status=%00',
    `/api/diagnosis/block/${BLOCK}?version=1e300`,
    `/api/diagnosis/block/${BLOCK}?version=99999999999999999999`,
    `/api/diagnosis/block/${BLOCK}?version=%00`,
    '/api/diagnosis/block/%00',
    '/api/events?state=dead%00',
    '/api/events?limit=%00',
    '/api/events?limit=1e300',
    '/api/events/%00',
    '/api/events/99999999999999999999',
    '/api/health?minutes=1e300',
    '/api/health?minutes=%00',
    '/api/health?minutes=0',
    '/api/traces/%00',
    `/api/traces/${'a'.repeat(32)}/spans/%00`,
  ];
  for (const path of cases) {
    test(path, async () => {
      const r = await get(path);
      assert.equal(r.status, 400, `${path}: ${JSON.stringify(r.body)}`);
      assert.match(r.type, /application\/json/);
      assert.equal(typeof (r.body as { error?: unknown }).error, 'string');
    });
  }

  test('sane values still work', async () => {
    for (const path of ['/api/traces?from=0&to=1700000000000&min_ms=0.5&limit=1000', '/api/traces?from=2026-01-01T00:00:00Z', `/api/diagnosis/block/${BLOCK}?version=3`, '/api/events?state=pending&limit=5', '/api/health?minutes=5', '/api/status']) {
      const r = await get(path);
      assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
    }
  });
});

describe('OTLP/JSON with values of the wrong type gets 400, not 500', () => {
  const cases: [string, unknown, RegExp][] = [
    ['bytesValue: 42', oneSpan(validSpan(attr({ bytesValue: 42 }))), /bytesValue/],
    ['bytesValue: {}', oneSpan(validSpan(attr({ bytesValue: {} }))), /bytesValue/],
    ['name: {}', oneSpan(validSpan({ name: {} })), /name/],
    ['traceId: 5', oneSpan(validSpan({ traceId: 5 })), /traceId/],
    ['spanId: []', oneSpan(validSpan({ spanId: [] })), /spanId/],
    ['attributes: "x"', oneSpan(validSpan({ attributes: 'x' })), /attributes/],
    ['stringValue: []', oneSpan(validSpan(attr({ stringValue: [] }))), /stringValue/],
    ['boolValue: "yes"', oneSpan(validSpan(attr({ boolValue: 'yes' }))), /boolValue/],
    ['intValue: "abc"', oneSpan(validSpan(attr({ intValue: 'abc' }))), /intValue/],
    ['doubleValue: {}', oneSpan(validSpan(attr({ doubleValue: {} }))), /doubleValue/],
    ['arrayValue: []', oneSpan(validSpan(attr({ arrayValue: [] }))), /arrayValue/],
    ['kvlistValue.values: 5', oneSpan(validSpan(attr({ kvlistValue: { values: 5 } }))), /values/],
    ['key: 5', oneSpan(validSpan(attr({ stringValue: 'v' }, 5))), /key/],
    ['value: "x"', oneSpan(validSpan(attr('x'))), /value/],
    ['kind: "server"', oneSpan(validSpan({ kind: 'server' })), /kind/],
    ['startTimeUnixNano: {}', oneSpan(validSpan({ startTimeUnixNano: {} })), /startTimeUnixNano/],
    ['status: "x"', oneSpan(validSpan({ status: 'x' })), /status/],
    ['events: {}', oneSpan(validSpan({ events: {} })), /events/],
    ['links[0].traceId: true', oneSpan(validSpan({ links: [{ traceId: true, spanId: '1'.repeat(16) }] })), /traceId/],
    ['droppedAttributesCount: "many"', oneSpan(validSpan({ droppedAttributesCount: 'many' })), /droppedAttributesCount/],
    ['resource: []', oneSpan(validSpan(), [] as unknown as Record<string, unknown>), /resource/],
    ['resource attributes: {}', oneSpan(validSpan(), { attributes: {} }), /attributes/],
    ['scope.name: 7', { resourceSpans: [{ scopeSpans: [{ scope: { name: 7 }, spans: [validSpan()] }] }] }, /name/],
    ['scopeSpans: "x"', { resourceSpans: [{ scopeSpans: 'x' }] }, /scopeSpans/],
    ['spans: [5]', { resourceSpans: [{ scopeSpans: [{ spans: [5] }] }] }, /spans/],
  ];
  for (const [label, body, field] of cases) {
    test(label, async () => {
      const r = await postJson(body);
      assert.equal(r.status, 400, `${label}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.message ?? '', field);
    });
  }

  test('nesting deeper than 64 messages (128 JSON objects and arrays) gets 400, in JSON and in protobuf', async () => {
    let nested: Record<string, unknown> = { stringValue: 'deep' };
    for (let i = 0; i < 40; i++) nested = { arrayValue: { values: [nested] } };
    const j = await postJson(oneSpan(validSpan(attr(nested))));
    assert.equal(j.status, 400, JSON.stringify(j.body));
    assert.match(j.body.message ?? '', /more than 128 objects and arrays/);
    const traceId = Buffer.alloc(16, 0x21);
    const spanId = Buffer.alloc(8, 0x22);
    const body = ExportTraceServiceRequest.encode(
      ExportTraceServiceRequest.fromObject({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId, name: 'deep', startTimeUnixNano: 1, endTimeUnixNano: 2, attributes: [{ key: 'd', value: nested }] }] }] }] }),
    ).finish();
    const p = await fetch(`${ex.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
    assert.equal(p.status, 400);
    assert.match((RpcStatus.toObject(RpcStatus.decode(Buffer.from(await p.arrayBuffer()))) as { message: string }).message, /more than 64 messages/);
    // Within the limit: kept up to 6 levels, the rest counted as dropped.
    let ok: Record<string, unknown> = { stringValue: 'ok' };
    for (let i = 0; i < 20; i++) ok = { arrayValue: { values: [ok] } };
    assert.equal((await postJson(oneSpan(validSpan(attr(ok))))).status, 200);
  });

  test('a well-typed request is still accepted', async () => {
    const r = await postJson(oneSpan(validSpan({ kind: 2, status: { code: 1 }, ...attr({ intValue: '42' }), events: [{ timeUnixNano: '1500', name: 'e' }] })));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.partialSuccess, undefined);
  });
});

describe('an attribute named __proto__ is stored as a key', () => {
  type Span = { attributes: Record<string, unknown>; events: { attributes: Record<string, unknown> }[] };
  async function stored(traceId: string, spanId: string): Promise<{ span: Span; resource: Record<string, unknown> }> {
    const t = (await (await fetch(`${ex.uiUrl}/api/traces/${traceId}`)).json()) as { spans: Span[] };
    const s = (await (await fetch(`${ex.uiUrl}/api/traces/${traceId}/spans/${spanId}`)).json()) as { resource: Record<string, unknown> };
    assert.equal(t.spans.length, 1);
    return { span: t.spans[0]!, resource: s.resource };
  }
  const own = (o: object, k: string) => Object.getOwnPropertyDescriptor(o, k)?.value as unknown;

  const protoAttributes = [
    { key: '__proto__', value: { stringValue: 'a string' } },
    { key: 'constructor', value: { stringValue: 'c' } },
    { key: 'nested', value: { kvlistValue: { values: [{ key: '__proto__', value: { intValue: 7 } }] } } },
  ];

  test('OTLP/JSON', async () => {
    const span = validSpan({ attributes: protoAttributes, events: [{ timeUnixNano: '1500', name: 'e', attributes: [{ key: '__proto__', value: { kvlistValue: { values: [{ key: 'polluted', value: { boolValue: true } }] } } }] }] });
    const r = await postJson(oneSpan(span, { attributes: [{ key: 'service.name', value: { stringValue: 'proto-json' } }, { key: '__proto__', value: { stringValue: 'resource' } }] }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const { span: got, resource } = await stored(span['traceId'] as string, span['spanId'] as string);
    assert.equal(own(got.attributes, '__proto__'), 'a string');
    assert.equal(own(got.attributes, 'constructor'), 'c');
    assert.deepEqual(Object.entries(own(got.attributes, 'nested') as object), [['__proto__', 7]]);
    assert.deepEqual(Object.entries(own(got.events[0]!.attributes, '__proto__') as object), [['polluted', true]]);
    assert.equal(own(resource, '__proto__'), 'resource');
  });

  test('protobuf', async () => {
    const traceId = Buffer.alloc(16, 0x3c);
    const spanId = Buffer.alloc(8, 0x4d);
    const body = ExportTraceServiceRequest.encode(
      ExportTraceServiceRequest.fromObject({
        resourceSpans: [
          {
            resource: { attributes: [{ key: '__proto__', value: { kvlistValue: { values: [{ key: 'x', value: { stringValue: 'y' } }] } } }] },
            scopeSpans: [{ spans: [{ traceId, spanId, name: 'proto', startTimeUnixNano: 1, endTimeUnixNano: 2, attributes: protoAttributes }] }],
          },
        ],
      }),
    ).finish();
    const r = await fetch(`${ex.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body });
    assert.equal(r.status, 200);
    const { span, resource } = await stored(traceId.toString('hex'), spanId.toString('hex'));
    assert.equal(own(span.attributes, '__proto__'), 'a string');
    assert.deepEqual(Object.entries(own(span.attributes, 'nested') as object), [['__proto__', 7]]);
    assert.deepEqual(Object.entries(own(resource, '__proto__') as object), [['x', 'y']]);
  });
});
