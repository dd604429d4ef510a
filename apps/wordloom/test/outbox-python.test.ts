import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { deliver, memoryTracing, processSpan } from './support/deliver.js';

/**
 * A producer in another language: a Python process (Debian's python3 with psycopg 3) changes its
 * own table and calls `loomtrace.enqueue` in the same transaction with the traceparent of its
 * span; the TypeScript OutboxWorker continues that trace.
 */

const PYTHON = '/usr/bin/python3';
// dist/test → test/support/producer.py (the script is not compiled)
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'support', 'producer.py');

interface PySpan {
  trace_id: string;
  span_id: string;
  traceparent: string;
  event_id: string;
}
interface PyOut {
  committed: PySpan;
  rolled_back: PySpan;
  malformed: { traceparent: string; event_id: string };
}

describe('a Python producer, a TypeScript worker', () => {
  let db: TestDatabase;
  const { exporter, provider } = memoryTracing();
  before(async () => {
    db = await freshDatabase('python');
  });
  after(async () => {
    await db.drop();
    await provider.shutdown();
  });

  it('the Python transaction commits its change and its event together, and the worker continues its trace; the rolled-back event never reaches the sink', async () => {
    const check = await promisify(execFile)(PYTHON, ['-c', 'import psycopg; print(psycopg.__version__)']).catch((e: Error) => {
      throw new Error(`${PYTHON} with psycopg 3 is needed (apt-get install python3-psycopg): ${e.message}`);
    });
    assert.match(check.stdout, /^3\./);

    const { stdout } = await promisify(execFile)(PYTHON, [SCRIPT], { env: { ...process.env, DATABASE_URL: db.url }, timeout: 30_000 });
    const py = JSON.parse(stdout) as PyOut;

    // Python's own table: the committed change is there, the rolled-back one is not.
    const orders = await db.pool.query('select id::int, status, version::int from py_orders order by id');
    assert.deepEqual(orders.rows, [
      { id: 1, status: 'shipped', version: 2 },
      { id: 2, status: 'new', version: 1 },
      { id: 3, status: 'shipped', version: 2 },
    ]);
    const stored = await db.pool.query('select id::text, aggregate_id, traceparent, tracestate from loomtrace.outbox order by id');
    assert.deepEqual(stored.rows, [
      { id: py.committed.event_id, aggregate_id: '1', traceparent: py.committed.traceparent, tracestate: 'py=1' },
      { id: py.malformed.event_id, aggregate_id: '3', traceparent: null, tracestate: null },
    ]);

    exporter.reset();
    const seen = await deliver(db.pool, 'orders', [py.committed.event_id, py.malformed.event_id]);
    assert.deepEqual(seen.map((e) => [e.aggregateId, e.aggregateVersion, e.payload]).sort(), [
      ['1', 2, { status: 'shipped' }],
      ['3', 2, { status: 'shipped' }],
    ]);
    assert.ok(!seen.some((e) => e.aggregateId === '2' || e.traceparent?.includes(py.rolled_back.trace_id)), 'the rolled-back event never reaches the sink');

    const spans = exporter.getFinishedSpans();
    // The worker's span is the child of the Python span, in its trace, with its tracestate and attributes.
    const proc = processSpan(spans, 'orders', py.committed.event_id);
    assert.equal(proc.spanContext().traceId, py.committed.trace_id);
    assert.equal(proc.parentSpanContext?.spanId, py.committed.span_id);
    assert.equal(proc.parentSpanContext?.isRemote, true);
    assert.equal(proc.spanContext().traceState?.get('py'), '1');
    assert.equal(proc.attributes['tenant'], 'acme');
    assert.equal(proc.attributes['loomtrace.request.id'], 'req-1');
    assert.ok(!spans.some((s) => s.spanContext().traceId === py.rolled_back.trace_id), 'nothing of the rolled-back trace');

    // The malformed traceparent was dropped: the worker started a new trace there.
    const fresh = processSpan(spans, 'orders', py.malformed.event_id);
    assert.equal(fresh.parentSpanContext, undefined);
    assert.notEqual(fresh.spanContext().traceId, py.committed.trace_id);
  });
});
