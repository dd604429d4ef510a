/**
 * What the receiver's wire count (src/explorer/otlp/bounds.ts) costs and what it saves, in
 * process, no database: the event-loop time of count + decode + normalize for a typical
 * request (1,000 spans, 5 attributes, as in explorer-bench) and for hostile bodies just under
 * and far over the limits.
 *
 *   npx tsc -p . && node dist/bench/otlpBounds.js
 *
 * BENCH_BEFORE=1 also decodes 1 M empty spans without the count (what every request cost
 * before; 16.7 M of them fit in the 32 MiB cap). Medians; the machine is shared.
 */
import { randomBytes } from 'node:crypto';
import { HttpError } from '@loomtrace/explorer/internal';
import { checkJsonSize, checkProtobufRequest } from '@loomtrace/explorer/internal';
import { checkJsonRequest } from '@loomtrace/explorer/internal';
import { normalizeRequest } from '@loomtrace/explorer/internal';
import { compileExplorerOptions } from '@loomtrace/explorer';
import { ExportTraceServiceRequest, SpanType } from '@loomtrace/explorer/internal';

const limits = compileExplorerOptions().limits;
type Message = { resourceSpans?: unknown };

function median(f: () => void, runs: number): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    f();
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[Math.floor(runs / 2)]!;
}
const ms = (x: number) => `${x.toFixed(2)} ms`;

// A typical request.
const now = BigInt(Date.now()) * 1_000_000n;
const spans = Array.from({ length: 1_000 }, (_, i) => ({
  traceId: randomBytes(16),
  spanId: randomBytes(8),
  parentSpanId: randomBytes(8),
  name: 'process search',
  kind: 5,
  startTimeUnixNano: (now + BigInt(i)).toString(),
  endTimeUnixNano: (now + BigInt(i) + 5_000n).toString(),
  attributes: [
    { key: 'loomtrace.block.id', value: { stringValue: `block-${i}` } },
    { key: 'messaging.system', value: { stringValue: 'loomtrace' } },
    { key: 'loomtrace.attempt', value: { intValue: 1 } },
    { key: 'messaging.message.id', value: { stringValue: String(i) } },
    { key: 'loomtrace.request.id', value: { stringValue: `req-${i}` } },
  ],
  status: { code: 1 },
}));
const typical = Buffer.from(
  ExportTraceServiceRequest.encode(
    ExportTraceServiceRequest.fromObject({ resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'wordloom-worker' } }] }, scopeSpans: [{ scope: { name: 'loomtrace' }, spans }] }] }),
  ).finish(),
);
const typicalJson = Buffer.from(
  JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'wordloom-worker' } }] },
        scopeSpans: [{ scope: { name: 'loomtrace' }, spans: spans.map((s) => ({ ...s, traceId: s.traceId.toString('hex'), spanId: s.spanId.toString('hex'), parentSpanId: s.parentSpanId.toString('hex') })) }],
      },
    ],
  }),
);

const RUNS = 200;
const pbCount = median(() => checkProtobufRequest(typical, limits), RUNS);
const pbDecode = median(() => normalizeRequest(ExportTraceServiceRequest.decode(typical) as Message, limits), RUNS);
const jsonCount = median(() => checkJsonSize(typicalJson, limits), RUNS);
const jsonParse = median(() => normalizeRequest(JSON.parse(typicalJson.toString('utf8')) as Message, limits), RUNS);
const parsed = JSON.parse(typicalJson.toString('utf8')) as object;
const jsonShape = median(() => checkJsonRequest(parsed, limits), RUNS);
console.log(`typical request, 1,000 spans (${typical.length} B protobuf, ${typicalJson.length} B JSON):`);
console.log(`  protobuf: wire count ${ms(pbCount)} + decode/normalize ${ms(pbDecode)} (count adds ${((pbCount / pbDecode) * 100).toFixed(0)}%)`);
console.log(`  JSON: size count ${ms(jsonCount)} + shape check ${ms(jsonShape)} + parse/normalize ${ms(jsonParse)} (checks add ${(((jsonCount + jsonShape) / jsonParse) * 100).toFixed(0)}%)`);

// Hostile bodies, each as the receiver handles it: count, then decode and normalize if allowed.
function varint(n: number): Buffer {
  const out: number[] = [];
  for (; n > 127; n = Math.floor(n / 128)) out.push((n & 127) | 128);
  out.push(n);
  return Buffer.from(out);
}
const field = (no: number, inner: Buffer) => Buffer.concat([varint((no << 3) | 2), varint(inner.length), inner]);
const repeated = (tag: number, count: number) => Buffer.alloc(count * 2, Buffer.from([tag, 0]));
const head = Buffer.from(SpanType.encode({ traceId: Buffer.alloc(16, 1), spanId: Buffer.alloc(8, 2), name: 'x', startTimeUnixNano: 1, endTimeUnixNano: 2 }).finish());
const inSpan = (extra: Buffer) => field(1, field(2, field(2, Buffer.concat([head, extra]))));

function handle(body: Buffer): string {
  try {
    checkProtobufRequest(body, limits);
  } catch (err) {
    return String((err as HttpError).status);
  }
  normalizeRequest(ExportTraceServiceRequest.decode(body) as Message, limits);
  return '200';
}
const hostile: [string, Buffer][] = [
  ['16.7 M empty spans (32 MiB)', field(1, field(2, repeated(0x12, 16_700_000)))],
  ['16.7 M empty attributes in a span', inSpan(repeated(0x4a, 16_700_000))],
  ['50,000 empty spans (at the span limit)', field(1, field(2, repeated(0x12, 50_000)))],
  ['495,000 empty events in a span (under the value limit)', inSpan(repeated(0x5a, 495_000))],
  ['990,000 empty attributes in a span (under the value limit)', inSpan(repeated(0x4a, 990_000))],
  ['990,000 empty trace ids in a span (under the value limit)', inSpan(repeated(0x0a, 990_000))],
];
console.log('hostile bodies (event-loop time of count + decode + normalize; heap after):');
for (const [label, body] of hostile) {
  let status = '';
  const t = median(() => (status = handle(body)), 5);
  console.log(`  ${label}: ${status} in ${ms(t)}, heap ${Math.round(process.memoryUsage().heapUsed / 1048576)} MiB`);
}
if (process.env['BENCH_BEFORE']) {
  const million = field(1, field(2, repeated(0x12, 1_000_000)));
  const t = performance.now();
  normalizeRequest(ExportTraceServiceRequest.decode(million) as Message, limits);
  console.log(`before (no count): 1 M empty spans decoded and normalized in ${ms(performance.now() - t)}, heap ${Math.round(process.memoryUsage().heapUsed / 1048576)} MiB`);
}
