/**
 * Time for the trace page of a 10,000-span trace, in Chromium: navigation start → rows painted,
 * with its phases (fetch: both API answers in; model: the rows built; render: DOM, layout and the
 * first paint after it), over N page loads after one warm-up.
 *
 *   npm run build && node apps/wordloom/dist/bench/waterfallRender.js
 *   DATABASE_URL=postgres://… node apps/wordloom/dist/bench/waterfallRender.js   (an existing server; creates database waterfall_bench)
 *
 * Environment: BENCH_LOADS (default 15), CHROMIUM_PATH (/usr/bin/chromium). Prints the median and
 * the p95 of each phase and the bytes of the trace's JSON on the wire; the machine is shared, so
 * compare medians and ratios of runs made one after the other, not single runs.
 */
import path from 'node:path';
import pg from 'pg';
import { chromium } from 'playwright-core';
import { createPool } from '@loomtrace/outbox';
import { compileExplorerOptions, startExplorer } from '@loomtrace/explorer';
import { startEmbeddedPostgres, portFree, type EmbeddedHandle } from '../src/db/embedded.js';
import { migrateAll } from '../src/db/migrate.js';
import { BIG_TRACE, BIG_TRACE_SPANS, postBigTrace } from '../test/support/bigTrace.js';

const LOADS = Number(process.env['BENCH_LOADS'] ?? 15);
const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const pick = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * q))]!;
};

/** Runs in the page before its scripts: notes the time of the first frame painted after the rows are in. */
const PAINT_PROBE = `(() => {
  const tick = () => {
    if (document.querySelector('#waterfall[data-rendered]')) {
      const ch = new MessageChannel();
      ch.port1.onmessage = () => { window.__wfPainted = performance.now(); };
      ch.port2.postMessage(0);
      return;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();`;

async function database(): Promise<{ url: string; embedded?: EmbeddedHandle }> {
  let admin = process.env['DATABASE_URL'];
  let embedded: EmbeddedHandle | undefined;
  if (!admin) {
    let port = 56_600;
    while (!(await portFree(port))) port++;
    embedded = await startEmbeddedPostgres({ dataDir: path.resolve('.loomtrace', 'bench-waterfall-pg'), port });
    admin = embedded.adminUrl;
  }
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  await c.query('drop database if exists waterfall_bench with (force)');
  await c.query('create database waterfall_bench');
  await c.end();
  const u = new URL(admin);
  u.pathname = '/waterfall_bench';
  return { url: u.toString(), ...(embedded ? { embedded } : {}) };
}

interface Load { total: number; sent: number; fetch: number; api: number; model: number; render: number; wire: number; body: number }

const db = await database();
const pool = createPool({ connectionString: db.url, max: 6, applicationName: 'waterfall-bench' });
await migrateAll(pool);
const ex = await startExplorer(pool, compileExplorerOptions({ port: 0, otlpPort: 0 }));
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
try {
  await postBigTrace(ex.otlpUrl);
  for (;;) {
    const { rows } = await pool.query<{ n: number }>('select count(*)::int n from explorer.spans where trace_id = $1', [BIG_TRACE]);
    if (rows[0]!.n === BIG_TRACE_SPANS) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  await page.addInitScript(PAINT_PROBE);
  const loads: Load[] = [];
  for (let k = 0; k <= LOADS; k++) {
    await page.goto(`${ex.uiUrl}/trace?id=${BIG_TRACE}`);
    await page.waitForFunction(() => (globalThis as { __wfPainted?: number }).__wfPainted !== undefined, undefined, { timeout: 60_000 });
    const m = await page.evaluate<{ marks: Record<string, number>; painted: number; wire: number; body: number; sent: number; done: number }>(`(() => {
      const marks = Object.fromEntries(performance.getEntriesByType('mark').map((m) => [m.name, m.startTime]));
      const res = performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/traces/'));
      return { marks, painted: window.__wfPainted, wire: res.reduce((a, r) => a + r.transferSize, 0), body: res.reduce((a, r) => a + r.decodedBodySize, 0),
        sent: Math.min(...res.map((r) => r.requestStart)), done: Math.max(...res.map((r) => r.responseEnd)) };
    })()`);
    if (k === 0) continue; // warm-up: the server's prepared statements, the browser's module cache
    const fetched = m.marks['wf-fetched']!;
    const built = m.marks['wf-rows']!;
    loads.push({ total: m.painted, sent: m.sent, fetch: fetched, api: m.done - m.sent, model: built - fetched, render: m.painted - built, wire: m.wire, body: m.body });
  }
  const stat = (k: keyof Load) => `${Math.round(pick(loads.map((l) => l[k]), 0.5))} / ${Math.round(pick(loads.map((l) => l[k]), 0.95))}`;
  process.stdout.write(`waterfall render · ${BIG_TRACE_SPANS} spans · Chromium headless 1600×1000 · ${LOADS} loads after a warm-up · node ${process.version}\n`);
  process.stdout.write(`  navigation start → rows painted: median / p95 ${stat('total')} ms\n`);
  process.stdout.write(`  phases (median / p95): fetch ${stat('fetch')} ms (requests sent at ${stat('sent')} ms, answered in ${stat('api')} ms) · model ${stat('model')} ms · render+paint ${stat('render')} ms\n`);
  process.stdout.write(`  trace API answers: ${(loads[0]!.body / 1024).toFixed(0)} KiB of JSON, ${(loads[0]!.wire / 1024).toFixed(0)} KiB on the wire\n`);
  process.stdout.write(`  DOM rows: ${await page.evaluate<number>("document.querySelectorAll('#waterfall [data-i]').length")}\n`);
} finally {
  await browser.close();
  await ex.close();
  await pool.end();
  await db.embedded?.stop();
}
