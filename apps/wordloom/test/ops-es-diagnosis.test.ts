/**
 * The diagnosis where the worker writes to Elasticsearch or OpenSearch: the search sink
 * answers "what do you hold for this block" with a document GET through the official client
 * (the external version is the block version), against a local server replaying real-shaped
 * cluster responses (test/support/fakeCluster.ts: 200 `found`, 404 `found: false`, 404
 * `index_not_found_exception`, 409 `version_conflict_engine_exception` bulk items). No live
 * cluster was used. An acked block is "in search at its version", not "bug"; the Wordloom CLI
 * with SEARCH_BACKEND=elasticsearch asks the cluster too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OutboxWorker } from '@loomtrace/outbox';
import { compileExplorerOptions, startExplorer, type Diagnosis } from '@loomtrace/explorer';
import { freshDatabase } from './support/db.js';
import { runCli, type RunResult } from './support/procs.js';
import { until } from './support/wait.js';
import { startFakeCluster } from './support/fakeCluster.js';
import { createBlock, patchBlock, removeBlock } from '../src/service/blocks.js';
import { insertLibrary } from '../src/service/sql/insertLibrary.js';
import { insertBook } from '../src/service/sql/insertBook.js';
import { elasticsearchClient, opensearchClient } from '../src/projection/elasticsearch/clients.js';
import { ClusterSearchSink } from '../src/projection/elasticsearch/sink.js';
import { wordloomPipelines } from '../src/pipeline.js';
import { SEARCH_PROJECTION } from '../src/service/model.js';

const INDEX = 'wordloom-blocks';

function cli(args: string[], env: Record<string, string>): Promise<RunResult> {
  return runCli(args, env);
}

for (const system of ['elasticsearch', 'opensearch'] as const) {
  test(`${system}: the sink's inspection through the official client, and the diagnosis of acked blocks`, { timeout: 90_000 }, async (t) => {
    const db = await freshDatabase(`es_diag_${system}`);
    t.after(() => db.drop());
    const cluster = await startFakeCluster(system);
    t.after(() => cluster.close());
    const client = system === 'elasticsearch' ? elasticsearchClient({ url: cluster.url }) : opensearchClient({ url: cluster.url });
    const sink = new ClusterSearchSink(client, { index: INDEX });
    t.after(() => sink.close());
    const declared = wordloomPipelines(db.pool, { backend: system, url: cluster.url, index: INDEX });
    t.after(() => declared.close());
    const ex = await startExplorer(db.pool, compileExplorerOptions({ port: 0, otlpPort: 0 }), undefined, { pipelines: declared.pipelines });
    t.after(() => ex.close());
    const diagnose = async (id: string, q = '') => (await (await fetch(`${ex.uiUrl}/api/diagnosis/block/${id}${q}`)).json()) as Diagnosis;

    // Before any write the index does not exist: a 404 index_not_found_exception means "holds nothing".
    assert.equal(await sink.inspect('00000000-0000-4000-8000-000000000001'), null);
    const lib = await insertLibrary(db.pool, 'es');
    const bookId = (await insertBook(db.pool, lib.id, 'book'))!.id;
    const changed = (await createBlock(db.pool, 'r1', { bookId, blockType: 'text', content: 'alpha words', position: 0 }))!.id;
    await patchBlock(db.pool, 'r2', changed, { content: 'alpha words again' });
    const raced = (await createBlock(db.pool, 'r3', { bookId, blockType: 'text', content: 'beta', position: 1 }))!.id;
    await patchBlock(db.pool, 'r4', raced, { content: 'beta two' });
    const gone = (await createBlock(db.pool, 'r5', { bookId, blockType: 'text', content: 'gamma', position: 2 }))!.id;
    await removeBlock(db.pool, 'r6', gone);
    // Another writer already put `raced` at version 2: both of its events meet a 409 version conflict (stale, acked).
    cluster.indexExists = true;
    cluster.docs.set(raced, { version: 2, source: { block_id: raced, library_id: lib.id, book_id: bookId, version: 2, block_type: 'text', content: 'beta two' } });

    const worker = new OutboxWorker({ pool: db.pool, projection: SEARCH_PROJECTION, sink, pollIntervalMs: 20, listen: false, workerId: `w-${system}` });
    await worker.start();
    try {
      await until('every event acked', 20_000, async () => (await db.pool.query(`select count(*)::int n from loomtrace.outbox where state <> 'done'`)).rows[0].n === 0);
    } finally {
      await worker.stop();
    }
    assert.equal(cluster.conflicts, 2, 'both events of the raced block were answered 409 version_conflict_engine_exception');

    // The sink answers from a document GET: found with its external version, or nothing.
    assert.deepEqual(await sink.inspect(changed), { version: 2, deleted: false, at: null, eventId: null, where: `${system} index ${INDEX}` });
    assert.equal(await sink.inspect('00000000-0000-4000-8000-000000000002'), null, '404 found:false');
    assert.ok(cluster.requests.some((r) => r.method === 'GET' && r.path === `/${INDEX}/_doc/${changed}`));

    const d = await diagnose(changed);
    assert.equal(d.kind, 'visible', d.verdict);
    assert.match(d.verdict, new RegExp(`^Block is in search at version 2 \\(${system} index ${INDEX}\\), acked \\d+(\\.\\d)? (ms|s) after the change\\.$`));
    assert.equal(d.system, system);
    assert.deepEqual(d.projected, { version: 2, deleted: false, at: null, eventId: null, where: `${system} index ${INDEX}` });
    assert.ok(d.steps.every((s) => s.status === 'done'), JSON.stringify(d.steps));

    const r = await diagnose(raced);
    assert.equal(r.kind, 'visible', `acked after a version conflict: ${r.verdict}`);
    assert.match(r.verdict, /^Block is in search at version 2 /);
    const rOld = await diagnose(raced, '?version=1');
    assert.equal(rOld.kind, 'superseded', 'version 1 was acked as stale: the index holds 2');
    assert.match(rOld.verdict, new RegExp(`^Version 1 was superseded: search already holds version 2 \\(${system} index ${INDEX}\\)\\.$`));

    const g = await diagnose(gone);
    assert.equal(g.kind, 'deleted_and_removed', g.verdict);
    assert.match(g.verdict, /^The block was deleted \(version 2\) and search removed it, acked \d+(\.\d)? (ms|s) after the change\.$/);

    // The cluster lost the document although the event was acked: a real "bug" verdict.
    cluster.docs.delete(changed);
    const lost = await diagnose(changed);
    assert.equal(lost.kind, 'bug_index_behind');
    assert.match(lost.verdict, /^Bug: event \d+ was acked at .* but search has no row for the block, behind version 2\.$/);

    // The cluster does not answer: the diagnosis says it cannot tell, never "bug".
    cluster.failGets = 503;
    const down = await diagnose(raced);
    assert.equal(down.kind, 'projection_unavailable');
    assert.match(down.verdict, /^Event \d+ was acked at .*, but search did not answer \(.*503.*\): cannot tell whether it holds version 2\.$/);
    cluster.failGets = undefined;

    if (system === 'elasticsearch') {
      // The Wordloom CLI, configured like the worker (SEARCH_BACKEND), asks the cluster.
      const env = { DATABASE_URL: db.url, SEARCH_BACKEND: 'elasticsearch', ELASTICSEARCH_URL: cluster.url };
      const ok = await cli(['why', 'block', raced], env);
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /Block is in search at version 2 \(elasticsearch index wordloom-blocks\)/);
      const bad = await cli(['why', 'block', changed], env);
      assert.equal(bad.code, 1, bad.err);
      assert.match(bad.out, /Bug: event \d+ was acked/);
    }
  });
}
