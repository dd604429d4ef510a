/**
 * The explorer's token and its OTLP port, through the real processes: `npm start` (start.js)
 * with EXPLORER_TOKEN set starts and its processes' traces arrive; the session cookie is an
 * opaque id, never the token; a malformed cookie is a 401; a short token is refused in one line;
 * an OTLP port held by someone else (a Collector, Jaeger) costs the receiver, not the explorer
 * UI, the API or the worker.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { freePort, startPorts, startProcess, type Proc } from './support/procs.js';
import { until } from './support/wait.js';
import { compileExplorerOptions } from '@loomtrace/explorer';
import { startExplorer } from '@loomtrace/explorer';

const TOKEN = 'explorer-token-for-tests-0123456789';
const bearer = { authorization: `Bearer ${TOKEN}` };
let db: TestDatabase;
let dataDir: string;

before(async () => {
  db = await freshDatabase('security_explorer');
  // start.js writes its child logs under LOOMTRACE_DATA_DIR/logs: a folder of this test's own.
  dataDir = await mkdtemp(path.join(os.tmpdir(), 'loomtrace-sec-explorer-'));
});
after(async () => {
  await db?.drop();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

/** A listener that holds a port, as a Collector or Jaeger on 4318 would. */
async function occupy(): Promise<{ port: number; close(): Promise<void> }> {
  const port = await freePort();
  const srv = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve());
  });
  return { port, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

/** Ports for every listener `npm start` opens, chosen free. */
async function startEnv(extra: Record<string, string>): Promise<Record<string, string> & { PORT: string; EXPLORER_PORT: string; METRICS_PORT: string }> {
  return startPorts({ DATABASE_URL: db.url, LOOMTRACE_DATA_DIR: dataDir, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: '', ...extra });
}

async function exitedWithin(p: Proc, ms: number): Promise<number | null | 'running'> {
  return Promise.race([p.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), ms))]);
}

describe('explorer token', () => {
  test('a token shorter than 16 characters is refused at startup, in one line, by the explorer and by npm start', async () => {
    assert.throws(() => compileExplorerOptions({ token: 'fifteen-chars-x' }), /EXPLORER_TOKEN must be at least 16/);
    assert.doesNotThrow(() => compileExplorerOptions({ token: 'sixteen-chars-xx' }));
    const ex = startProcess('explorer-short-token', 'explorer.js', { DATABASE_URL: db.url, EXPLORER_TOKEN: 'short', EXPLORER_PORT: String(await freePort()), EXPLORER_OTLP_PORT: String(await freePort()) });
    try {
      assert.equal(await exitedWithin(ex, 20_000), 2);
      assert.equal(ex.lines.filter((l) => l.trim()).length, 1, `one line: ${ex.lines.join('\n')}`);
      assert.match(ex.lines[0]!, /EXPLORER_TOKEN must be at least 16/);
      assert.doesNotMatch(ex.lines[0]!, /short/, 'the token itself is not printed');
    } finally {
      await ex.stop();
    }
    const st = startProcess('start-short-token', 'start.js', await startEnv({ EXPLORER_TOKEN: 'short' }));
    try {
      assert.equal(await exitedWithin(st, 30_000), 2);
      assert.deepEqual(
        st.lines.filter((l) => l.trim()),
        ['loomtrace: EXPLORER_TOKEN must be at least 16 visible characters, without spaces (e.g. `openssl rand -hex 16`)'],
      );
    } finally {
      await st.stop();
    }
  });

  test('?token= trades the token for an opaque server-side session; the token is never a cookie; a malformed cookie is a 401', async () => {
    const ex = await startExplorer(db.pool, compileExplorerOptions({ port: 0, otlpPort: 0, token: TOKEN }));
    try {
      const r = await fetch(`${ex.uiUrl}/health?token=${encodeURIComponent(TOKEN)}`, { redirect: 'manual' });
      assert.equal(r.status, 303);
      assert.equal(r.headers.get('location'), '/health');
      const setCookie = r.headers.get('set-cookie') ?? '';
      assert.match(setCookie, /^loomtrace_session=[A-Za-z0-9_-]{43}; HttpOnly; SameSite=Strict; Path=\/; Max-Age=\d+$/);
      assert.ok(!setCookie.includes(TOKEN) && !setCookie.includes(encodeURIComponent(TOKEN)), 'the cookie does not carry the token');
      const session = setCookie.split(';')[0]!;
      assert.equal((await fetch(`${ex.uiUrl}/api/traces`, { headers: { cookie: session } })).status, 200, 'the session opens the API');
      assert.equal((await fetch(`${ex.uiUrl}/health`, { headers: { cookie: `other=1; ${session}` } })).status, 200, 'among other cookies too');
      // A second login gets a different session.
      const again = await fetch(`${ex.uiUrl}/?token=${encodeURIComponent(TOKEN)}`, { redirect: 'manual' });
      assert.notEqual((again.headers.get('set-cookie') ?? '').split(';')[0], session);

      const refused = async (cookie: string) => {
        const res = await fetch(`${ex.uiUrl}/api/traces`, { headers: { cookie } });
        const body = (await res.json()) as { statusCode: number; code: string; message: string };
        return { status: res.status, body };
      };
      // The token itself as a cookie (what the explorer used to set) opens nothing.
      assert.equal((await refused(`loomtrace_token=${encodeURIComponent(TOKEN)}`)).status, 401);
      assert.equal((await refused(`loomtrace_session=${TOKEN}`)).status, 401);
      assert.equal((await refused('loomtrace_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')).status, 401);
      for (const bad of ['loomtrace_token=%E0%A4%A', 'loomtrace_session=%E0%A4%A', 'loomtrace_session', '=;;=%']) {
        const { status, body } = await refused(bad);
        assert.equal(status, 401, `cookie ${bad}`);
        assert.equal(body.code, 'UNAUTHORIZED');
        assert.match(body.message, /token/);
      }
      // A session from another explorer process (or before a restart) is not a session here.
      const other = await startExplorer(db.pool, compileExplorerOptions({ port: 0, otlpPort: 0, token: TOKEN }));
      try {
        assert.equal((await fetch(`${other.uiUrl}/api/traces`, { headers: { cookie: session } })).status, 401);
      } finally {
        await other.close();
      }
    } finally {
      await ex.close();
    }
  });

  test('npm start with EXPLORER_TOKEN set starts, and the API\'s traces reach the explorer with the token', async () => {
    const env = await startEnv({ EXPLORER_TOKEN: TOKEN });
    const st = startProcess('start-token', 'start.js', env);
    try {
      await st.waitFor(/loomtrace is running/, 60_000);
      assert.ok(!st.lines.some((l) => l.includes(TOKEN)), 'the token is never printed');
      assert.ok(st.lines.some((l) => l.includes('?token=<EXPLORER_TOKEN>')));
      const ui = `http://127.0.0.1:${env.EXPLORER_PORT}`;
      assert.equal((await fetch(`${ui}/api/status`)).status, 401, 'the explorer does require the token');
      const lib = await fetch(`http://127.0.0.1:${env.PORT}/api/v1/libraries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'token drill' }) });
      assert.equal(lib.status, 201);
      let traces: { rootService: string }[] = [];
      for (const until = Date.now() + 30_000; Date.now() < until && traces.length === 0; await new Promise((r) => setTimeout(r, 250))) {
        traces = ((await (await fetch(`${ui}/api/traces?service=wordloom-api`, { headers: bearer })).json()) as { traces: { rootService: string }[] }).traces;
      }
      assert.ok(traces.length > 0, 'the API exported its trace to the explorer with the bearer token');
    } finally {
      await st.stop();
    }
    assert.equal(await st.exited, 0);
  });
});

describe("the explorer's OTLP port taken by another listener", () => {
  test('the explorer process says so in one line naming EXPLORER_OTLP_PORT and its UI serves what is in the database', async () => {
    const held = await occupy();
    // A span stored beforehand (by another explorer), for the UI to serve.
    const feeder = await startExplorer(db.pool, compileExplorerOptions({ port: 0, otlpPort: 0 }));
    const traceId = 'a1'.repeat(16);
    try {
      const body = JSON.stringify({ resourceSpans: [{ scopeSpans: [{ spans: [{ traceId, spanId: 'b2'.repeat(8), name: 'stored earlier', startTimeUnixNano: '1', endTimeUnixNano: '2' }] }] }] });
      assert.equal((await fetch(`${feeder.otlpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status, 200);
    } finally {
      await feeder.close();
    }
    const ui = await freePort();
    const p = startProcess('explorer-otlp-taken', 'explorer.js', { DATABASE_URL: db.url, EXPLORER_PORT: String(ui), EXPLORER_OTLP_PORT: String(held.port) });
    try {
      await p.waitFor(/explorer listening/, 30_000);
      const about = p.lines.filter((l) => l.includes('EXPLORER_OTLP_PORT'));
      assert.equal(about.length, 1, p.lines.join('\n'));
      assert.match(about[0]!, new RegExp(`127\\.0\\.0\\.1:${held.port} is in use`));
      assert.ok(!p.lines.some((l) => /^\s+at /.test(l) || l.includes('EADDRINUSE')), 'no raw error or stack');
      assert.equal((await fetch(`http://127.0.0.1:${ui}/`)).status, 200);
      const status = (await (await fetch(`http://127.0.0.1:${ui}/api/status`)).json()) as { otlp: { listening: boolean; port: number } };
      assert.deepEqual(status.otlp, { listening: false, port: held.port });
      const t = (await (await fetch(`http://127.0.0.1:${ui}/api/traces/${traceId}`)).json()) as { spans: { name: string }[] };
      assert.equal(t.spans[0]!.name, 'stored earlier');
      assert.equal(p.proc.exitCode, null, 'still running');
      await p.stop();
      assert.equal(await p.exited, 0);
    } finally {
      await p.stop();
      await held.close();
    }
  });

  test('npm start keeps the API, the worker and the explorer UI running and says so in one line', async () => {
    const held = await occupy();
    const env = await startEnv({ EXPLORER_OTLP_PORT: String(held.port) });
    const st = startProcess('start-otlp-taken', 'start.js', env);
    try {
      await st.waitFor(/loomtrace is running/, 60_000);
      const said = st.lines.filter((l) => l.startsWith('loomtrace:') && l.includes('EXPLORER_OTLP_PORT'));
      assert.equal(said.length, 1, st.lines.join('\n'));
      assert.match(said[0]!, new RegExp(`127\\.0\\.0\\.1:${held.port} is in use`));
      assert.ok(st.lines.some((l) => /OTLP\s+not listening/.test(l)), 'the banner does not offer the taken port');
      // Still running a moment later, every part answering.
      await new Promise((r) => setTimeout(r, 1_500));
      assert.equal(st.proc.exitCode, null);
      // The banner comes once the API and the explorer are ready; the worker's metrics port may
      // open a moment later on a loaded machine: each part must come to answer 200.
      const answers = (url: string) => until(url, 20_000, async () => (await fetch(url)).status === 200, { ignoreErrors: true });
      await answers(`http://127.0.0.1:${env.PORT}/readyz`);
      await answers(`http://127.0.0.1:${env.METRICS_PORT}/healthz`);
      await answers(`http://127.0.0.1:${env.EXPLORER_PORT}/`);
      await answers(`http://127.0.0.1:${env.EXPLORER_PORT}/api/traces`);
      assert.ok(!st.lines.some((l) => /exited \(/.test(l)), st.lines.join('\n'));
    } finally {
      await st.stop();
      await held.close();
    }
    assert.equal(await st.exited, 0);
  });
});
