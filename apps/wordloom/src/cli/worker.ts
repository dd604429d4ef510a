/** The worker process: `node dist/src/cli/worker.js` (DATABASE_URL required). */
import { startWorkerTelemetry } from './workerTelemetry.js';

const telemetry = await startWorkerTelemetry('wordloom-worker');
const { startMetrics, stopMetrics, startWorkerOps, loadOpsConfig } = await import('./metrics.js');
const ops = loadOpsConfig();
startMetrics(ops.serviceName ?? 'wordloom-worker');

const { loadConfig } = await import('./config.js');
const { createLogger } = await import('./logger.js');
const { createPool, OutboxWorker } = await import('@loomtrace/outbox');
const { migrateAll } = await import('../db/migrate.js');
const { createSearchSink } = await import('../projection/elasticsearch/select.js');
const { SEARCH_PROJECTION } = await import('../service/model.js');

const config = loadConfig();
const logger = createLogger('wordloom-worker');
if (!config.databaseUrl) {
  logger.error('DATABASE_URL is not set; use `npm start` to get an embedded Postgres');
  process.exit(2);
}
// Fault injection for drills and tests (src/projection/faults.ts): LOOMTRACE_FAULTS="429:0.2,timeout:0.1,seed:42".
const { parseFaultSpec, withFaults } = await import('../projection/faults.js');
let faults: ReturnType<typeof parseFaultSpec>;
try {
  faults = parseFaultSpec(process.env['LOOMTRACE_FAULTS']);
} catch (err) {
  logger.error((err as Error).message);
  process.exit(2);
}
if (faults) logger.warn({ faults }, 'fault injection is ON (LOOMTRACE_FAULTS)');
const w = config.worker;
const pool = createPool({ connectionString: config.databaseUrl, max: w.concurrency + 4, applicationName: 'wordloom-worker' });
await migrateAll(pool);
const sink = await createSearchSink(pool, { ...ops.search, onIndexError: (err) => logger.warn({ err: (err as Error).message?.slice(0, 200) }, 'search index not created yet; will retry before the first write') });
const worker = new OutboxWorker({
  pool,
  projection: SEARCH_PROJECTION,
  sink: withFaults(sink, faults),
  ...(w.id ? { workerId: w.id } : {}),
  batchSize: w.batchSize,
  concurrency: w.concurrency,
  leaseMs: w.leaseMs,
  pollIntervalMs: w.pollIntervalMs,
  maxAttempts: w.maxAttempts,
  shutdownGraceMs: w.shutdownGraceMs,
  presence: w.presence,
  logger,
  eventSpans: telemetry.eventSpans,
});
await worker.start();
const workerOps = await startWorkerOps({ pool, sink, projection: SEARCH_PROJECTION, ops, logger });

let stopping = false;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  logger.info({ signal }, 'shutting down');
  await worker.stop();
  await workerOps.stop();
  await sink.close?.();
  await pool.end();
  await stopMetrics();
  await telemetry.stop();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
