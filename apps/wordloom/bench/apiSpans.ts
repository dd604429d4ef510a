/**
 * What the API's spans alone cost per PATCH, in process: no HTTP, no database, no load generator.
 * The four spans a PATCH makes, as the API makes them (the SERVER span @fastify/otel starts from
 * the extracted headers, with the name and attributes app.ts's requestHook sets; `db transaction`
 * by withSpan; `send search` by sendInStatement with its stored context; a pg CLIENT span with
 * the instrumentation's attributes around a turn of the event loop), through the SDK as
 * src/cli/telemetry.ts wires it, exported over OTLP/HTTP to a local receiver. CPU of this process
 * per request (the receiver only keeps the bodies), 16 requests in flight, median of ROUNDS.
 *
 *   node dist/bench/apiSpans.js on          # off | sampledOff | on; N=20000 ROUNDS=5
 *
 * One mode per process (the SDK is global): alternate them from the shell, e.g.
 *   for m in off sampledOff on off sampledOff on; do node dist/bench/apiSpans.js $m; done
 * docs/decisions/0020-api-gc-and-tracing-cost.md compares this with the API's whole tracing cost.
 * RECEIVER=process: the receiver runs in a child process that discards the bodies, so its CPU is
 * not counted here (decision 0022); the spans received are then not counted.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startTelemetry, stopTelemetry } from '../src/cli/telemetry.js';
import { startReceiver } from './otlpReceiver.js';

const mode = process.argv[2] ?? 'on';
if (mode === 'sink') {
  // The child of RECEIVER=process: answers every export at once, keeps nothing, prints its port.
  const s = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end());
  });
  s.keepAliveTimeout = 60_000;
  s.listen(0, '127.0.0.1', () => console.log((s.address() as AddressInfo).port));
  process.on('SIGTERM', () => process.exit(0));
  await new Promise(() => undefined);
}
if (!['off', 'sampledOff', 'on'].includes(mode)) throw new Error(`mode: off | sampledOff | on, not ${mode}`);
const sink = process.env['RECEIVER'] === 'process' ? spawn(process.execPath, [fileURLToPath(import.meta.url), 'sink'], { stdio: ['ignore', 'pipe', 'inherit'] }) : undefined;
const sinkUrl = sink ? await new Promise<string>((resolve) => sink.stdout!.once('data', (b: Buffer) => resolve(`http://127.0.0.1:${b.toString().trim()}`))) : undefined;
const rx = await startReceiver();
if (mode === 'off') process.env['OTEL_SDK_DISABLED'] = 'true';
process.env['OTEL_EXPORTER_OTLP_ENDPOINT'] = sinkUrl ?? rx.url;
process.env['OTEL_EXPORTER_OTLP_PROTOCOL'] = 'http/protobuf';
process.env['OTEL_TRACES_EXPORTER'] = 'otlp';
process.env['OTEL_TRACES_SAMPLER'] = mode === 'sampledOff' ? 'always_off' : 'parentbased_always_on';
startTelemetry('bench-api-spans');

const { context, propagation, trace, SpanKind } = await import('@opentelemetry/api');
const { sendInStatement, withSpan } = await import('@loomtrace/outbox');
const sc = await import('../src/semconv.js');

const server = trace.getTracer('@fastify/otel', '0.21.2');
const pgTracer = trace.getTracer('@opentelemetry/instrumentation-pg', '0.76.0');
const headers = { host: '127.0.0.1:3000', 'content-type': 'application/json', 'content-length': '20' };
const BLOCK = '123e4567-e89b-12d3-a456-426614174000';
const LIBRARY = '223e4567-e89b-12d3-a456-426614174000';

async function patch(i: number): Promise<void> {
  const parent = propagation.extract(context.active(), headers);
  const span = server.startSpan('request', {
    kind: SpanKind.SERVER,
    attributes: { 'fastify.root': '@fastify/otel', 'http.request.method': 'PATCH', 'url.path': `/api/v1/blocks/${BLOCK}`, 'http.route': '/api/v1/blocks/:id' },
  }, parent);
  if (span.isRecording()) {
    span.updateName('PATCH /api/v1/blocks/:id');
    span.setAttribute('url.path', `/api/v1/blocks/${BLOCK}`);
    span.setAttribute(sc.ATTR_REQUEST_ID, `req-${i}`);
    span.setAttribute(sc.ATTR_BLOCK_ID, BLOCK);
  }
  await context.with(trace.setSpan(parent, span), () =>
    withSpan(sc.SpanNames.TRANSACTION, { kind: SpanKind.INTERNAL, attributes: { [sc.ATTR_DB_SYSTEM_NAME]: 'postgresql' } }, async (tx) => {
      await sendInStatement(
        { projection: 'search', eventType: 'block.updated', requestId: `req-${i}` },
        async () => {
          const q = pgTracer.startSpan('pg.query:wordloom_update_block bench', {
            kind: SpanKind.CLIENT,
            attributes: {
              'db.system.name': 'postgresql', 'db.namespace': 'bench', 'server.port': 5432, 'server.address': '127.0.0.1', 'db.operation.name': 'WITH',
              'db.query.text': 'with changed as (update wordloom.blocks set content = coalesce($2, content) … returning …) insert into loomtrace.outbox …',
            },
          });
          await new Promise((r) => setImmediate(r));
          q.end();
          return { id: BLOCK };
        },
        () => ({ id: String(i), aggregateId: BLOCK, aggregateVersion: i, attributes: { [sc.ATTR_BLOCK_ID]: BLOCK, [sc.ATTR_LIBRARY_ID]: LIBRARY } }),
      );
      if (tx.isRecording()) tx.setAttributes({ [sc.ATTR_BLOCK_ID]: BLOCK, [sc.ATTR_LIBRARY_ID]: LIBRARY });
    }),
  );
  span.setAttributes({ 'http.response.status_code': 200 });
  span.end();
}

const N = Number(process.env['N'] ?? 20_000);
for (let i = 0; i < 3_000; i++) await patch(i);
const perRequest: number[] = [];
for (let round = 0; round < Number(process.env['ROUNDS'] ?? 5); round++) {
  const c0 = process.cpuUsage();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < N) await patch(next++);
  }));
  const c = process.cpuUsage(c0);
  perRequest.push((c.user + c.system) / N);
}
const sorted = [...perRequest].sort((a, b) => a - b);
console.log(`${mode}: ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} µs CPU per PATCH's spans (median; rounds ${perRequest.map((x) => x.toFixed(1)).join(' ')})`);
await stopTelemetry();
if (sink) sink.kill();
else console.log(`spans received: ${[...rx.count().values()].reduce((a, b) => a + b, 0)}`);
await rx.close();
