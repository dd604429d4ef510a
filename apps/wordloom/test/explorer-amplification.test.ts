/**
 * Decode amplification: a small gzip body that would decode into millions of objects (empty
 * spans, empty attributes, repeated bytes fields, a JSON array of `{}`) is refused from a
 * count taken on the wire, quickly, with bounded memory, while the UI/API keeps answering.
 * Against a real explorer process with its default limits.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { memoryMiB, startExplorerProcess } from './support/explorerProc.js';
import type { Proc } from './support/procs.js';
import { sleep } from './support/wait.js';
import { ExportTraceServiceRequest, RpcStatus } from '@loomtrace/explorer/internal';

let db: TestDatabase;
let ex: Proc & { uiUrl: string; otlpUrl: string; pid: number };
let baselinePeak = 0;
/** Default limits of the explorer process. */
const MAX_SPANS = 50_000;
const CAP = 32 * 1024 * 1024;

before(async () => {
  db = await freshDatabase('explorer_amplification');
  ex = await startExplorerProcess(db.url);
  baselinePeak = memoryMiB(ex.pid).peak;
});
after(async () => {
  await ex?.stop();
  await db?.drop();
});

/** Protobuf wire format by hand: a varint, and a length-delimited field. */
function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}
const field = (no: number, inner: Buffer) => Buffer.concat([varint((no << 3) | 2), varint(inner.length), inner]);
/** `count` copies of a two-byte field (tag, zero length): an empty message or empty bytes. */
const repeated = (tag: number, count: number) => Buffer.alloc(count * 2, Buffer.from([tag, 0]));
/** ExportTraceServiceRequest { resource_spans { scope_spans { <scopeSpansBody> } } } */
const request = (scopeSpansBody: Buffer) => field(1, field(2, scopeSpansBody));
/** One Span with valid ids and times, then `extra` appended inside it. */
function spanWith(extra: Buffer): Buffer {
  const head = ExportTraceServiceRequest.root.lookupType('opentelemetry.proto.Span').encode({
    traceId: Buffer.alloc(16, 0xab),
    spanId: Buffer.alloc(8, 0xcd),
    name: 'amplified',
    startTimeUnixNano: 1,
    endTimeUnixNano: 2,
  }).finish();
  return field(2, Buffer.concat([head, extra]));
}

interface Answer {
  status: number;
  ms: number;
  message: string;
}

/** Posts `body`, gzipped already when `gzipped`. */
async function post(body: Buffer, json: boolean, gzipped = false): Promise<Answer> {
  const t0 = performance.now();
  const r = await fetch(`${ex.otlpUrl}/v1/traces`, {
    method: 'POST',
    headers: { 'content-type': json ? 'application/json' : 'application/x-protobuf', ...(gzipped ? { 'content-encoding': 'gzip' } : {}) },
    body,
    signal: AbortSignal.timeout(120_000),
  });
  const raw = Buffer.from(await r.arrayBuffer());
  const ms = performance.now() - t0;
  let message = raw.toString();
  if (!json && r.status !== 200) message = (RpcStatus.toObject(RpcStatus.decode(raw)) as { message?: string }).message ?? '';
  else if (json) message = (JSON.parse(message) as { message?: string }).message ?? message;
  return { status: r.status, ms, message };
}

/** Runs `work` while polling /api/status every 50 ms; the slowest poll, in ms. */
async function whilePolling<T>(work: () => Promise<T>): Promise<{ result: T; slowestMs: number; polls: number }> {
  let done = false;
  let slowestMs = 0;
  let polls = 0;
  const poller = (async () => {
    while (!done) {
      const t0 = performance.now();
      try {
        const r = await fetch(`${ex.uiUrl}/api/status`, { signal: AbortSignal.timeout(10_000) });
        assert.equal(r.status, 200);
        await r.json();
      } catch (err) {
        if ((err as Error).name !== 'TimeoutError') throw err;
      }
      slowestMs = Math.max(slowestMs, performance.now() - t0);
      polls++;
      await sleep(50);
    }
  })();
  try {
    const result = await work();
    return { result, slowestMs, polls };
  } finally {
    done = true;
    await poller;
  }
}

/** Sends `body` (gzipped) and checks the refusal is quick, the API answered meanwhile, memory stayed bounded. */
async function refusedQuickly(t: TestContext, label: string, body: Buffer, json: boolean, status: number, message: RegExp): Promise<void> {
  assert.ok(body.length <= CAP, `${label}: ${body.length} bytes is inside the decompressed cap`);
  const gzipped = gzipSync(body, { level: 9 });
  assert.ok(gzipped.length < 64 * 1024, `${label}: ${gzipped.length} bytes of gzip`);
  const { result, slowestMs, polls } = await whilePolling(() => post(gzipped, json, true));
  assert.equal(result.status, status, `${label}: answered ${result.status} (${result.message})`);
  assert.match(result.message, message, label);
  assert.ok(result.ms < 5_000, `${label}: answered in ${Math.round(result.ms)} ms`);
  assert.ok(polls >= 1 && slowestMs < 1_000, `${label}: /api/status took up to ${Math.round(slowestMs)} ms over ${polls} polls`);
  const mem = memoryMiB(ex.pid);
  t.diagnostic(`${label} (${gzipped.length} bytes of gzip): ${result.status} in ${Math.round(result.ms)} ms; /api/status at most ${Math.round(slowestMs)} ms over ${polls} polls; peak RSS ${Math.round(mem.peak)} MiB (${Math.round(baselinePeak)} after start)`);
  assert.ok(mem.peak - baselinePeak < 256, `${label}: peak RSS ${Math.round(mem.peak)} MiB, ${Math.round(mem.peak - baselinePeak)} MiB over the ${Math.round(baselinePeak)} MiB after start`);
}

describe('explorer receiver: decode amplification', () => {
  test('16.7 M empty spans in 32 KiB of gzip get 413 from a count on the wire', async (t) => {
    const body = request(repeated(0x12, 16_700_000));
    await refusedQuickly(t, 'empty spans', body, false, 413, new RegExp(`more than ${MAX_SPANS} spans`));
  });

  test('one span with 16.7 M empty attributes, 16.7 M repeated trace ids, or 990,000 empty events gets 413', async (t) => {
    // Span.attributes is field 9 (tag 0x4a), Span.trace_id field 1 (tag 0x0a), Span.events field 11 (tag 0x5a).
    await refusedQuickly(t, 'empty attributes', request(spanWith(repeated(0x4a, 16_700_000))), false, 413, /values/);
    await refusedQuickly(t, 'repeated bytes field', request(spanWith(repeated(0x0a, 16_700_000))), false, 413, /values/);
    // Each empty event is an object and its attribute array: 1.98 M objects from 1.98 MB.
    await refusedQuickly(t, 'empty events', request(spanWith(repeated(0x5a, 990_000))), false, 413, /values/);
  });

  test('OTLP/JSON: 10 M `{}` spans, or 16 M numbers, get 413 before JSON.parse', async (t) => {
    const wrap = (items: string, n: number) => Buffer.from(`{"resourceSpans":[{"scopeSpans":[{"spans":[${`${items},`.repeat(n - 1)}${items}]}]}]}`);
    await refusedQuickly(t, 'JSON {} spans', wrap('{}', 11_000_000), true, 413, /values/);
    await refusedQuickly(t, 'JSON numbers', wrap('0', 16_000_000), true, 413, /values/);
  });

  test('the span limit is exact: 50,000 spans are stored, 50,001 get 413', async () => {
    const spans = (n: number, base: number) =>
      Array.from({ length: n }, (_, i) => ({
        traceId: Buffer.from((base + i).toString(16).padStart(32, '7'), 'hex'),
        spanId: Buffer.from((i + 1).toString(16).padStart(16, '0'), 'hex'),
        name: 'at the limit',
        startTimeUnixNano: 1_000 + i,
        endTimeUnixNano: 2_000 + i,
      }));
    const encode = (n: number, base: number) => Buffer.from(ExportTraceServiceRequest.encode({ resourceSpans: [{ scopeSpans: [{ spans: spans(n, base) }] }] }).finish());
    const over = await post(encode(MAX_SPANS + 1, 0x100000), false);
    assert.equal(over.status, 413, over.message);
    assert.match(over.message, /more than 50000 spans/);
    const atLimit = await post(encode(MAX_SPANS, 0x200000), false);
    assert.equal(atLimit.status, 200, atLimit.message);
    const { rows } = await db.pool.query<{ n: number }>("select count(*)::int as n from explorer.spans where name = 'at the limit'");
    assert.equal(rows[0]!.n, MAX_SPANS);
  });
});
