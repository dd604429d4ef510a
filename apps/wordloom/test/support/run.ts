/**
 * `npm test`: one Postgres for the whole run (embedded unless TEST_DATABASE_URL is given),
 * a migrated template database that each test file clones (cheap isolation), then Node's
 * test runner over dist/test/*.test.js, one file at a time.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { startEmbeddedPostgres, portFree, type EmbeddedHandle } from '../../src/db/embedded.js';
import { createPool } from '@loomtrace/outbox';
import { migrateAll } from '../../src/db/migrate.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const testDir = path.resolve(here, '..');
const root = path.resolve(here, '..', '..', '..', '..', '..');
export const TEMPLATE = 'loomtrace_template';

async function freePort(from: number): Promise<number> {
  for (let p = from; p < from + 200; p++) if (await portFree(p)) return p;
  throw new Error('no free port for the test Postgres');
}

let embedded: EmbeddedHandle | undefined;
let adminUrl = process.env['TEST_DATABASE_URL'];
if (!adminUrl) {
  const port = await freePort(15432);
  process.stdout.write(`# starting embedded Postgres for tests on 127.0.0.1:${port}\n`);
  embedded = await startEmbeddedPostgres({
    dataDir: process.env['LOOMTRACE_TEST_PG_DIR'] ? path.resolve(process.env['LOOMTRACE_TEST_PG_DIR']) : path.join(root, '.loomtrace', 'test-pg'),
    port,
    // Test data is disposable: trade durability for speed.
    settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '300' },
  });
  adminUrl = embedded.adminUrl;
  // Ctrl-C or a CI timeout: stop the server we started rather than leave it holding the data folder.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      void embedded!.stop().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    });
  }
}

const admin = new pg.Client({ connectionString: adminUrl });
await admin.connect();
// Leftovers of an earlier run, then a fresh template.
const { rows } = await admin.query<{ datname: string }>("select datname from pg_database where datname like 't\\_%' or datname = $1", [TEMPLATE]);
for (const r of rows) await admin.query(`drop database if exists "${r.datname}" with (force)`);
await admin.query(`create database ${TEMPLATE}`);
await admin.end();
const templateUrl = new URL(adminUrl);
templateUrl.pathname = `/${TEMPLATE}`;
{
  const pool = createPool({ connectionString: templateUrl.toString(), max: 1 });
  await migrateAll(pool);
  await pool.end();
}

const only = process.argv.slice(2);
const files = readdirSync(testDir)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => only.length === 0 || only.some((o) => f.includes(o)))
  .sort()
  .map((f) => path.join(testDir, f));

const code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...files], {
    stdio: 'inherit',
    env: { ...process.env, LOOMTRACE_TEST_ADMIN_URL: adminUrl, LOOMTRACE_TEST_TEMPLATE: TEMPLATE },
  });
  child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0)));
});
if (embedded) await embedded.stop().catch(() => undefined);
process.exit(code);
