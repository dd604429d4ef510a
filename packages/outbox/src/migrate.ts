import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Pool } from './pool.js';

/** Arbitrary but fixed: every process that migrates a loomtrace database takes this advisory lock. */
const MIGRATION_LOCK_KEY = 7_412_305_118;

/** The outbox's numbered .sql files ship beside dist/, in migrations/. */
export function migrationsDir(): string {
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'migrations');
}

export interface Migration {
  id: number;
  name: string;
  sql: string;
}

/**
 * A set of forward-only migrations owned by one component: its numbered `.sql` files and the
 * schema that holds its `migrations` table. The outbox's set is `loomtrace`; the explorer and an
 * application keep their own sets in their own schemas with the same runner.
 */
export interface MigrationSet {
  readonly schema: string;
  readonly dir: string;
}

export const OUTBOX_MIGRATIONS: MigrationSet = Object.freeze({ schema: 'loomtrace', dir: migrationsDir() });

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

export async function loadMigrations(dir = migrationsDir()): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{6}_[\w-]+\.sql$/.test(f)).sort();
  const out: Migration[] = [];
  for (const file of files) {
    out.push({ id: Number.parseInt(file.slice(0, 6), 10), name: file, sql: await readFile(path.join(dir, file), 'utf8') });
  }
  return out;
}

/**
 * Applies a set's pending migrations, forward only, each in its own transaction, under a
 * session advisory lock: several processes starting at once on an empty database end with one
 * schema and no error (the losers wait, then find nothing left to do).
 *
 * Before the packages were split, every set was recorded in `loomtrace.migrations`; a set whose
 * own table is new adopts its rows from there, so an existing database applies nothing twice.
 */
export async function runMigrations(pool: Pool, set: MigrationSet): Promise<{ applied: string[] }> {
  if (!IDENT.test(set.schema)) throw new Error(`migration schema must be a lowercase SQL identifier, got "${set.schema}"`);
  const migrations = await loadMigrations(set.dir);
  const table = `${set.schema}.migrations`;
  const client = await pool.connect();
  const applied: string[] = [];
  try {
    await client.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(`create schema if not exists ${set.schema}`);
      const { rows: existing } = await client.query<{ t: string | null }>('select to_regclass($1)::text as t', [table]);
      await client.query(`create table if not exists ${table} (id integer primary key, name text not null, applied_at timestamptz not null default now())`);
      if (existing[0]?.t == null && set.schema !== 'loomtrace') {
        const { rows: legacy } = await client.query<{ t: string | null }>("select to_regclass('loomtrace.migrations')::text as t");
        if (legacy[0]?.t != null) {
          await client.query(
            `insert into ${table} (id, name, applied_at) select id, name, applied_at from loomtrace.migrations where name = any($1::text[]) on conflict do nothing`,
            [migrations.map((m) => m.name)],
          );
        }
      }
      const done = new Set((await client.query<{ id: number }>(`select id from ${table}`)).rows.map((r) => r.id));
      for (const m of migrations) {
        if (done.has(m.id)) continue;
        await client.query('begin');
        try {
          await client.query(m.sql);
          await client.query(`insert into ${table} (id, name) values ($1, $2)`, [m.id, m.name]);
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

/** Creates or upgrades the outbox's own schema, `loomtrace`, and nothing else. */
export function migrate(pool: Pool): Promise<{ applied: string[] }> {
  return runMigrations(pool, OUTBOX_MIGRATIONS);
}

/** True when every migration of the set (the outbox's by default) is applied (readiness). */
export async function migrationsCurrent(pool: Pool, set: MigrationSet = OUTBOX_MIGRATIONS): Promise<boolean> {
  const migrations = await loadMigrations(set.dir);
  try {
    const { rows } = await pool.query<{ id: number }>(`select id from ${set.schema}.migrations`);
    const done = new Set(rows.map((r) => r.id));
    return migrations.every((m) => done.has(m.id));
  } catch {
    return false;
  }
}
