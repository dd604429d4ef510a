import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { migrate as migrateOutbox, migrationsCurrent, runMigrations, type MigrationSet, type Pool } from '@loomtrace/outbox';
import { EXPLORER_MIGRATIONS, migrateExplorer } from '@loomtrace/explorer';

/** Wordloom's own tables (`wordloom`) and its Postgres search projection (`search`). */
export const WORDLOOM_MIGRATIONS: MigrationSet = Object.freeze({
  schema: 'wordloom',
  // dist/src/db → migrations/
  dir: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'migrations'),
});

/** Everything Wordloom's processes need: the outbox's schema, the explorer's span store, and Wordloom's own. */
export async function migrateAll(pool: Pool): Promise<{ applied: string[] }> {
  const applied = [...(await migrateOutbox(pool)).applied, ...(await migrateExplorer(pool)).applied, ...(await runMigrations(pool, WORDLOOM_MIGRATIONS)).applied];
  return { applied };
}

export async function allMigrationsCurrent(pool: Pool): Promise<boolean> {
  return (await migrationsCurrent(pool)) && (await migrationsCurrent(pool, EXPLORER_MIGRATIONS)) && (await migrationsCurrent(pool, WORDLOOM_MIGRATIONS));
}
