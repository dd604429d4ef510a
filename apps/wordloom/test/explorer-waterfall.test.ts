/**
 * The waterfall tells the truth about reclaims and dead workers, in real Chromium, with real
 * processes: a worker holding an event is SIGKILLed; the trace shows its attempt (owner, "worker
 * gone", the lease it held) reconstructed from loomtrace.outbox_attempts, and the rescuer's
 * attempt as reclaimed from it. A second event whose worker is killed is dead-lettered by the
 * reclaim sweep (max attempts 1): its trace says "dead". Every span is reachable with Tab and
 * opens with Enter; every text colour pair is ≥ 4.5:1 in the light and the dark theme; dead
 * letters are listed in numeric order, with their error, trace link and superseded mark.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { spawn } from 'node:child_process';
import { CLI_DIR, startApi, startWorker, type Proc } from './support/procs.js';
import { compileExplorerOptions, startExplorer, type RunningExplorer } from '@loomtrace/explorer';
import { sleep, until } from './support/wait.js';
import { contrastPairs } from './support/contrast.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve('test-artifacts');
const skip = existsSync(CHROMIUM) || process.env['CI'] ? false : `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;

let db: TestDatabase;
let ex: RunningExplorer;
let api: (Proc & { url: string }) | undefined;
const procs: Proc[] = [];
let browser: Browser | undefined;
let page: Page;
let bookId: string;
let otel: Record<string, string>;

async function call<T>(method: string, p: string, body?: unknown): Promise<T> {
  const r = await fetch(`${api!.url}/api/v1${p}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : null });
  assert.ok(r.ok, `${method} ${p}: ${r.status}`);
  return (await r.json()) as T;
}
const j = async <T>(p: string): Promise<T> => (await (await fetch(`${ex.uiUrl}${p}`)).json()) as T;
interface Row { id: string; state: string; lease_owner: string | null; trace_id: string }
const eventOf = async (blockId: string): Promise<Row | undefined> =>
  (await db.pool.query<Row>(`select id::text, state, lease_owner, substr(traceparent, 4, 32) trace_id from loomtrace.outbox_current where aggregate_id = $1 order by id desc limit 1`, [blockId])).rows[0];

async function worker(id: string, env: Record<string, string> = {}): Promise<Proc> {
  const w = await startWorker(db.url, { ...otel, OTEL_SERVICE_NAME: 'wordloom-worker', WORKER_ID: id, WORKER_POLL_MS: '100', METRICS_PORT: '-1', ...env });
  procs.push(w);
  return w;
}

/** A block whose event a victim worker claims and then dies holding (SIGKILL). */
async function killedWhileHolding(victimId: string): Promise<Row> {
  const victim = await worker(victimId, { LOOMTRACE_FAULTS: 'latency:60000' });
  const block = (await call<{ id: string }>('POST', '/blocks', { book_id: bookId, block_type: 'text', content: victimId })).id;
  const ev = await until(`${victimId} to hold the event`, 20_000, async () => {
    const e = await eventOf(block);
    return e?.state === 'claimed' && e.lease_owner === victimId ? e : undefined;
  });
  // The claim's queue wait span is exported in the background: give it a moment.
  await sleep(700);
  victim.proc.kill('SIGKILL');
  await victim.exited;
  return ev;
}

async function groups(): Promise<string[]> {
  return page.$$eval('#waterfall .wf-group', (els) => els.map((e) => e.textContent ?? ''));
}

describe('the waterfall after a dead worker', { skip }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    db = await freshDatabase('explorer_waterfall', { max: 6 });
    ex = await startExplorer(db.pool, compileExplorerOptions({ port: 0, otlpPort: 0 }));
    otel = { OTEL_EXPORTER_OTLP_ENDPOINT: ex.otlpUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_TRACES_EXPORTER: 'otlp', OTEL_BSP_SCHEDULE_DELAY: '100' };
    api = await startApi(db.url, { ...otel, OTEL_SERVICE_NAME: 'wordloom-api' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.on('dialog', () => assert.fail('a dialog opened'));
    const lib = await call<{ id: string }>('POST', '/libraries', { name: 'waterfall' });
    bookId = (await call<{ id: string }>('POST', '/books', { library_id: lib.id, title: 'book' })).id;
  });
  after(async () => {
    await browser?.close();
    for (const p of procs.reverse()) await p.stop(500).catch(() => undefined);
    await api?.stop();
    await ex?.close();
    await db?.drop();
  });

  let reclaimedTrace: string;
  let deadTrace: string;

  test('a SIGKILLed worker\'s attempt: its owner, "worker gone", the lease it held; the next attempt reclaimed from it', async () => {
    const ev = await killedWhileHolding('victim');
    const rescuer = await worker('rescuer');
    await until('the rescuer to ack the event', 20_000, async () => ((await db.pool.query(`select state from loomtrace.outbox where id = $1`, [ev.id])).rows[0]?.state === 'done' ? true : undefined));
    reclaimedTrace = ev.trace_id;
    await until('the rescuer\'s process span stored', 20_000, async () => {
      const t = await j<{ spans?: { name: string; attributes: Record<string, unknown> }[] }>(`/api/traces/${ev.trace_id}`);
      return t.spans?.some((s) => s.name === 'ack search') ? true : undefined;
    });
    await rescuer.stop();
    await page.goto(`${ex.uiUrl}/trace?id=${ev.trace_id}`);
    await page.waitForSelector('#waterfall .wf-row');
    const g = await groups();
    assert.ok(g.some((x) => /^▾attempt 1 · victim · lost · worker gone · reconstructed from the outbox$/.test(x)), g.join(' | '));
    assert.ok(g.some((x) => /^▾attempt 2 · rescuer · done · reclaimed from victim$/.test(x)), g.join(' | '));
    // The lease the victim held is drawn, from its claim to the reclaim.
    const lease = page.locator('.wf-row.lease-row');
    assert.equal(await lease.count(), 1);
    assert.match((await lease.textContent()) ?? '', /lease held by victim.*worker gone; no span exported/);
    assert.equal(await page.textContent('#trace-outcome'), 'done after retries');
    assert.match((await page.title()), /trace [0-9a-f]{8}/);
    // The side panel puts the outbox facts first.
    await page.locator('.wf-row', { has: page.locator('.name', { hasText: 'process search' }) }).click();
    const facts = await page.$$eval('#detail table.facts', (ts) => ts[0]!.textContent ?? '');
    assert.match(facts, /attempt2/);
    assert.match(facts, /previous ownervictim/);
    assert.match(facts, /lease age/);
    // "Why not there?" for the pipeline of the span's own event (its outbox row's aggregate type and projection).
    const why = page.locator('#detail a', { hasText: /^why is this block not in search\?$/ });
    const href = new URL((await why.getAttribute('href'))!, ex.uiUrl);
    assert.deepEqual([href.pathname, href.searchParams.get('type'), href.searchParams.get('projection')], ['/block', 'block', 'search']);
    assert.match(href.searchParams.get('id') ?? '', /^[0-9a-f-]{36}$/);
    await page.locator('.wf-row', { has: page.locator('.name', { hasText: 'ack search' }) }).click();
    assert.match((await page.$$eval('#detail table.facts', (ts) => ts[0]!.textContent ?? '')), /rows affected \(guarded ack\)1/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'waterfall-reclaim.png'), fullPage: true });
  });

  test('an event dead-lettered by the reclaim sweep after its worker died shows "dead" in its trace', async () => {
    const ev = await killedWhileHolding('victim-2');
    const sweeper = await worker('sweeper', { WORKER_MAX_ATTEMPTS: '1' });
    await until('the event dead-lettered', 20_000, async () => ((await db.pool.query(`select state from loomtrace.outbox where id = $1`, [ev.id])).rows[0]?.state === 'dead' ? true : undefined));
    await sweeper.stop();
    deadTrace = ev.trace_id;
    await page.goto(`${ex.uiUrl}/trace?id=${ev.trace_id}`);
    await page.waitForSelector('#waterfall .wf-row');
    assert.equal(await page.textContent('#trace-outcome'), 'dead');
    const g = await groups();
    assert.ok(g.some((x) => /^▾attempt 1 · victim-2 · dead · worker gone · reconstructed from the outbox$/.test(x)), g.join(' | '));
    assert.match((await page.textContent('.wf-row.dead-row')) ?? '', /dead-lettered.*dead after 1 attempt\(s\) · worker gone/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'waterfall-dead.png'), fullPage: true });
    // The event's replay says the same, truthfully labelled, and names the event in its title.
    await page.goto(`${ex.uiUrl}/event?id=${ev.id}`);
    await page.waitForSelector('#timeline tr');
    assert.match(await page.title(), new RegExp(`^Event ${ev.id} · dead`));
    const steps = await page.$$eval('#timeline tr', (els) => els.map((e) => e.textContent ?? ''));
    assert.ok(steps.some((x) => /^.*dead.*dead-lettered by the reclaim sweep \(worker gone, attempts used up\)/.test(x)), steps.join(' | '));
    await page.screenshot({ path: path.join(ARTIFACTS, 'replay-dead.png'), fullPage: true });
  });

  test('every span is reachable with Tab and opens with Enter; arrows move; find and collapse work', async () => {
    const t = await j<{ spans: { spanId: string; name: string }[] }>(`/api/traces/${reclaimedTrace}`);
    await page.goto(`${ex.uiUrl}/trace?id=${reclaimedTrace}`);
    await page.waitForSelector('#waterfall .wf-row');
    await page.focus('#find');
    const reached = new Set<string>();
    for (let k = 0; k < 200; k++) {
      await page.keyboard.press('Tab');
      const id = await page.evaluate<string | null>('document.activeElement?.dataset?.spanId ?? null');
      if (id) reached.add(id);
      if (await page.evaluate<boolean>("document.activeElement?.closest('#detail') != null")) break;
    }
    assert.deepEqual([...reached].sort(), t.spans.map((s) => s.spanId).sort(), 'every span row takes the focus');
    const ack = t.spans.find((s) => s.name === 'ack search')!;
    await page.focus(`.wf-row[data-span-id="${ack.spanId}"]`);
    await page.keyboard.press('Enter');
    assert.equal(await page.textContent('#detail h2'), 'ack search');
    await page.keyboard.press('ArrowUp');
    assert.notEqual(await page.evaluate<string | undefined>('document.activeElement.dataset.spanId'), ack.spanId);
    // Find: the matches are counted; Enter selects the first.
    await page.fill('#find', 'rescuer');
    assert.match((await page.textContent('#find-count')) ?? '', /^[1-9]\d* match/);
    await page.press('#find', 'Enter');
    assert.equal(await page.locator('#waterfall .sel').count(), 1);
    // Collapse every attempt: their spans are hidden; expand brings them back.
    await page.click('#collapse-all');
    assert.equal(await page.locator('.wf-row[data-span-id]:visible', { has: page.locator('.name', { hasText: 'ack search' }) }).count(), 0);
    await page.click('#expand-all');
    assert.equal(await page.locator('.wf-row:visible', { has: page.locator('.name', { hasText: 'ack search' }) }).count(), 1);
    // Drag on the minimap zooms; reset restores.
    const box = (await page.locator('#minimap').boundingBox())!;
    await page.mouse.move(box.x + box.width * 0.8, box.y + 20);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.99, box.y + 20, { steps: 4 });
    await page.mouse.up();
    assert.equal(await page.isEnabled('#zoom-reset'), true, 'zoomed in');
    await page.click('#zoom-reset');
    assert.equal(await page.isEnabled('#zoom-reset'), false);
  });

  test('search: retried, reclaimed and dead traces by filter in the form; batches hidden unless asked; sortable with version and attempts', async () => {
    const listed = async () => page.$$eval('#traces tr.trace-row', (els) => els.map((e) => e.getAttribute('data-trace-id')));
    await page.goto(`${ex.uiUrl}/`);
    await page.waitForSelector('#traces');
    const all = await listed();
    assert.ok(all.includes(reclaimedTrace) && all.includes(deadTrace));
    const roots = await page.$$eval('#traces tr.trace-row td:nth-child(2)', (els) => els.map((e) => e.textContent ?? ''));
    assert.ok(roots.every((r) => !r.startsWith('batch ')), `no batch traces by default: ${roots.join(', ')}`);
    await page.click('input[name="changes"]');
    await page.click('form.search button[type="submit"]');
    await until('batch traces listed', 5_000, async () => ((await page.$$eval('#traces tr.trace-row td:nth-child(2)', (els) => els.map((e) => e.textContent ?? ''))).some((r) => r.startsWith('batch ')) ? true : undefined));
    await page.click('input[name="changes"]');
    await page.click('input[name="reclaimed"]');
    await page.click('form.search button[type="submit"]');
    await until('only the reclaimed trace', 5_000, async () => { const l = await listed(); return l.length === 1 && l[0] === reclaimedTrace ? true : undefined; });
    assert.match(page.url(), /reclaimed=1/);
    const row = page.locator(`#traces tr[data-trace-id="${reclaimedTrace}"]`);
    assert.equal(await row.locator('td:nth-child(6)').textContent(), '2', 'attempts column');
    assert.equal(await row.locator('td:nth-child(4)').textContent(), '1', 'version column');
    await page.click('input[name="reclaimed"]');
    await page.click('input[name="dead"]');
    await page.click('form.search button[type="submit"]');
    await until('only the dead trace', 5_000, async () => { const l = await listed(); return l.length === 1 && l[0] === deadTrace ? true : undefined; });
    await page.goto(`${ex.uiUrl}/?min_attempts=2`);
    await page.waitForSelector('#traces');
    assert.deepEqual(await listed(), [reclaimedTrace]);
    assert.equal(await page.inputValue('select[name="min_attempts"]'), '2');
    // Sorting by spans, both ways.
    await page.goto(`${ex.uiUrl}/?changes=0`);
    await page.waitForSelector('#traces');
    await page.click('#traces th button:text-is("spans")');
    const spans = async () => page.$$eval('#traces tr.trace-row td:nth-child(5)', (els) => els.map((e) => Number(e.textContent)));
    const down = await spans();
    assert.deepEqual(down, down.slice().sort((a, b) => b - a));
    await page.click('#traces th button:has-text("spans")');
    const up = await spans();
    assert.deepEqual(up, up.slice().sort((a, b) => a - b));
    assert.equal((await (await fetch(`${ex.uiUrl}/api/traces?outcome=maybe`)).json() as { error: string }).error, 'outcome must be done, retry, dead or lost');
  });

  test('dead letters in numeric order, with error, trace link and the superseded mark', async () => {
    // Ids across digit counts (as text, 9 > 23 > 214): inserted dead, one superseded by a later done version.
    const agg = '00000000-0000-4000-8000-00000000abcd';
    for (const [id, version, state] of [[9, 1, 'dead'], [23, 2, 'dead'], [214, 3, 'dead'], [259, 4, 'done']] as const) {
      await db.pool.query(
        `insert into loomtrace.outbox (id, projection, event_type, aggregate_type, aggregate_id, aggregate_version, payload, state, attempts, last_reason, last_error, dead_at, done_at, traceparent)
         overriding system value
         values ($1::bigint, 'search', 'block.updated', 'block', $2, $3, '{}', $4, 3, 'http_400', 'mapper_parsing_exception <b>x</b>',
                 case when $4 = 'dead' then clock_timestamp() end, case when $4 = 'done' then clock_timestamp() end,
                 '00-' || lpad(to_hex($1::bigint), 32, '0') || '-00000000000000aa-01')`,
        [id + 100000, agg, version, state],
      );
    }
    const api = await j<{ events: { id: string; superseded: boolean; traceId: string | null; lastError: string | null }[] }>('/api/events?state=dead');
    const ids = api.events.map((e) => Number(e.id));
    assert.deepEqual(ids, ids.slice().sort((a, b) => b - a), `numeric order: ${ids.join(', ')}`);
    assert.deepEqual(api.events.filter((e) => Number(e.id) > 100000).map((e) => e.id), ['100214', '100023', '100009']);
    assert.ok(api.events.filter((e) => Number(e.id) > 100000).every((e) => e.superseded), 'a later version is done: every older dead letter is superseded');
    await page.goto(`${ex.uiUrl}/events`);
    await page.waitForSelector('#events tr[data-id]');
    const rows = await page.$$eval('#events tr[data-id]', (els) => els.map((e) => e.getAttribute('data-id')));
    assert.deepEqual(rows.filter((r) => Number(r) > 100000), ['100214', '100023', '100009']);
    const row = page.locator('#events tr[data-id="100214"]');
    assert.match((await row.textContent()) ?? '', /superseded/);
    assert.match((await row.textContent()) ?? '', /mapper_parsing_exception <b>x<\/b>/);
    assert.equal(await row.locator('a[href^="/trace?id="]').count(), 1);
    assert.equal(await page.locator('main b').count(), 0, 'the error text stays text');
    assert.equal(await page.textContent('#events tr:first-child th:nth-child(3)'), 'block', 'the aggregate column named by the events\' aggregate type');
    assert.equal(await row.locator('.badge.superseded').getAttribute('title'), 'a later version of this block reached search: replaying this event changes nothing');
    await page.screenshot({ path: path.join(ARTIFACTS, 'dead-letters.png'), fullPage: true });
  });

  test('the CLI fits 80 columns (COLUMNS=80) for trace, events, replay and why; --width sets the line width', async () => {
    const cli = (args: string[], columns = '80'): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
      const p = spawn(process.execPath, [path.join(CLI_DIR, 'loomtrace.js'), ...args], { env: { ...process.env, DATABASE_URL: db.url, COLUMNS: columns }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (b: Buffer) => (out += b.toString()));
      p.stderr.on('data', (b: Buffer) => (err += b.toString()));
      p.on('close', (code) => resolve({ code, out, err }));
    });
    const widest = (out: string) => Math.max(...out.split('\n').map((l) => Array.from(l).length));
    const deadId = (await db.pool.query<{ id: string }>(`select id::text from loomtrace.outbox where substr(traceparent, 4, 32) = $1`, [deadTrace])).rows[0]!.id;
    const runs: [string, string[]][] = [
      ['trace (reclaimed)', ['trace', reclaimedTrace]], ['trace (dead)', ['trace', deadTrace]], ['events --dead', ['events', '--dead']],
      ['events <id>', ['events', deadId]], ['replay list', ['replay', 'list']],
    ];
    const outs: Record<string, string> = {};
    for (const [name, args] of runs) {
      const r = await cli(args);
      assert.equal(r.code, 0, `${name}: ${r.err}`);
      outs[name] = r.out;
      assert.ok(widest(r.out) <= 80, `${name} is ${widest(r.out)} columns wide:\n${r.out}`);
      process.stdout.write(`# CLI ${name}: ${widest(r.out)} columns at COLUMNS=80\n`);
    }
    assert.match(outs['trace (reclaimed)']!, /── attempt 1 · victim · lost · worker gone · held [\d.]+ \S+ · no span/);
    assert.match(outs['trace (reclaimed)']!, /── attempt 2 · rescuer · done · reclaimed from victim/);
    assert.match(outs['trace (dead)']!, /dead-lettered after 1 attempt\(s\) · worker gone/);
    assert.match(outs['events --dead']!, /^ +100214 +3 +3 http_400 +00000000-0000-4000-8000-00000000abcd \*$/m);
    assert.match(outs['events <id>']!, /lost|dead/);
    const narrow = await cli(['trace', reclaimedTrace, '--width', '60']);
    assert.ok(widest(narrow.out) <= 60, `--width 60 gives ${widest(narrow.out)} columns`);
    const wide = await cli(['trace', reclaimedTrace, '--width', '140']);
    assert.ok(widest(wide.out) > 80 && widest(wide.out) <= 140, `--width 140 gives ${widest(wide.out)} columns`);
    // `why`: the verdict and each step's detail wrap under it; the trace's command on a line of its own.
    const block = (await db.pool.query<{ aggregate_id: string }>(`select aggregate_id from loomtrace.outbox where id = $1`, [deadId])).rows[0]!.aggregate_id;
    const why = await cli(['why', 'block', block]);
    assert.equal(why.code, 1, why.err);
    assert.ok(widest(why.out) <= 80, `why block is ${widest(why.out)} columns wide:\n${why.out}`);
    assert.doesNotMatch(why.out, /…$/m, 'no line cut');
    assert.match(why.out, new RegExp(`^block ${block} → search`));
    assert.match(why.out, /^ {2}✘ /m);
    assert.match(why.out, new RegExp(`^ {4}\\d+ spans stored: loomtrace trace ${deadTrace}$`, 'm'));
    process.stdout.write(`# CLI why block: ${widest(why.out)} columns at COLUMNS=80\n${why.out.replace(/^/gm, '#   ')}\n`);
    const whyWide = await cli(['why', 'block', block, '--width', '200']);
    assert.ok(widest(whyWide.out) > 80, 'a wide terminal keeps each step on one line');
  });

  test('every text colour pair is at least 4.5:1, in the light and the dark theme', async () => {
    const pages = [`/trace?id=${reclaimedTrace}`, '/events', '/', '/health'];
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      for (const p of pages) {
        await page.goto(`${ex.uiUrl}${p}`);
        await page.waitForLoadState('networkidle');
        if (p.startsWith('/trace')) {
          await page.locator('.wf-row', { has: page.locator('.name', { hasText: 'process search' }) }).click();
          await page.fill('#find', 'search');
        }
        const pairs = await contrastPairs(page);
        assert.ok(pairs.length > 10, `${p}: text found`);
        const low = pairs.filter((x) => x.ratio < 4.5);
        assert.deepEqual(low, [], `${scheme} ${p}: pairs below 4.5:1`);
      }
      const bg = await page.evaluate<string>('getComputedStyle(document.body).backgroundColor');
      assert.equal(bg === 'rgb(17, 20, 27)', scheme === 'dark', `the ${scheme} theme follows prefers-color-scheme (${bg})`);
    }
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${ex.uiUrl}/trace?id=${reclaimedTrace}`);
    await page.waitForSelector('#waterfall .wf-row');
    await page.screenshot({ path: path.join(ARTIFACTS, 'waterfall-reclaim-dark.png'), fullPage: true });
    await page.emulateMedia({ colorScheme: 'light' });
  });
});
