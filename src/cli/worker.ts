/** The worker process: `node dist/src/cli/worker.js` (DATABASE_URL required). */
import { startTelemetry, stopTelemetry } from './telemetry.js';

startTelemetry('wordloom-worker');

const { loadConfig } = await import('./config.js');
const { createLogger } = await import('./logger.js');
const { createPool } = await import('../db/pool.js');
const { migrate } = await import('../db/migrate.js');
const { OutboxWorker } = await import('../outbox/worker.js');
const { PostgresSearchSink } = await import('../projection/postgres/sink.js');
const { SEARCH_PROJECTION } = await import('../service/model.js');

const config = loadConfig();
const logger = createLogger('wordloom-worker');
if (!config.databaseUrl) {
  logger.error('DATABASE_URL is not set; use `npm start` to get an embedded Postgres');
  process.exit(2);
}
const w = config.worker;
const pool = createPool({ connectionString: config.databaseUrl, max: w.concurrency + 4, applicationName: 'wordloom-worker' });
await migrate(pool);
const worker = new OutboxWorker({
  pool,
  projection: SEARCH_PROJECTION,
  sink: new PostgresSearchSink(pool),
  ...(w.id ? { workerId: w.id } : {}),
  batchSize: w.batchSize,
  concurrency: w.concurrency,
  leaseMs: w.leaseMs,
  pollIntervalMs: w.pollIntervalMs,
  maxAttempts: w.maxAttempts,
  shutdownGraceMs: w.shutdownGraceMs,
  logger,
});
await worker.start();

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  await worker.stop();
  await pool.end();
  await stopTelemetry();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
