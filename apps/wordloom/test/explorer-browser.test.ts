/**
 * The explorer in real Chromium (Debian's `chromium`, driven by playwright-core): after a
 * PATCH whose first write is answered 429 by an injected fault, the waterfall shows the API
 * request, the transaction, the outbox send, the queue wait, each process attempt, the write
 * and the ack; the diagnosis page gives the right verdict for an indexed, a retrying and a
 * dead-lettered block; a hostile span name stays inert text. Screenshots go to test-artifacts/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { startApi, startWorker, type Proc } from './support/procs.js';
import { compileExplorerOptions } from '@loomtrace/explorer';
import { startExplorer, type RunningExplorer } from '@loomtrace/explorer';
import { wordloomPipelines } from '../src/pipeline.js';
import { until } from './support/wait.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve('test-artifacts');
// Under CI (which installs Chromium) a missing browser is a failure, never a skip.
const skip = existsSync(CHROMIUM) || process.env['CI'] ? false : `no Chromium at ${CHROMIUM} (apt-get install -y chromium)`;

let db: TestDatabase;
let ex: RunningExplorer;
let api: (Proc & { url: string }) | undefined;
let worker: Proc | undefined;
let browser: Browser | undefined;
let page: Page;
let bookId: string;

async function call<T>(method: string, p: string, body?: unknown): Promise<T> {
  const r = await fetch(`${api!.url}/api/v1${p}`, { method, headers: body ? { 'content-type': 'application/json' } : {}, body: body ? JSON.stringify(body) : null });
  assert.ok(r.ok, `${method} ${p}: ${r.status}`);
  return (await r.json()) as T;
}
const j = async <T>(p: string): Promise<T> => (await (await fetch(`${ex.uiUrl}${p}`)).json()) as T;

describe('explorer in Chromium', { skip }, () => {
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    db = await freshDatabase('explorer_browser');
    ex = await startExplorer(db.pool, compileExplorerOptions({ port: 0, otlpPort: 0 }), undefined, { pipelines: wordloomPipelines(db.pool).pipelines });
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: ex.otlpUrl, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf', OTEL_TRACES_EXPORTER: 'otlp', OTEL_BSP_SCHEDULE_DELAY: '100' };
    api = await startApi(db.url, { ...otel, OTEL_SERVICE_NAME: 'wordloom-api' });
    // Every bulk call of a first attempt answers 429: each event retries once, then succeeds.
    worker = await startWorker(db.url, { ...otel, OTEL_SERVICE_NAME: 'wordloom-worker', WORKER_ID: 'worker-a', WORKER_POLL_MS: '100', LOOMTRACE_FAULTS: '429:/1,cap:1,retry_after_ms:200' });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
    page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    page.on('dialog', () => assert.fail('a dialog opened: markup in data was executed'));
    const lib = await call<{ id: string }>('POST', '/libraries', { name: 'browser' });
    bookId = (await call<{ id: string }>('POST', '/books', { library_id: lib.id, title: 'book' })).id;
  });
  after(async () => {
    await browser?.close();
    await worker?.stop();
    await api?.stop();
    await ex?.close();
    await db?.drop();
  });

  let indexedBlock: string;

  test('the waterfall of a PATCH shows request, transaction, send, queue wait, both attempts, write and ack', async () => {
    const block = await call<{ id: string }>('POST', '/blocks', { book_id: bookId, block_type: 'text', content: 'hello' });
    indexedBlock = block.id;
    await call('PATCH', `/blocks/${block.id}`, { content: 'hello again' });
    const traceId = await until('the PATCH trace with its second attempt acked', 20_000, async () => {
      const r = await j<{ traces: { traceId: string }[] }>(`/api/traces?block_id=${block.id}&name=${encodeURIComponent('PATCH /api/v1/blocks/:id')}`);
      const id = r.traces[0]?.traceId;
      if (!id) return undefined;
      const t = await j<{ spans: { name: string; attributes: Record<string, unknown> }[] }>(`/api/traces/${id}`);
      return t.spans.some((s) => s.name === 'ack search' ) && t.spans.some((s) => s.name === 'process search' && s.attributes['loomtrace.attempt'] === 2 && s.attributes['loomtrace.outcome'] === 'done') ? id : undefined;
    }, { ignoreErrors: true });
    await page.goto(`${ex.uiUrl}/trace?id=${traceId}`);
    await page.waitForSelector('#waterfall .wf-row');
    const names = await page.$$eval('#waterfall .wf-row .name', (els) => els.map((e) => e.textContent));
    for (const want of ['PATCH /api/v1/blocks/:id', 'db transaction', 'send search', 'queue wait search', 'process search', 'write search', 'ack search']) {
      assert.ok(names.includes(want), `the waterfall shows "${want}" (got ${names.join(', ')})`);
    }
    assert.equal(names.filter((n) => n === 'process search').length, 2, 'two attempts');
    assert.equal(names.filter((n) => n === 'queue wait search').length, 2, 'a queue wait before each attempt');
    const groups = await page.$$eval('#waterfall .wf-group', (els) => els.map((e) => e.textContent ?? ''));
    // Each heading names its own attempt's outcome and failure (the 429 was attempt 1's).
    assert.ok(groups.some((g) => /^▾attempt 1 · worker-a · retry · http_429$/.test(g)), groups.join(' | '));
    assert.ok(groups.some((g) => /^▾attempt 2 · worker-a · done$/.test(g)), groups.join(' | '));
    // The backoff between them is drawn as its own segment, from the outbox's record.
    assert.match((await page.textContent('.wf-row.backoff-row')) ?? '', /backoff before attempt 2 · after http_429/);
    // The failed-then-healed attempt is marked as retried: not error red, not plain.
    assert.equal(await page.locator('.wf-row .wf-bar.k-consumer.retried').count(), 1);
    assert.equal(await page.textContent('#trace-outcome'), 'done after retries');
    assert.equal(await page.locator('.wf-row.queue-row .wf-bar.queue').count(), 2, 'the queue wait is drawn as its own kind of segment');
    await page.screenshot({ path: path.join(ARTIFACTS, 'explorer-waterfall.png'), fullPage: true });
    // Span detail, and the link from attempt 2 back to attempt 1.
    await page.locator('.wf-row', { has: page.locator('.name', { hasText: 'process search' }) }).nth(1).click();
    await page.waitForSelector('#detail h2');
    const detail = (await page.textContent('#detail')) ?? '';
    assert.match(detail, /^process searchOutboxattempt2outcomedone/, 'the outbox facts come first');
    assert.match(detail, /retried afterhttp_429/);
    assert.doesNotMatch(detail, /failed with/, 'the healed attempt does not wear the failure of the one before');
    assert.match(detail, /loomtrace\.attempt/);
    assert.match(detail, /previous_attempt: /);
    await page.screenshot({ path: path.join(ARTIFACTS, 'explorer-span-detail.png'), fullPage: true });
    await page.locator('#detail a.span-link', { hasText: 'previous_attempt' }).click();
    await page.waitForSelector('.wf-row.sel');
    const selected = await page.$eval('.wf-row.sel', (e) => e.getAttribute('data-span-id'));
    const t = await j<{ spans: { spanId: string; name: string; attributes: Record<string, unknown> }[] }>(`/api/traces/${traceId}`);
    assert.equal(t.spans.find((s) => s.spanId === selected)?.attributes['loomtrace.attempt'], 1, 'the link leads to attempt 1');
    // Both ways between the event's trace and its batch: to the batch, and from the batch back.
    await page.locator('a', { hasText: /^batch trace / }).first().click();
    await page.waitForSelector('#batch-events a');
    assert.match(await page.title(), /^batch search · trace/);
    const eventId = String(t.spans.find((s) => s.name === 'process search')!.attributes['messaging.message.id']);
    await page.locator('#batch-events a', { hasText: new RegExp(`^event ${eventId} \\((retry|done)\\)$`) }).first().click();
    await page.waitForSelector('.wf-row.sel');
    assert.match(page.url(), new RegExp(`id=${traceId}`));
  });

  test('the diagnosis page: indexed, retrying and dead-lettered blocks', async () => {
    await until('the block indexed at its latest version', 20_000, async () => ((await j<{ kind: string }>(`/api/diagnosis/block/${indexedBlock}`)).kind === 'visible' ? true : undefined), { ignoreErrors: true });
    // Stop the worker so the next events stay where SQL puts them.
    await worker!.stop();
    const retrying = (await call<{ id: string }>('POST', '/blocks', { book_id: bookId, block_type: 'text', content: 'r' })).id;
    const dead = (await call<{ id: string }>('POST', '/blocks', { book_id: bookId, block_type: 'text', content: 'd' })).id;
    await db.pool.query(
      `update loomtrace.outbox set state = 'pending', attempts = 3, last_reason = 'http_5xx', last_error = 'bulk answered 503',
              run_at = clock_timestamp() + interval '10 minutes', claimed_at = clock_timestamp() where aggregate_id = $1`,
      [retrying],
    );
    await db.pool.query(`update loomtrace.outbox set state = 'dead', attempts = 10, last_reason = 'http_400', last_error = 'mapper_parsing_exception', dead_at = clock_timestamp(), claimed_at = clock_timestamp() where aggregate_id = $1`, [dead]);
    const cases: [string, string, RegExp, string][] = [
      [indexedBlock, 'visible', /^Block is in search at version 2/, 'explorer-diagnosis-indexed.png'],
      [retrying, 'retrying', /^Retrying: attempt 3 failed with http_5xx; next try at/, 'explorer-diagnosis-retrying.png'],
      [dead, 'dead', /^Dead-lettered after 10 attempt\(s\): http_400/, 'explorer-diagnosis-dead.png'],
    ];
    for (const [id, kind, verdict, shot] of cases) {
      await page.goto(`${ex.uiUrl}/block?id=${id}`);
      await page.waitForSelector('#verdict');
      assert.equal(await page.$eval('#verdict', (e) => e.getAttribute('data-kind')), kind);
      assert.match((await page.textContent('#verdict')) ?? '', verdict);
      const steps = await page.$$eval('#steps li', (els) => els.map((e) => `${e.getAttribute('data-step')}=${e.getAttribute('data-status')}`));
      assert.equal(steps.length, 6);
      if (kind === 'visible') assert.ok(steps.every((s) => s.endsWith('=done')), steps.join(' '));
      else assert.ok(steps.includes('written=failed'), steps.join(' '));
      await page.screenshot({ path: path.join(ARTIFACTS, shot), fullPage: true });
    }
    // The replay of the retrying event, and pipeline health.
    await page.goto(`${ex.uiUrl}/block?id=${indexedBlock}`);
    await page.locator('a', { hasText: /^replay event/ }).click();
    await page.waitForSelector('#timeline tr');
    const steps = await page.$$eval('#timeline tr td:nth-child(2)', (els) => els.map((e) => e.textContent));
    assert.deepEqual(steps, ['enqueued', 'claimed', 'retry', 'claimed', 'acked']);
    await page.screenshot({ path: path.join(ARTIFACTS, 'explorer-event-replay.png'), fullPage: true });
    await page.goto(`${ex.uiUrl}/health`);
    await page.waitForSelector('#c-lag .uplot canvas');
    // Five charts (uPlot, from this origin) or their empty states; lag and events have data.
    assert.equal(await page.locator('.charts > div').count(), 5);
    assert.equal(await page.locator('#c-events .uplot').count(), 1);
    const w = (await page.locator('#c-lag').boundingBox())!.width;
    assert.ok(w > 640, `charts take the page's width (${w} px)`);
    // The cursor's tooltip: uPlot's live legend shows the values under it.
    const over = (await page.locator('#c-lag .u-over').boundingBox())!;
    await page.mouse.move(over.x + over.width - 3, over.y + over.height / 2);
    const values = await page.$$eval('#c-lag .u-legend .u-value', (els) => els.map((e) => e.textContent ?? ''));
    assert.ok(values.some((v) => /\d/.test(v)), `tooltip values: ${values.join(' ')}`);
    const ticks = await page.$$eval('#c-lag .u-axis', (els) => els.map((e) => e.textContent ?? '').join(' '));
    assert.ok(!ticks.includes('0 µs'), ticks);
    assert.equal(await page.evaluate<string>("getComputedStyle(document.querySelector('#steps th:nth-child(2)')).textAlign"), 'right', 'headers align with their numbers');
    await page.click('nav.tabs a:text-is("1 h")');
    await page.waitForSelector('#c-lag .uplot canvas');
    assert.match(page.url(), /minutes=60/);
    assert.match((await page.textContent('.cards')) ?? '', /dead letters/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'explorer-health.png'), fullPage: true });
    // The indexed block's page links to its trace, which opens.
    await page.goto(`${ex.uiUrl}/block?id=${indexedBlock}`);
    await page.locator('a', { hasText: 'open the trace' }).click();
    await page.waitForSelector('#waterfall .wf-row');
  });

  test('a span named like markup is shown as text and never runs', async () => {
    const traceId = '7'.repeat(32);
    const evil = '<img src=x onerror=alert(1)>';
    const now = String(BigInt(Date.now()) * 1_000_000n);
    const body = { resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: '<script>alert(2)</script>' } }] }, scopeSpans: [{ spans: [{ traceId, spanId: '1'.repeat(16), name: evil, kind: 1, startTimeUnixNano: now, endTimeUnixNano: now, attributes: [{ key: evil, value: { stringValue: evil } }] }] }] }] };
    assert.equal((await fetch(`${ex.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).status, 200);
    await page.goto(`${ex.uiUrl}/trace?id=${traceId}`);
    await page.waitForSelector('#waterfall .wf-row');
    assert.equal(await page.textContent('#waterfall .wf-row .name'), evil);
    await page.click('#waterfall .wf-row');
    assert.match((await page.textContent('#detail')) ?? '', /<img src=x onerror=alert\(1\)>/);
    assert.equal(await page.locator('main img').count(), 0, 'no element was made from the data');
    assert.equal(await page.locator('main script').count(), 0);
    await page.goto(`${ex.uiUrl}/?service=${encodeURIComponent('<script>alert(2)</script>')}`);
    await page.waitForSelector('#results table');
    assert.equal(await page.locator('main img').count(), 0);
    await page.screenshot({ path: path.join(ARTIFACTS, 'explorer-search-xss.png'), fullPage: true });
  });
});
