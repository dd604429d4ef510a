import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { freshDatabase } from './support/db.js';
import { startOtlpJsonReceiver, otlpEnv } from './support/otlp.js';
import { CLI_DIR, startApi, startWorker } from './support/procs.js';
import { rebuildSearch } from '../src/cli/commands/rebuild.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(CLI_DIR, 'loomtrace.js'), ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

test('rebuild while edits continue: the index ends equal to the source of truth, no version ever goes down, and the rebuild is one trace', { timeout: 180_000 }, async (t) => {
  const db = await freshDatabase('ops_rebuild');
  t.after(() => db.drop());
  const otlp = await startOtlpJsonReceiver();
  t.after(() => otlp.close());
  const api = await startApi(db.url);
  t.after(() => api.stop());
  const worker = await startWorker(db.url, { METRICS_PORT: '-1', WORKER_POLL_MS: '100', WORKER_BATCH_SIZE: '20' });
  t.after(() => worker.stop());

  const call = async (method: string, p: string, body?: object) => {
    const r = await fetch(`${api.url}/api/v1${p}`, { method, ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });
    return { status: r.status, json: r.status === 204 ? undefined : ((await r.json()) as { id: string; version: number }) };
  };
  const libA = (await call('POST', '/libraries', { name: 'a' })).json!.id;
  const libB = (await call('POST', '/libraries', { name: 'b' })).json!.id;
  const bookA = (await call('POST', '/books', { library_id: libA, title: 'a' })).json!.id;
  const bookB = (await call('POST', '/books', { library_id: libB, title: 'b' })).json!.id;
  const ids: string[] = [];
  for (let i = 0; i < 60; i++) ids.push((await call('POST', '/blocks', { book_id: i % 3 ? bookA : bookB, block_type: 'text', content: `block ${i}` })).json!.id);

  // The index is lost (a new cluster, a corrupted projection…): only the rebuild can bring the
  // unchanged blocks back.
  const drained = async () => {
    for (let i = 0; i < 400; i++) {
      const { rows } = await db.pool.query<{ n: number }>(`select count(*)::int as n from loomtrace.outbox where state in ('pending', 'claimed')`);
      if (rows[0]!.n === 0) return;
      await sleep(50);
    }
    throw new Error('outbox did not drain');
  };
  await drained();
  await db.pool.query('delete from search.blocks');

  // Watch the index: a version seen once must never be followed by a lower one.
  const highest = new Map<string, number>();
  const regressions: string[] = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      const { rows } = await db.pool.query<{ block_id: string; version: string }>('select block_id, version::text from search.blocks');
      for (const r of rows) {
        const v = Number(r.version);
        const h = highest.get(r.block_id) ?? 0;
        if (v < h) regressions.push(`${r.block_id}: ${h} -> ${v}`);
        else highest.set(r.block_id, v);
      }
      await sleep(10);
    }
  })();

  // Live edits through the real API while the rebuild runs.
  let editing = true;
  let edits = 0;
  const editor = (async () => {
    let k = 0;
    while (editing) {
      const id = ids[k++ % ids.length]!;
      if (k % 17 === 0) {
        await call('DELETE', `/blocks/${id}`);
      } else {
        await call('PATCH', `/blocks/${id}`, { content: `edit ${k}` });
      }
      if (k % 11 === 0) ids.push((await call('POST', '/blocks', { book_id: bookA, block_type: 'text', content: `new ${k}` })).json!.id);
      edits++;
    }
  })();
  await sleep(200);
  const res = await runCli(['rebuild', '--batch-size', '7'], { DATABASE_URL: db.url, ...otlpEnv(otlp.url, 'loomtrace-rebuild') });
  await sleep(200);
  editing = false;
  await editor;
  assert.equal(res.code, 0, res.stderr);
  assert.match(res.stdout, /^rebuild: \d+\/\d+ blocks \(\d+%\)/m, 'progress is shown per batch');
  assert.match(res.stdout, /rebuild done: \d+ blocks in \d+ batches/);
  assert.ok(edits > 5, `edits kept coming during the rebuild (${edits})`);

  await drained();
  await sleep(100);
  watching = false;
  await watcher;
  assert.deepEqual(regressions, [], 'no indexed version ever went down');

  const { rows: diff } = await db.pool.query(
    `select coalesce(b.id, s.block_id) as id, b.version as source_version, s.version as index_version
       from wordloom.blocks b full join search.blocks s on s.block_id = b.id
      where s.block_id is null or b.id is null or s.version <> b.version
         or s.deleted <> (b.deleted_at is not null)
         or (b.deleted_at is null and (s.content is distinct from b.content or s.library_id <> b.library_id))`,
  );
  assert.deepEqual(diff, [], 'the index equals the source of truth');

  // Its own trace: one `rebuild search` root with a child span per batch.
  const until = Date.now() + 10_000;
  let root;
  while (!(root = otlp.spans.find((s) => s.name === 'rebuild search')) && Date.now() < until) await sleep(100);
  assert.ok(root, 'the rebuild exported its span');
  assert.equal(root.service, 'loomtrace-rebuild');
  assert.equal(root.parentSpanId, '');
  const batches = otlp.spans.filter((s) => s.name === 'rebuild search batch' && s.traceId === root.traceId);
  assert.ok(batches.length >= 9, `a span per batch (${batches.length})`);
  assert.ok(batches.every((b) => b.parentSpanId === root.spanId));
  assert.equal(root.attributes['loomtrace.rebuild.read'], batches.reduce((s, b) => s + Number(b.attributes['loomtrace.rebuild.read'] ?? 0), 0));
  assert.ok(res.stdout.includes(root.traceId), 'the command prints its trace id');
});

test('rebuild --library touches only that library', { timeout: 60_000 }, async (t) => {
  const db = await freshDatabase('ops_rebuild_lib');
  t.after(() => db.drop());
  const lib = async (name: string) => (await db.pool.query<{ id: string }>('insert into wordloom.libraries (name) values ($1) returning id', [name])).rows[0]!.id;
  const a = await lib('a');
  const b = await lib('b');
  for (const l of [a, b]) {
    const book = (await db.pool.query<{ id: string }>('insert into wordloom.books (library_id, title) values ($1, $2) returning id', [l, 't'])).rows[0]!.id;
    await db.pool.query(
      `insert into wordloom.blocks (book_id, library_id, block_type, content, version) select $1, $2, 'text', 'x' || g, 3 from generate_series(1, 25) g`,
      [book, l],
    );
  }
  // One block of library a is already indexed at a newer version: the rebuild must leave it.
  const newer = (await db.pool.query<{ id: string; book_id: string }>('select id, book_id from wordloom.blocks where library_id = $1 limit 1', [a])).rows[0]!;
  await db.pool.query(`insert into search.blocks (block_id, library_id, book_id, version, content) values ($1, $2, $3, 9, 'newer')`, [newer.id, a, newer.book_id]);

  const progress: number[] = [];
  const p = await rebuildSearch(db.pool, { libraryId: a, batchSize: 10, onProgress: (q) => progress.push(q.read) });
  assert.deepEqual(progress, [10, 20, 25]);
  assert.deepEqual({ total: p.total, read: p.read, written: p.written, stale: p.stale }, { total: 25, read: 25, written: 24, stale: 1 });
  const { rows } = await db.pool.query<{ library_id: string; n: number }>('select library_id, count(*)::int as n from search.blocks group by library_id');
  assert.deepEqual(rows, [{ library_id: a, n: 25 }]);
  const kept = await db.pool.query<{ version: string; content: string }>('select version::text, content from search.blocks where block_id = $1', [newer.id]);
  assert.deepEqual(kept.rows[0], { version: '9', content: 'newer' });
});
