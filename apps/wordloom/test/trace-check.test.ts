/**
 * Trace-shape checks usable in CI. A real PATCH through the API and worker processes,
 * exported to the explorer: `loomtrace check block <id>` finds the change's trace in the store
 * and passes it; the same trace written as OTLP/JSON (one export request per line, as a
 * Collector's file exporter writes) passes `check --file`, and with a span taken out, an
 * attribute taken out, or two spans swapped in time it fails naming exactly that. The test
 * helper (`assertTraceShape`) says the same in one line.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assertTraceShape, compileExplorerOptions, selectTraceJson, startExplorer, type RunningExplorer } from '@loomtrace/explorer';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { freePort, runCli, startApi, startWorker, type Proc, type RunResult } from './support/procs.js';
import { otlpEnv } from './support/otlp.js';
import { until } from './support/wait.js';
import { wordloomPipelines } from '../src/pipeline.js';
import { BLOCK_TRACE_SHAPE } from '../src/traceShape.js';

type StoredSpan = { traceId: string; spanId: string; parentSpanId: string | null; name: string; kind: number; service: string; startTimeUnixNano: string; endTimeUnixNano: string; attributes: Record<string, unknown> };

let db: TestDatabase;
let ex: RunningExplorer;
let api: Proc & { url: string };
let worker: Proc;
let dir: string;
let blockId: string;
let stored: StoredSpan[];
const TRACE = 'c0ffee00c0ffee00c0ffee00c0ffee00';

before(async () => {
  db = await freshDatabase('trace_check');
  ex = await startExplorer(db.pool, compileExplorerOptions({ port: 0, otlpPort: await freePort() }), undefined, { pipelines: wordloomPipelines(db.pool).pipelines });
  api = await startApi(db.url, otlpEnv(ex.otlpUrl, 'wordloom-api'));
  worker = await startWorker(db.url, { ...otlpEnv(ex.otlpUrl, 'wordloom-worker'), METRICS_PORT: '-1', WORKER_POLL_MS: '50' });
  dir = mkdtempSync(path.join(tmpdir(), 'loomtrace-check-'));
});
after(async () => {
  await Promise.all([api?.stop(), worker?.stop()]);
  await ex?.close();
  await db?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string> = { DATABASE_URL: db.url }): Promise<RunResult> {
  return runCli(args, { DATABASE_URL: undefined, ...env });
}

/** Stored spans back to OTLP/JSON export requests, one per service, one per line. */
function otlpLines(spans: StoredSpan[]): string {
  const services = [...new Set(spans.map((s) => s.service))];
  return services
    .map((service) => JSON.stringify({
      resourceSpans: [{
        resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] },
        scopeSpans: [{ spans: spans.filter((s) => s.service === service).map((s) => ({
          traceId: s.traceId, spanId: s.spanId, ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}), name: s.name, kind: s.kind,
          startTimeUnixNano: s.startTimeUnixNano, endTimeUnixNano: s.endTimeUnixNano,
          attributes: Object.entries(s.attributes).map(([key, v]) => ({ key, value: typeof v === 'number' ? (Number.isInteger(v) ? { intValue: String(v) } : { doubleValue: v }) : typeof v === 'boolean' ? { boolValue: v } : { stringValue: String(v) } })),
        })) }],
      }],
    }))
    .join('\n');
}

describe('trace-shape checks', () => {
  test('a real PATCH: `loomtrace check block <id>` passes the stored trace', { timeout: 60_000 }, async () => {
    const call = async (method: string, p: string, body: unknown, headers: Record<string, string> = {}) => {
      const r = await fetch(`${api.url}/api/v1${p}`, { method, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
      assert.ok(r.ok, `${method} ${p}: ${r.status}`);
      return (await r.json()) as { id: string };
    };
    const lib = await call('POST', '/libraries', { name: 'c' });
    const book = await call('POST', '/books', { library_id: lib.id, title: 'b' });
    blockId = (await call('POST', '/blocks', { book_id: book.id, block_type: 'text', content: 'x' })).id;
    await call('PATCH', `/blocks/${blockId}`, { content: 'y' }, { traceparent: `00-${TRACE}-1111111111111111-01`, 'x-request-id': 'req-check' });
    stored = await until('the whole change stored', 30_000, async () => {
      const spans = JSON.parse((await selectTraceJson(db.pool, TRACE, 1000)).spans) as StoredSpan[];
      // Every declared span, the API's included: the API and the worker export on their own
      // schedules, and the worker's spans can be stored before the API's.
      const all = BLOCK_TRACE_SHAPE.every((d) => spans.some((s) => s.name === d.name && s.service === d.service));
      return all && spans.some((s) => s.name === 'process search' && s.attributes['loomtrace.ack.rows_affected'] !== undefined) ? spans : undefined;
    });
    const r = await cli(['check', 'block', blockId]);
    assert.equal(r.code, 0, r.err + r.out);
    assert.equal(r.out.trim(), `trace ${TRACE}: all ${BLOCK_TRACE_SHAPE.length} declared spans present, with their attributes, in order`);
    assert.equal((await cli(['check', 'block', '--trace', TRACE, '--json'])).code, 0);
    assert.equal((await cli(['check', 'block', '--trace', 'f'.repeat(32)])).code, 1, 'no spans stored');
    assert.equal((await cli(['check', 'invoice', blockId])).code, 2);
    assert.doesNotThrow(() => assertTraceShape(stored, BLOCK_TRACE_SHAPE));
  });

  test('`check --file` on captured OTLP: a correct trace passes; a missing span, a missing attribute, spans out of order fail by name', async () => {
    const write = (name: string, spans: StoredSpan[]) => {
      const f = path.join(dir, name);
      writeFileSync(f, otlpLines(spans));
      return f;
    };
    // No database needed for a file.
    const ok = await cli(['check', 'block', '--file', write('ok.jsonl', stored)], {});
    assert.equal(ok.code, 0, ok.err + ok.out);

    const noWrite = await cli(['check', 'block', '--file', write('no-write.jsonl', stored.filter((s) => s.name !== 'write search')), '--json'], {});
    assert.equal(noWrite.code, 1);
    assert.deepEqual((JSON.parse(noWrite.out) as { problems: { span: string; problem: string }[] }).problems.filter((p) => p.problem === 'missing_span'), [{ span: 'write search', problem: 'missing_span', detail: 'no span named "write search" from wordloom-worker in the trace' }]);

    const stripped = stored.map((s) => (s.name === 'ack search' ? { ...s, attributes: Object.fromEntries(Object.entries(s.attributes).filter(([k]) => k !== 'loomtrace.ack.rows_affected')) } : s));
    const noAttr = await cli(['check', 'block', '--file', write('no-attr.jsonl', stripped)], {});
    assert.equal(noAttr.code, 1);
    assert.match(noAttr.out, /1 problem\(s\)\n  ✘ missing_attribute\s+"ack search" lacks attribute loomtrace\.ack\.rows_affected\n$/);

    const write0 = stored.find((s) => s.name === 'write search')!;
    const swapped = stored.map((s) => (s.name === 'ack search' ? { ...s, startTimeUnixNano: String(BigInt(write0.startTimeUnixNano) - 1_000_000n) } : s));
    const order = await cli(['check', 'block', '--file', write('order.jsonl', swapped)], {});
    assert.equal(order.code, 1);
    assert.match(order.out, /✘ out_of_order\s+"ack search" starts before "write search" \(1 ms earlier\)/);

    // The helper a user's CI calls in one line says the same.
    assert.throws(() => assertTraceShape(stripped, BLOCK_TRACE_SHAPE), /"ack search" lacks attribute loomtrace\.ack\.rows_affected/);
    const bad = await cli(['check', 'block', '--file', path.join(dir, 'absent.json')], {});
    assert.equal(bad.code, 2);
    assert.match(bad.err, /cannot read/);
  });
});
