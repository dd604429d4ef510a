import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ExportTraceServiceRequest } from '@loomtrace/explorer';

/**
 * For the exporter equivalence tests: an OTLP/HTTP receiver that keeps the raw bodies, and a
 * decoder that turns protobuf and JSON export requests into the same plain objects (ids in hex
 * either way), so what two exporters sent can be compared field by field.
 */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Obj = { [k: string]: Json };

export interface Received {
  url: string;
  bodies: { body: Buffer; contentType: string }[];
  /** Scripted answers still to give (then 200). */
  status: number[];
  close(): Promise<void>;
}

/** Starts a receiver on an ephemeral loopback port; `status` scripts its first answers, each given `delayMs` after the body arrived. */
export async function captureOtlp(status: number[] = [], delayMs = 0): Promise<Received> {
  const bodies: Received['bodies'] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const code = status.shift() ?? 200;
      if (code === 200) bodies.push({ body: Buffer.concat(chunks), contentType: String(req.headers['content-type'] ?? '') });
      const answer = () => res.writeHead(code, { 'content-type': 'application/json' }).end(code === 200 ? '{}' : '');
      if (delayMs > 0) setTimeout(answer, delayMs);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    bodies,
    status,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const b64hex = (v: Json): Json => (typeof v === 'string' ? Buffer.from(v, 'base64').toString('hex') : v);

/** Decoded export requests, as plain objects: ids in hex either way. */
export function decodeOtlp(rx: Received): Obj[] {
  return rx.bodies.map(({ body, contentType }) => {
    if (contentType.includes('json')) return JSON.parse(body.toString('utf8')) as Obj;
    const msg = ExportTraceServiceRequest.toObject(ExportTraceServiceRequest.decode(body), { longs: String, bytes: String, enums: Number, defaults: false }) as Obj;
    for (const rs of (msg['resourceSpans'] ?? []) as Obj[]) {
      for (const ss of (rs['scopeSpans'] ?? []) as Obj[]) {
        for (const s of (ss['spans'] ?? []) as Obj[]) {
          for (const k of ['traceId', 'spanId', 'parentSpanId']) if (k in s) s[k] = b64hex(s[k]!);
          for (const l of (s['links'] ?? []) as Obj[]) for (const k of ['traceId', 'spanId']) l[k] = b64hex(l[k]!);
        }
      }
    }
    return msg;
  });
}
