/**
 * The explorer process: `node dist/src/cli/explorer.js` (DATABASE_URL required).
 * OTLP/HTTP receiver on EXPLORER_OTLP_HOST:EXPLORER_OTLP_PORT (127.0.0.1:4318), UI and
 * query API on EXPLORER_HOST:EXPLORER_PORT (127.0.0.1:4000). It does not trace itself:
 * its own spans would arrive back at its own receiver.
 */
import { loadConfig } from './config.js';
import { createLogger } from './logger.js';
import { createPool } from '@loomtrace/outbox';
import { migrateAll } from '../db/migrate.js';
import { explorerOptionsFromEnv } from '@loomtrace/explorer';
import { startExplorer } from '@loomtrace/explorer';
import { loadOpsConfig } from './metrics.js';
import { wordloomPipelines } from '../pipeline.js';

const logger = createLogger('loomtrace-explorer');
const config = loadConfig();
if (!config.databaseUrl) {
  logger.error('DATABASE_URL is not set; use `npm start` to get an embedded Postgres');
  process.exit(2);
}
let options;
let ops;
try {
  options = explorerOptionsFromEnv(process.env);
  ops = loadOpsConfig();
} catch (err) {
  logger.error((err as Error).message);
  process.exit(2);
}
const pool = createPool({ connectionString: config.databaseUrl, max: options.writeConcurrency + 8, applicationName: 'loomtrace-explorer' });
await migrateAll(pool);
// Wordloom's declared pipeline, asked where the worker writes (SEARCH_BACKEND).
const declared = wordloomPipelines(pool, ops.search);
const explorer = await startExplorer(pool, options, (level, msg, fields) => logger[level](fields ?? {}, msg), { pipelines: declared.pipelines });
logger.info({ ui: explorer.uiUrl, otlp: explorer.otlpListening ? `${explorer.otlpUrl}/v1/traces` : null }, 'explorer listening');

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  await explorer.close().catch(() => undefined);
  await declared.close().catch(() => undefined);
  await pool.end();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
