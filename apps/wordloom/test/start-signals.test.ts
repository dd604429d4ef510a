/**
 * `npm start` (start.js) stopped by a signal while it is still starting: Ctrl-C during the
 * embedded Postgres's start stops that Postgres too (no server left running on its own, holding
 * the data folder and the port), and a signal while the children come up ends the startup
 * there: no "did not become ready" and no banner for a system that is going away.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { portFree } from '../src/db/embedded.js';
import { freshDatabase, type TestDatabase } from './support/db.js';
import { freePort, startPorts, startProcess } from './support/procs.js';

const tmpDirs: string[] = [];
let db: TestDatabase;
before(async () => {
  db = await freshDatabase('start_signals');
});
after(async () => {
  await db?.drop();
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

async function tmpDir(label: string): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), `loomtrace-signal-${label}-`));
  tmpDirs.push(d);
  return d;
}

/** Processes whose command line names `needle` (a data folder), from /proc. */
async function processesNaming(needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((n) => /^\d+$/.test(n))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmd.includes(needle)) found.push(`${pid}: ${cmd.replace(/\0/g, ' ')}`);
  }
  return found;
}

const ports = startPorts;

describe('npm start stopped while it starts', () => {
  test('SIGTERM while the embedded Postgres starts: it is stopped too, the port is free, exit 0, no banner', async () => {
    const dataDir = await tmpDir('pg');
    const pgPort = await freePort();
    const st = startProcess('start-signal-pg', 'start.js', await ports({ DATABASE_URL: '', LOOMTRACE_DATA_DIR: dataDir, LOOMTRACE_PG_PORT: String(pgPort) }));
    await st.waitFor(/starting Postgres/, 30_000);
    st.proc.kill('SIGTERM');
    const code = await st.exited;
    const said = st.lines.join('\n');
    assert.equal(code, 0, said);
    assert.match(said, /loomtrace: stopped\./);
    assert.doesNotMatch(said, /loomtrace is running|did not become ready/);
    assert.deepEqual(await processesNaming(path.join(dataDir, 'pg')), [], 'no Postgres left running on that data folder');
    assert.ok(await portFree(pgPort), `port ${pgPort} is free again`);
  });

  test('SIGTERM while the explorer starts: the startup ends there, without a "not ready" line or a banner', async () => {
    const dataDir = await tmpDir('children');
    const st = startProcess('start-signal-children', 'start.js', await ports({ DATABASE_URL: db.url, LOOMTRACE_DATA_DIR: dataDir }));
    await st.waitFor(/using DATABASE_URL/, 30_000);
    st.proc.kill('SIGTERM');
    const code = await st.exited;
    const said = st.lines.join('\n');
    assert.equal(code, 0, said);
    assert.match(said, /loomtrace: stopped\./);
    assert.doesNotMatch(said, /loomtrace is running|did not become ready|exited \(/);
  });
});
