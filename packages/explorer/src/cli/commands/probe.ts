/**
 * `loomtrace probe <aggregate-type> [--projection P] [--once] [--every S] [--timeout S]
 * [--metrics-port N] [--metrics-host H] [--no-shape] [--json]`: a canary change through a
 * declared pipeline, waited for until the projection holds it, its trace held to the declared
 * shape. `--once`: one run, exit 0 when healthy, 1 with the reason. Otherwise a run every S
 * seconds (default 60) with Prometheus metrics on /metrics (default 127.0.0.1:9466).
 */
import { createServer } from 'node:http';
import { createPool } from '@loomtrace/outbox';
import type { CliContext } from '../context.js';
import { namedPipeline } from '../namedPipeline.js';
import { runProbe, type ProbeResult } from '../../probe/probe.js';
import { ProbeMetrics } from '../../probe/metrics.js';
import { flag, option, positional } from '../../text/args.js';

const USAGE = 'usage: loomtrace probe <aggregate-type> [--projection P] [--once] [--every S] [--timeout S] [--metrics-port N] [--metrics-host H] [--no-shape] [--json]\n';

function seconds(args: string[], name: string, dflt: number, max: number): number | undefined {
  const raw = option(args, name);
  if (raw === undefined) return dflt;
  const n = Number(raw);
  return Number.isFinite(n) && n > 0 && n <= max ? n : undefined;
}

export async function run(args: string[], ctx: CliContext): Promise<number> {
  const [type, extra] = positional(args, ['--projection', '--every', '--timeout', '--metrics-port', '--metrics-host']);
  const every = seconds(args, '--every', 60, 86_400);
  const timeout = seconds(args, '--timeout', 30, 3_600);
  const port = Number(option(args, '--metrics-port') ?? 9466);
  if (!type || extra !== undefined || every === undefined || timeout === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(USAGE);
    return 2;
  }
  const pool = createPool({ connectionString: ctx.databaseUrl, max: 4, applicationName: 'loomtrace-probe' });
  try {
    const pipeline = namedPipeline(ctx, pool, type, option(args, '--projection'));
    if (!pipeline) return 2;
    if (!pipeline.canary) {
      process.stderr.write(`the ${pipeline.aggregateType} → ${pipeline.projection} pipeline declares no canary change to probe with\n`);
      return 2;
    }
    const once = () => runProbe({ db: pool, pipeline, timeoutMs: timeout * 1000, checkShape: !flag(args, '--no-shape') });
    const print = (r: ProbeResult) =>
      process.stdout.write(flag(args, '--json') ? `${JSON.stringify(r)}\n` : `${new Date().toISOString()} ${r.ok ? 'ok' : `FAIL ${r.outcome}`}: ${pipeline.aggregateType} → ${pipeline.projection}${r.aggregateId ? ` (${r.aggregateId} v${r.version})` : ''}: ${r.reason}\n`);
    if (flag(args, '--once')) {
      const r = await once();
      print(r);
      return r.ok ? 0 : 1;
    }
    const metrics = new ProbeMetrics();
    const server = createServer((req, res) => {
      if (req.url === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
        res.end(metrics.text());
      } else {
        res.writeHead(404).end();
      }
    });
    const host = option(args, '--metrics-host') ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
    process.stdout.write(`probe metrics on http://${host}:${(server.address() as { port: number }).port}/metrics, a canary change every ${every} s\n`);
    let stop: () => void = () => undefined;
    const stopped = new Promise<void>((r) => (stop = r));
    process.once('SIGTERM', () => stop());
    process.once('SIGINT', () => stop());
    for (let running = true; running; ) {
      const r = await once();
      metrics.record(pipeline, r);
      print(r);
      running = await Promise.race([stopped.then(() => false), new Promise<boolean>((res) => setTimeout(() => res(true), every * 1000).unref())]);
    }
    await new Promise<void>((r) => server.close(() => r()));
    return 0;
  } finally {
    await pool.end();
  }
}
