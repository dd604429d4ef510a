/**
 * Metrics in the processes: one MeterProvider whose reader is the Prometheus exporter (text
 * format), served by the API on its own `/metrics` route and by the worker on a small HTTP
 * server of its own (`METRICS_PORT`, default 9464) with `/healthz` and `/readyz` beside it.
 * Both bind 127.0.0.1 unless METRICS_HOST says otherwise.
 *
 * Call `startMetrics` before creating an OutboxWorker: instruments are taken from the global
 * meter provider when the worker is built.
 */
import type { SearchTarget } from '../pipeline.js';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { metrics } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { envInt } from './config.js';

let provider: MeterProvider | undefined;
let exporter: PrometheusExporter | undefined;

/** Registers the global MeterProvider with a Prometheus reader (no server of its own). Idempotent. */
export function startMetrics(serviceName: string): PrometheusExporter {
  if (exporter) return exporter;
  exporter = new PrometheusExporter({ preventServerStart: true });
  provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': serviceName }), readers: [exporter] });
  metrics.setGlobalMeterProvider(provider);
  return exporter;
}

export async function stopMetrics(): Promise<void> {
  const p = provider;
  provider = undefined;
  exporter = undefined;
  if (p) await p.shutdown().catch(() => undefined);
}

/** Answers a scrape in Prometheus text format (for any node:http request, e.g. Fastify's `req.raw`). */
export function serveMetrics(req: IncomingMessage, res: ServerResponse): void {
  if (!exporter) {
    res.writeHead(503, { 'content-type': 'text/plain' }).end('# metrics not started\n');
    return;
  }
  exporter.getMetricsRequestHandler(req, res);
}

/** Readiness: resolves with a reason when not ready, undefined when ready. */
export type ReadyCheck = () => Promise<string | undefined>;

/**
 * The worker's HTTP side: `/metrics`, `/healthz` (the process is alive) and `/readyz`
 * (database reachable, migrations current, sink reachable). Resolves once listening.
 */
export async function startOpsServer(opts: { host: string; port: number; ready: ReadyCheck }): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET' }).end();
    } else if (url === '/metrics') {
      serveMetrics(req, res);
    } else if (url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    } else if (url === '/readyz') {
      opts.ready().then(
        (reason) => {
          const body = reason ? { status: 'not ready', reason } : { status: 'ready' };
          res.writeHead(reason ? 503 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
        },
        () => res.writeHead(503, { 'content-type': 'application/json' }).end('{"status":"not ready","reason":"readiness check failed"}'),
      );
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"status":"not found"}');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return { server, port, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/** Operations settings the base config does not carry, read once from the environment and frozen. */
export interface OpsConfig {
  /** OTEL_SERVICE_NAME when set: the metrics resource's service.name. */
  readonly serviceName: string | undefined;
  readonly metricsHost: string;
  /** The worker's metrics/health port; 0 picks a free one; -1 disables the server. */
  readonly metricsPort: number;
  /** How long done events are kept before the upkeep loop deletes them. */
  readonly outboxRetentionMs: number;
  readonly upkeepIntervalMs: number;
  readonly upkeepBatchSize: number;
  /** Where the worker writes and search reads, from SEARCH_BACKEND, ELASTICSEARCH_URL / OPENSEARCH_URL and SEARCH_INDEX, decided once. */
  readonly search: SearchTarget;
}

export function loadOpsConfig(env: NodeJS.ProcessEnv = process.env): OpsConfig {
  const backend = (env['SEARCH_BACKEND'] || 'postgres').toLowerCase();
  if (backend !== 'postgres' && backend !== 'elasticsearch' && backend !== 'opensearch') {
    throw new Error(`SEARCH_BACKEND must be postgres, elasticsearch or opensearch, got "${env['SEARCH_BACKEND']}"`);
  }
  const cfg: OpsConfig = {
    serviceName: env['OTEL_SERVICE_NAME'] || undefined,
    metricsHost: env['METRICS_HOST'] || '127.0.0.1',
    metricsPort: envInt(env, 'METRICS_PORT', 9464, -1, 65535),
    outboxRetentionMs: envInt(env, 'OUTBOX_RETENTION_MS', 86_400_000, 0, 365 * 86_400_000),
    upkeepIntervalMs: envInt(env, 'OUTBOX_UPKEEP_INTERVAL_MS', 60_000, 100, 86_400_000),
    upkeepBatchSize: envInt(env, 'OUTBOX_UPKEEP_BATCH', 5_000, 1, 1_000_000),
    search: { backend, url: backend === 'opensearch' ? env['OPENSEARCH_URL'] || undefined : backend === 'elasticsearch' ? env['ELASTICSEARCH_URL'] || undefined : undefined, index: env['SEARCH_INDEX'] || 'wordloom-blocks' },
  };
  if (backend === 'elasticsearch' && !cfg.search.url) throw new Error('SEARCH_BACKEND=elasticsearch needs ELASTICSEARCH_URL');
  if (backend === 'opensearch' && !cfg.search.url) throw new Error('SEARCH_BACKEND=opensearch needs OPENSEARCH_URL');
  return Object.freeze(cfg);
}

/**
 * Everything the worker process runs beside the worker: queue gauges, the upkeep loop, and
 * the metrics/health server. Returns a stop function for shutdown.
 */
export async function startWorkerOps(o: {
  pool: import('@loomtrace/outbox').Pool;
  sink: import('@loomtrace/outbox').Sink;
  projection: string;
  ops: OpsConfig;
  logger: import('@loomtrace/outbox').Logger;
}): Promise<{ port: number | undefined; stop(): Promise<void> }> {
  const { registerQueueGauges } = await import('@loomtrace/outbox');
  const { OutboxUpkeep } = await import('@loomtrace/outbox');
  const { allMigrationsCurrent } = await import('../db/migrate.js');
  const unregister = registerQueueGauges(o.pool, { projections: [o.projection], onError: () => undefined });
  const upkeep = new OutboxUpkeep({
    pool: o.pool,
    retentionMs: o.ops.outboxRetentionMs,
    intervalMs: o.ops.upkeepIntervalMs,
    batchSize: o.ops.upkeepBatchSize,
    logger: o.logger,
  });
  upkeep.start();
  const ready: ReadyCheck = async () => {
    try {
      await o.pool.query('select 1');
    } catch {
      return 'database unreachable';
    }
    if (!(await allMigrationsCurrent(o.pool))) return 'migrations are not current';
    try {
      await o.sink.ping?.();
    } catch {
      return 'sink unreachable';
    }
    return undefined;
  };
  let server: Awaited<ReturnType<typeof startOpsServer>> | undefined;
  if (o.ops.metricsPort >= 0) {
    server = await startOpsServer({
      host: o.ops.metricsHost,
      port: o.ops.metricsPort,
      ready,
    }).catch((err: NodeJS.ErrnoException) => {
      // Another worker on this host holds the port: keep working, without a metrics server.
      if (err.code !== 'EADDRINUSE') throw err;
      o.logger.warn({ port: o.ops.metricsPort }, 'metrics port in use; this worker serves no /metrics (set METRICS_PORT)');
      return undefined;
    });
    if (server) o.logger.info({ metrics_url: `http://${o.ops.metricsHost}:${server.port}/metrics`, port: server.port }, 'worker metrics and health listening');
  }
  return {
    port: server?.port,
    async stop() {
      await upkeep.stop();
      unregister();
      await server?.close();
    },
  };
}

/**
 * The API's side: `GET /metrics` on the API's own port, and the queue gauges (so the backlog
 * stays visible, and alertable, even when every worker is down).
 */
export async function registerApiMetrics(app: import('fastify').FastifyInstance, pool: import('@loomtrace/outbox').Pool): Promise<() => void> {
  const { registerQueueGauges } = await import('@loomtrace/outbox');
  const { SEARCH_PROJECTION } = await import('../service/model.js');
  app.get('/metrics', { schema: { hide: true } }, (req, reply) => {
    reply.hijack();
    serveMetrics(req.raw, reply.raw);
  });
  return registerQueueGauges(pool, { projections: [SEARCH_PROJECTION], onError: () => undefined });
}
