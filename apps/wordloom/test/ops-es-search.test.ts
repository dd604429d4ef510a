/**
 * Search reads where the worker writes. With SEARCH_BACKEND=elasticsearch|opensearch the API
 * and the worker, as real processes, both use the cluster (through the official clients; a
 * local server replays real-shaped responses, test/support/fakeCluster.ts; no live cluster
 * was used): a block written by the worker is found by /api/v1/search from the cluster's
 * `_search`, with a plain-text snippet and highlight offsets, while the Postgres search table
 * stays empty; a cluster that does not answer is a 503 SEARCH_UNAVAILABLE; and the diagnosis,
 * asked through the Wordloom CLI in the same configuration, says the block is in the index.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshDatabase } from './support/db.js';
import { runCli, startApi, startWorker, type RunResult } from './support/procs.js';
import { until } from './support/wait.js';
import { startFakeCluster } from './support/fakeCluster.js';

function cli(args: string[], env: Record<string, string>): Promise<RunResult> {
  return runCli(args, env);
}

for (const system of ['elasticsearch', 'opensearch'] as const) {
  test(`SEARCH_BACKEND=${system}: /api/v1/search queries the cluster the worker writes`, { timeout: 90_000 }, async (t) => {
    const db = await freshDatabase(`es_search_${system}`);
    t.after(() => db.drop());
    const cluster = await startFakeCluster(system);
    t.after(() => cluster.close());
    const env = { SEARCH_BACKEND: system, [system === 'elasticsearch' ? 'ELASTICSEARCH_URL' : 'OPENSEARCH_URL']: cluster.url, METRICS_PORT: '-1', WORKER_POLL_MS: '50' };
    const api = await startApi(db.url, env);
    t.after(() => api.stop());
    const worker = await startWorker(db.url, env);
    t.after(() => worker.stop());
    const call = async <T>(method: string, p: string, body?: unknown): Promise<T> => {
      const r = await fetch(`${api.url}/api/v1${p}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : undefined });
      assert.ok(r.ok, `${method} ${p}: ${r.status} ${await r.clone().text()}`);
      return (await r.json()) as T;
    };
    const lib = await call<{ id: string }>('POST', '/libraries', { name: 'l' });
    const book = await call<{ id: string }>('POST', '/books', { library_id: lib.id, title: 'b' });
    const block = await call<{ id: string }>('POST', '/blocks', { book_id: book.id, block_type: 'text', content: 'the zebra <b>crossing</b>', position: 0 });
    await call('PATCH', `/blocks/${block.id}`, { content: 'a zebra crossing <img src=x>' });

    const hits = await until('the block found through the cluster', 30_000, async () => {
      const r = await call<{ hits: { block_id: string; version: number; snippet: string; highlights: { start: number; end: number }[]; library_id: string }[] }>('GET', `/search?q=zebra&library_id=${lib.id}`);
      return r.hits.length && r.hits[0]!.version === 2 ? r.hits : undefined;
    });
    assert.equal(hits[0]!.block_id, block.id);
    assert.equal(hits[0]!.library_id, lib.id);
    assert.equal(hits[0]!.snippet, 'a zebra crossing <img src=x>', 'plain text, as stored');
    assert.deepEqual(hits[0]!.highlights.map((h) => hits[0]!.snippet.slice(h.start, h.end)), ['zebra']);
    assert.ok(cluster.requests.some((r) => r.method === 'POST' && r.path === '/wordloom-blocks/_search'), 'the API asked the cluster');
    assert.equal((await db.pool.query('select count(*)::int n from search.blocks')).rows[0].n, 0, 'nothing writes the Postgres table');
    assert.deepEqual((await call<{ hits: unknown[] }>('GET', `/search?q=zebra&library_id=${'0'.repeat(8)}-0000-4000-8000-000000000000`)).hits, []);

    const why = await cli(['why', 'block', block.id], { DATABASE_URL: db.url, ...env });
    assert.equal(why.code, 0, why.err + why.out);
    assert.match(why.out, new RegExp(`Block is in search at version 2 \\(${system} index wordloom-blocks\\)`));

    await cluster.close();
    const down = await fetch(`${api.url}/api/v1/search?q=zebra`);
    assert.equal(down.status, 503);
    assert.equal(((await down.json()) as { code: string }).code, 'SEARCH_UNAVAILABLE');
  });
}
