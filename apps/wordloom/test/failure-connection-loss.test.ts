import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { freePort, startApi, startProcess, startWorker, type Proc } from './support/procs.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How many backends wait behind `holder`'s locks, directly or behind another waiter (bounded wait for `n`). */
async function waitBlocked(holder: pg.Client, n: number, alive: () => boolean): Promise<number> {
  let blocked = 0;
  for (let t = 0; t < 300 && blocked < n && alive(); t++) {
    // Inside a transaction pg_stat_activity is a snapshot taken at its first read: clear it each time.
    await holder.query('select pg_stat_clear_snapshot()');
    const { rows } = await holder.query<{ n: number }>(
      `with recursive blocked(pid) as (
         select pid from pg_stat_activity where pg_backend_pid() = any(pg_blocking_pids(pid))
         union
         select a.pid from pg_stat_activity a join blocked b on b.pid = any(pg_blocking_pids(a.pid)))
       select count(*)::int n from blocked`,
    );
    blocked = rows[0]!.n;
    if (blocked < n) await sleep(50);
  }
  return blocked;
}

/** Terminates every other backend of the database; answers how many, by application_name. */
async function terminateAll(holder: pg.Client): Promise<{ app: string; n: number }[]> {
  await holder.query('select pg_stat_clear_snapshot()');
  const { rows } = await holder.query<{ app: string; n: number }>(
    // Materialized first: a plain WHERE may call pg_terminate_backend before excluding our own pid.
    `with victims as materialized (
       select pid, application_name from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid())
     select application_name app, count(*)::int n from victims where pg_terminate_backend(pid) group by 1 order by 1`,
  );
  return rows;
}

interface Answer {
  status: number;
  body: Record<string, unknown> | undefined;
}

/** Every HTTP exchange with the API: an answer, or `dropped` (no answer at all: a dead process). */
class Client {
  readonly answers: Answer[] = [];
  readonly dropped: string[] = [];
  constructor(private readonly base: string) {}

  async call(method: string, path: string, body?: unknown, requestId?: string): Promise<Answer | undefined> {
    try {
      const r = await fetch(`${this.base}${path}`, {
        method,
        ...(body !== undefined ? { headers: { 'content-type': 'application/json', ...(requestId ? { 'x-request-id': requestId } : {}) }, body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(20_000),
      });
      const text = await r.text();
      let parsed: Record<string, unknown> | undefined;
      try {
        parsed = JSON.parse(text) as Record<string, unknown>;
      } catch {
        parsed = undefined;
      }
      const a = { status: r.status, body: parsed };
      this.answers.push(a);
      return a;
    } catch (err) {
      this.dropped.push(`${method} ${path}: ${(err as Error).message} ${String((err as { cause?: unknown }).cause ?? '')}`);
      return undefined;
    }
  }
}

/** Polls `url` until it answers 200 (bounded); returns the last status. */
async function until200(url: string, ms = 15_000): Promise<number> {
  const end = Date.now() + ms;
  let status = 0;
  while (Date.now() < end) {
    try {
      status = (await fetch(url, { signal: AbortSignal.timeout(5_000) })).status;
      if (status === 200) return status;
    } catch {
      status = -1;
    }
    await sleep(200);
  }
  return status;
}

/**
 * Every backend of the database terminated five times, a second apart, while the API takes
 * changes, the worker indexes them and the explorer stores their spans. Each round also holds
 * a row lock so that some API transactions are certainly in flight (a client checked out,
 * mid-transaction) when their connection dies: node-postgres then emits 'error' on that client,
 * which used to kill the API. Every process must stay up, answer 503 JSON during the outage,
 * recover by itself, and lose nothing it acknowledged.
 */
describe('connection loss: every backend terminated, five times, under load', () => {
  let db: TestDatabase;
  const procs: Proc[] = [];
  let killer: pg.Client | undefined;

  after(async () => {
    for (const p of procs) await p.stop();
    await killer?.end().catch(() => undefined);
    await db?.drop();
  });

  it('every process stays up, answers 5xx JSON meanwhile, recovers, and loses nothing acknowledged', async () => {
    db = await freshDatabase('connloss');
    await db.pool.query(`
      create table public.version_violations (block_id uuid, old_version bigint, new_version bigint);
      create function public.guard_version() returns trigger language plpgsql as $$
      begin
        if new.version < old.version then insert into public.version_violations values (old.block_id, old.version, new.version); end if;
        return new;
      end $$;
      create trigger guard_version before update on search.blocks for each row execute function public.guard_version();`);

    const [uiPort, otlpPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
    const explorer = startProcess('explorer', 'explorer.js', { DATABASE_URL: db.url, EXPLORER_PORT: String(uiPort), EXPLORER_OTLP_PORT: String(otlpPort) });
    procs.push(explorer);
    await explorer.waitFor(/explorer listening/, 30_000);
    const tracing = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${otlpPort}`, OTEL_BSP_SCHEDULE_DELAY: '200' };
    const api = await startApi(db.url, tracing);
    procs.push(api);
    const worker = await startWorker(db.url, {
      ...tracing,
      WORKER_ID: 'w-connloss',
      WORKER_LEASE_MS: '3000',
      WORKER_POLL_MS: '200',
      WORKER_BATCH_SIZE: '50',
      METRICS_PORT: String(metricsPort),
      OUTBOX_UPKEEP_INTERVAL_MS: '300',
    });
    procs.push(worker);

    const http = new Client(api.url);
    const lib = await http.call('POST', '/api/v1/libraries', { name: 'connloss' });
    const book = await http.call('POST', '/api/v1/books', { library_id: lib!.body!['id'], title: 'connloss' });
    const bookId = book!.body!['id'] as string;
    /** Every change the API acknowledged: block → version → content. */
    const acked = new Map<string, Map<number, string>>();
    const ack = (a: Answer | undefined) => {
      if (!a || a.status >= 300 || !a.body) return;
      const id = a.body['id'] as string;
      if (!acked.has(id)) acked.set(id, new Map());
      acked.get(id)!.set(a.body['version'] as number, a.body['content'] as string);
    };
    const blocks: string[] = [];
    for (let i = 0; i < 30; i++) {
      const a = await http.call('POST', '/api/v1/blocks', { book_id: bookId, block_type: 'text', content: `start ${i}` });
      assert.equal(a?.status, 201);
      ack(a);
      blocks.push(a!.body!['id'] as string);
    }
    const hot = blocks[0]!;

    // Load: 6 lanes of PATCHes (and a few new blocks) for ~10 s, bounded in requests too.
    let loading = true;
    let sent = 0;
    const lanes = Array.from({ length: 6 }, async (_, lane) => {
      for (let i = 0; loading && i < 400; i++) {
        sent++;
        if (i % 10 === 9) {
          const a = await http.call('POST', '/api/v1/blocks', { book_id: bookId, block_type: 'text', content: `new ${lane}.${i}` });
          ack(a);
        } else {
          const id = blocks[1 + ((lane * 7 + i) % (blocks.length - 1))]!;
          ack(await http.call('PATCH', `/api/v1/blocks/${id}`, { content: `lane ${lane} change ${i}` }));
        }
        await sleep(15);
      }
    });
    // Scrapes run the queue gauges' queries on the API's and the worker's pools meanwhile.
    const scrapes: number[] = [];
    const scraper = (async () => {
      while (loading) {
        for (const u of [`${api.url}/metrics`, `http://127.0.0.1:${metricsPort}/metrics`]) {
          scrapes.push(await fetch(u).then((r) => r.status, () => -1));
        }
        await sleep(250);
      }
    })();

    // The faults: hold the hot block's row lock, let PATCHes of it queue behind the lock (their
    // transactions open, their clients checked out), then terminate every other backend.
    killer = new pg.Client({ connectionString: db.url });
    killer.on('error', () => undefined);
    await killer.connect();
    const held: Answer[] = [];
    const queuedAtCut: number[] = [];
    const cut: { app: string; n: number }[][] = [];
    for (let round = 0; round < 5; round++) {
      await sleep(1_500);
      await killer.query('begin');
      await killer.query('select 1 from wordloom.blocks where id = $1 for update', [hot]);
      const waiting = Array.from({ length: 3 }, (_, k) => http.call('PATCH', `/api/v1/blocks/${hot}`, { content: `hot ${round}.${k}` }, `hot-${round}-${k}`));
      queuedAtCut.push(await waitBlocked(killer, 3, () => api.proc.exitCode === null));
      cut.push(await terminateAll(killer));
      await killer.query('commit');
      for (const a of await Promise.all(waiting)) if (a) held.push(a);
    }
    loading = false;
    await Promise.all([...lanes, scraper]);

    // No process died; nothing was ever left without an answer.
    for (const p of procs) assert.equal(p.proc.exitCode, null, `${p.name} is still running; its last lines:\n${p.lines.slice(-8).join('\n')}`);
    assert.deepEqual(http.dropped, [], 'every request got an answer (a dead process drops them)');
    for (const round of cut) assert.ok(round.some((r) => r.app === 'wordloom-api' && r.n > 0), `every round cut API connections: ${JSON.stringify(cut)}`);
    assert.ok(cut.some((round) => round.some((r) => r.app === 'wordloom-worker')), `the worker's connections were cut too: ${JSON.stringify(cut)}`);
    assert.ok(cut.some((round) => round.some((r) => r.app === 'loomtrace-explorer')), `the explorer's connections were cut too: ${JSON.stringify(cut)}`);

    // The PATCHes caught mid-transaction (their clients checked out, waiting for the lock when
    // their connections were cut) failed with a clear 503; every other answer is a 2xx or that 503.
    assert.deepEqual(queuedAtCut, [3, 3, 3, 3, 3], 'each round caught three API transactions in flight');
    assert.deepEqual(held.map((a) => `${a.status} ${String(a.body?.['code'])}`), Array(15).fill('503 DATABASE_UNAVAILABLE'));
    const bad = http.answers.filter((a) => a.status >= 300 && !(a.status === 503 && a.body?.['code'] === 'DATABASE_UNAVAILABLE'));
    assert.deepEqual(bad, [], 'a failed request answers 503 DATABASE_UNAVAILABLE, as JSON');
    assert.ok(sent >= 100, `load ran (${sent} requests)`);
    assert.ok(acked.size > 30 && scrapes.length > 0 && scrapes.every((s) => s === 200), `changes acknowledged (${acked.size} blocks) and every metrics scrape answered (${scrapes.join(',')})`);

    // Recovered by themselves.
    assert.equal(await until200(`${api.url}/readyz`), 200, 'API ready again');
    assert.equal(await until200(`http://127.0.0.1:${metricsPort}/readyz`), 200, 'worker ready again');
    assert.equal(await until200(`http://127.0.0.1:${uiPort}/api/status`), 200, 'explorer answers');
    const after = await http.call('PATCH', `/api/v1/blocks/${hot}`, { content: 'after the outage' });
    assert.equal(after?.status, 200, 'the API takes changes again');
    ack(after);

    // Nothing acknowledged is lost: each acknowledged change is in the outbox at its version,
    // with its content, and the source of truth is at least there.
    const ids = [...acked.keys()];
    const truth = new Map(
      (await db.pool.query<{ id: string; version: number; content: string }>('select id, version::int, content from wordloom.blocks where id = any($1)', [ids])).rows.map((r) => [r.id, r]),
    );
    const events = new Set(
      (await db.pool.query<{ k: string }>("select aggregate_id || '@' || aggregate_version || '@' || (payload->>'content') k from loomtrace.outbox where projection = 'search'")).rows.map((r) => r.k),
    );
    for (const [id, versions] of acked) {
      const top = Math.max(...versions.keys());
      assert.ok(truth.get(id) && truth.get(id)!.version >= top, `block ${id} at ${truth.get(id)?.version}, acknowledged at ${top}`);
      for (const [v, c] of versions) assert.ok(events.has(`${id}@${v}@${c}`), `block ${id} version ${v} was acknowledged and is in the outbox`);
    }

    // …and reaches search: every event done once, no lease left, none dead, every block at its
    // newest version with its content, no version ever lowered.
    const end = Date.now() + 60_000;
    for (;;) {
      const { rows } = await db.pool.query<{ open: number; behind: number }>(
        `select (select count(*)::int from loomtrace.outbox where state <> 'done') open,
                (select count(*)::int from wordloom.blocks b left join search.blocks s on s.block_id = b.id
                  where s.version is distinct from b.version or s.content is distinct from b.content) behind`,
      );
      if (rows[0]!.open === 0 && rows[0]!.behind === 0) break;
      assert.ok(Date.now() < end, `not indexed within 60 s: ${JSON.stringify(rows[0])}; worker's last lines:\n${worker.lines.slice(-8).join('\n')}`);
      await sleep(200);
    }
    assert.equal((await db.pool.query('select 1 from loomtrace.outbox_leases')).rowCount, 0, 'no lease left behind');
    assert.ok(worker.lines.some((l) => /LISTEN connection lost/.test(l)), 'the worker saw its connections cut and carried on');
    assert.equal((await db.pool.query('select 1 from public.version_violations')).rowCount, 0, 'no indexed version ever lowered');

    // The explorer stores spans again: the trace of the change made after the outage arrives.
    const requestId = (await db.pool.query<{ request_id: string }>("select request_id from loomtrace.outbox where aggregate_id = $1 and payload->>'content' = 'after the outage'", [hot])).rows[0]?.request_id;
    assert.ok(requestId);
    const spansEnd = Date.now() + 20_000;
    for (;;) {
      const r = await fetch(`http://127.0.0.1:${uiPort}/api/traces?request_id=${requestId}`);
      const body = (await r.json()) as { traces?: unknown[] };
      if (r.status === 200 && (body.traces?.length ?? 0) > 0) break;
      assert.ok(Date.now() < spansEnd, `the explorer stored the spans of the change made after the outage (${r.status})`);
      await sleep(250);
    }
    for (const p of procs) assert.equal(p.proc.exitCode, null, `${p.name} is still running`);
  });
});

/**
 * The explorer alone, its connections cut while a span write and a query are in flight (both
 * waiting behind a lock on the span table, their clients checked out): the OTLP request and the
 * query each answer 503, the process stays up, and the next spans are stored and found.
 */
describe('connection loss: the explorer mid-write and mid-query', () => {
  let db: TestDatabase;
  let explorer: Proc | undefined;
  let holder: pg.Client | undefined;

  after(async () => {
    await explorer?.stop();
    await holder?.end().catch(() => undefined);
    await db?.drop();
  });

  it('answers 503 for the cut write and query, stays up, and stores spans again', async () => {
    db = await freshDatabase('connloss_explorer');
    const [ui, otlp] = [await freePort(), await freePort()];
    explorer = startProcess('explorer', 'explorer.js', { DATABASE_URL: db.url, EXPLORER_PORT: String(ui), EXPLORER_OTLP_PORT: String(otlp) });
    await explorer.waitFor(/explorer listening/, 30_000);
    const post = (traceId: string) =>
      fetch(`http://127.0.0.1:${otlp}/v1/traces`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: '1'.repeat(16), name: 'cut', startTimeUnixNano: '1', endTimeUnixNano: '2' }] }] }] }),
        signal: AbortSignal.timeout(20_000),
      });
    assert.equal((await post('a'.repeat(32))).status, 200);

    holder = new pg.Client({ connectionString: db.url });
    holder.on('error', () => undefined);
    await holder.connect();
    await holder.query('begin');
    await holder.query('lock table explorer.spans in access exclusive mode');
    const write = post('b'.repeat(32));
    const query = fetch(`http://127.0.0.1:${ui}/api/traces/${'a'.repeat(32)}`, { signal: AbortSignal.timeout(20_000) });
    const alive = () => explorer!.proc.exitCode === null;
    assert.equal(await waitBlocked(holder, 2, alive), 2, 'the span write and the query wait behind the lock');
    const cut = await terminateAll(holder);
    await holder.query('commit');
    assert.ok(cut.some((r) => r.app === 'loomtrace-explorer' && r.n >= 2), JSON.stringify(cut));

    const [w, q] = await Promise.all([write, query]);
    assert.equal(w.status, 503, 'the OTLP sender is told to retry');
    assert.ok(w.headers.get('retry-after'));
    assert.equal(q.status, 503, 'the query answers 503, not 500');
    assert.match(String(((await q.json()) as { error?: unknown }).error), /database is unavailable/);
    assert.ok(alive(), `the explorer is still running:\n${explorer.lines.slice(-8).join('\n')}`);

    // It recovers by itself: the retried spans are stored and found.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await post('b'.repeat(32))).status;
      if (status !== 200) await sleep(100);
    }
    assert.equal(status, 200);
    const t = await fetch(`http://127.0.0.1:${ui}/api/traces/${'b'.repeat(32)}`);
    assert.equal(t.status, 200);
    assert.equal(((await t.json()) as { spans: { name: string }[] }).spans[0]?.name, 'cut');
    assert.ok(alive());
  });
});
