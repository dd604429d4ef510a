/**
 * Sampling across the hop (issue 3): parent-based. An unsampled request stores an unsampled
 * traceparent in the outbox row, and the worker's attempt is then unsampled too; the event is
 * still processed. A sampled request gives the worker spans in the same trace.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/db.js';
import { startApi, startWorker } from './support/procs.js';
import { otlpEnv, startOtlpJsonReceiver } from './support/otlp.js';
import { until } from './support/wait.js';

describe('failure semantics: sampling across the hop', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('traceparent flags 00 on the PATCH: unsampled API and worker, the row keeps the flag, the change is still indexed', async () => {
    const db = await freshDatabase('fail_sampling');
    cleanups.push(() => db.drop());
    const otlp = await startOtlpJsonReceiver();
    cleanups.push(() => otlp.close());
    // Ratio 1: every root is sampled, so only the parent's flag can turn a trace off.
    const sampler = { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '1', METRICS_PORT: '-1' };
    const api = await startApi(db.url, { ...otlpEnv(otlp.url, 'wordloom-api'), ...sampler });
    cleanups.push(() => api.stop());
    const worker = await startWorker(db.url, { ...otlpEnv(otlp.url, 'wordloom-worker'), ...sampler, WORKER_ID: 'w-sampling' });
    cleanups.push(() => worker.stop());

    const post = async (path: string, body: unknown) => {
      const r = await fetch(`${api.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      assert.equal(r.status, 201, await r.clone().text());
      return (await r.json()) as { id: string };
    };
    const lib = await post('/api/v1/libraries', { name: 'sampling' });
    const book = await post('/api/v1/books', { library_id: lib.id, title: 'b' });
    const block = await post('/api/v1/blocks', { book_id: book.id, block_type: 'text', content: 'first' });
    const patch = async (traceId: string, flags: '00' | '01', content: string) => {
      const r = await fetch(`${api.url}/api/v1/blocks/${block.id}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json', traceparent: `00-${traceId}-2222222222222222-${flags}` },
        body: JSON.stringify({ content }),
      });
      assert.equal(r.status, 200);
      return ((await r.json()) as { version: number }).version;
    };

    const unsampled = 'b0000000000000000000000000000001';
    const sampled = 'b0000000000000000000000000000002';
    const v1 = await patch(unsampled, '00', 'unsampled words');
    await until('the unsampled change indexed', 20_000, async () => {
      const r = await db.pool.query('select 1 from search.blocks where block_id = $1 and version = $2', [block.id, v1]);
      return r.rowCount ? true : undefined;
    });
    const row = (await db.pool.query<{ traceparent: string }>('select traceparent from loomtrace.outbox where aggregate_id = $1 and aggregate_version = $2', [block.id, v1])).rows[0]!;
    assert.match(row.traceparent, new RegExp(`^00-${unsampled}-[0-9a-f]{16}-00$`), 'the row keeps the trace id and the unsampled flag');

    // A sampled change afterwards: once its worker spans arrived, the unsampled ones would have too.
    await patch(sampled, '01', 'sampled words');
    await until('the sampled worker span', 20_000, async () =>
      otlp.spans.some((s) => s.traceId === sampled && s.service === 'wordloom-worker' && s.name === 'process search') ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(otlp.spans.filter((s) => s.traceId === unsampled).map((s) => `${s.service}:${s.name}`), [], 'nothing recorded for the unsampled request, in either process');
    assert.ok(otlp.spans.some((s) => s.traceId === sampled && s.service === 'wordloom-api'));
  });
});
