/** The Wordloom API process: `node dist/src/cli/api.js` (DATABASE_URL required). */
import { startTelemetry, stopTelemetry } from './telemetry.js';

startTelemetry('wordloom-api');
const { startMetrics, stopMetrics, registerApiMetrics, loadOpsConfig } = await import('./metrics.js');
startMetrics(loadOpsConfig().serviceName ?? 'wordloom-api');

const { loadConfig } = await import('./config.js');
const { createLogger } = await import('./logger.js');
const { createPool, OutboxWaker } = await import('@loomtrace/outbox');
const { migrateAll } = await import('../db/migrate.js');
const { buildApp } = await import('../service/app.js');

const config = loadConfig();
const logger = createLogger('wordloom-api');
if (!config.databaseUrl) {
  logger.error('DATABASE_URL is not set; use `npm start` to get an embedded Postgres');
  process.exit(2);
}
// Its transactions do not NOTIFY the workers; the waker does after each commit (decision record 0012).
const pool = createPool({ connectionString: config.databaseUrl, max: 20, applicationName: 'wordloom-api', notifyAfterCommit: true });
const waker = new OutboxWaker(pool);
await migrateAll(pool);
// Search reads where the worker writes: with SEARCH_BACKEND=elasticsearch|opensearch, that cluster.
const ops = loadOpsConfig();
const { clusterSearch } = await import('../projection/elasticsearch/select.js');
const cluster = clusterSearch(ops.search);
const app = await buildApp({ pool, logger, wake: waker.wake, ...(cluster ? { search: (q) => cluster.search(q) } : {}) });
await registerApiMetrics(app, pool);
await app.listen({ host: config.host, port: config.port });

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  await app.close();
  await waker.close();
  await cluster?.close();
  await pool.end();
  await stopMetrics();
  await stopTelemetry();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
