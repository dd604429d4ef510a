import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runMigrations, type MigrationSet, type Pool } from '@loomtrace/outbox';

/** The explorer's span store: its own schema, `explorer`, with its own migrations. */
export const EXPLORER_MIGRATIONS: MigrationSet = Object.freeze({
  schema: 'explorer',
  dir: path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'migrations'),
});

export function migrateExplorer(pool: Pool): Promise<{ applied: string[] }> {
  return runMigrations(pool, EXPLORER_MIGRATIONS);
}
