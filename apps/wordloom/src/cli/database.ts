import { EMBEDDED_DATABASE, embeddedPgDir } from './config.js';
import { ensureDatabase, startEmbeddedPostgres, type EmbeddedHandle } from '../db/embedded.js';

export interface ResolvedDatabase {
  url: string;
  embedded: EmbeddedHandle | undefined;
}

/**
 * DATABASE_URL when given (and no server is started); otherwise an embedded Postgres whose
 * files live in `<dataDir>/pg` and survive restarts.
 */
export async function resolveDatabase(opts: { databaseUrl: string | undefined; dataDir: string; port: number; database?: string; log?: (l: string) => void }): Promise<ResolvedDatabase> {
  if (opts.databaseUrl) return { url: opts.databaseUrl, embedded: undefined };
  const embedded = await startEmbeddedPostgres({ dataDir: embeddedPgDir(opts.dataDir), port: opts.port, ...(opts.log ? { onLog: opts.log } : {}) });
  const db = opts.database ?? EMBEDDED_DATABASE;
  await ensureDatabase(embedded.adminUrl, db);
  return { url: embedded.urlFor(db), embedded };
}
