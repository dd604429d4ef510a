import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Pool } from './pool.js';

/** Arbitrary but fixed: every loomtrace process takes this advisory lock to migrate. */
const MIGRATION_LOCK_KEY = 7_412_305_118;

/** The numbered .sql files ship in src/db/migrations; compiled code finds them from dist/. */
export function migrationsDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  // dist/src/db -> src/db/migrations
  return path.resolve(here, '..', '..', '..', 'src', 'db', 'migrations');
}

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

export async function loadMigrations(dir = migrationsDir()): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{6}_[\w-]+\.sql$/.test(f)).sort();
  const out: Migration[] = [];
  for (const file of files) {
    out.push({ id: Number.parseInt(file.slice(0, 6), 10), name: file, sql: await readFile(path.join(dir, file), 'utf8') });
  }
  return out;
}

/**
 * Applies pending migrations, forward only, each in its own transaction, under a session
 * advisory lock: several processes starting at once on an empty database end with one
 * schema and no error (the losers wait, then find nothing left to do).
 */
export async function migrate(pool: Pool, dir?: string): Promise<{ applied: string[] }> {
  const migrations = await loadMigrations(dir);
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query('create schema if not exists loomtrace');
      await client.query(
        'create table if not exists loomtrace.migrations (id integer primary key, name text not null, applied_at timestamptz not null default now())',
      );
      const done = new Set(
        (await client.query<{ id: number }>('select id from loomtrace.migrations')).rows.map((r) => r.id),
      );
      for (const m of migrations) {
        if (done.has(m.id)) continue;
        await client.query('begin');
        try {
          await client.query(m.sql);
          await client.query('insert into loomtrace.migrations (id, name) values ($1, $2)', [m.id, m.name]);
          await client.query('commit');
          applied.push(m.name);
        } catch (err) {
          await client.query('rollback');
          throw new Error(`migration ${m.name} failed: ${(err as Error).message}`);
        }
      }
    } finally {
      await client.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    client.release();
  }
  return { applied };
}

/** True when every migration shipped with this build is applied (readiness). */
export async function migrationsCurrent(pool: Pool, dir?: string): Promise<boolean> {
  const migrations = await loadMigrations(dir);
  try {
    const { rows } = await pool.query<{ id: number }>('select id from loomtrace.migrations');
    const done = new Set(rows.map((r) => r.id));
    return migrations.every((m) => done.has(m.id));
  } catch {
    return false;
  }
}
