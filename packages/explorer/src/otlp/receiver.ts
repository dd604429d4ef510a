/**
 * The OTLP/HTTP trace receiver (`POST /v1/traces`, binary protobuf or JSON, optionally
 * gzip), so any OpenTelemetry SDK's default HTTP exporter can send to the explorer.
 *
 * Per the OTLP/HTTP spec: 200 with a partial-success body when some spans are rejected;
 * 400 for a body that cannot be decoded (not retryable); 413 for a body over the limits;
 * 415 for an unknown content type or encoding; 429 / 503 with Retry-After when the write
 * queue is full or the store fails (retryable). No request can crash the process: every
 * failure is caught and answered.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ExplorerOptions } from '../options.js';
import type { SpanWriteQueue } from '../store/writeQueue.js';
import { HttpError, readBody } from './body.js';
import { checkJsonSize, checkProtobufRequest } from './bounds.js';
import { checkJsonRequest } from './jsonShape.js';
import { normalizeRequest, type Normalized } from './normalize.js';
import { ExportTraceServiceRequest, ExportTraceServiceResponse, RpcStatus } from './proto.js';

type Format = 'protobuf' | 'json';

export interface ReceiverStats {
  requests: number;
  accepted: number;
  rejected: number;
  byStatus: Record<string, number>;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

/** `Authorization: Bearer <token>` against the configured token, in constant time (lengths too). */
export function tokenMatches(expected: string | undefined, header: string | undefined): boolean {
  if (!expected) return true;
  if (!header?.startsWith('Bearer ')) return false;
  return timingSafeEqual(sha256(header.slice(7).trim()), sha256(expected));
}

function decode(format: Format, body: Buffer, options: ExplorerOptions): Normalized {
  const limits = options.limits;
  const invalid = () => new HttpError(400, `body is not a valid OTLP ${format === 'protobuf' ? 'protobuf' : 'JSON'} ExportTraceServiceRequest`);
  let message: { resourceSpans?: unknown };
  // Counted on the wire first (bounds.ts): a small body must not expand into millions of objects.
  if (format === 'protobuf') {
    checkProtobufRequest(body, limits);
    try {
      message = ExportTraceServiceRequest.decode(body) as unknown as { resourceSpans?: unknown };
    } catch {
      throw invalid();
    }
  } else {
    checkJsonSize(body, limits);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw invalid();
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw invalid();
    checkJsonRequest(parsed, limits);
    message = parsed as { resourceSpans?: unknown };
  }
  return normalizeRequest(message, limits);
}

function send(res: ServerResponse, format: Format, status: number, body: { partialSuccess?: { rejectedSpans: number; errorMessage: string } } | { code: number; message: string }, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  let payload: Buffer | string;
  if (format === 'protobuf') {
    const type = 'partialSuccess' in body || status === 200 ? ExportTraceServiceResponse : RpcStatus;
    payload = Buffer.from(type.encode(type.fromObject(body)).finish());
  } else {
    payload = JSON.stringify(body);
  }
  res.writeHead(status, { 'content-type': format === 'protobuf' ? 'application/x-protobuf' : 'application/json', 'content-length': String(Buffer.byteLength(payload)), ...headers });
  res.end(payload);
}

export class OtlpReceiver {
  readonly stats: ReceiverStats = { requests: 0, accepted: 0, rejected: 0, byStatus: {} };
  private server: Server | undefined;

  constructor(
    private readonly options: ExplorerOptions,
    private readonly queue: SpanWriteQueue,
    private readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void = () => undefined,
  ) {}

  async listen(): Promise<{ host: string; port: number }> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        // Last resort: an answer, never a crash.
        this.log('error', 'receiver failure', { err: err instanceof Error ? err.message : String(err) });
        if (!res.headersSent) send(res, 'json', 500, { code: 13, message: 'internal error' });
        else res.destroy();
      });
    });
    server.requestTimeout = 60_000;
    server.headersTimeout = 15_000;
    // Longer than clients' idle timeouts (undici 4 s, the OTel exporter's agent), so a client
    // never sends on a connection we are closing (which would end in a reset).
    server.keepAliveTimeout = 65_000;
    server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.otlpPort, this.options.otlpHost, () => resolve());
    });
    this.server = server;
    const addr = server.address();
    return { host: this.options.otlpHost, port: typeof addr === 'object' && addr ? addr.port : this.options.otlpPort };
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    await new Promise<void>((r) => {
      s.close(() => r());
      s.closeIdleConnections();
    });
  }

  private count(status: number): void {
    this.stats.byStatus[status] = (this.stats.byStatus[status] ?? 0) + 1;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.stats.requests++;
    const url = req.url ?? '/';
    const path = url.split('?')[0];
    const ctype = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const format: Format = ctype === 'application/json' ? 'json' : 'protobuf';
    const answer = (status: number, message: string, headers: Record<string, string> = {}) => {
      this.count(status);
      // A refused body may still be arriving: close the connection after the answer.
      send(res, format, status, { code: status === 429 || status === 503 ? 14 : 3, message }, { connection: 'close', ...headers });
    };
    if (path !== '/v1/traces') {
      req.resume();
      return answer(404, 'only /v1/traces is served here');
    }
    if (req.method !== 'POST') {
      req.resume();
      return answer(405, 'use POST');
    }
    if (!tokenMatches(this.options.token, req.headers.authorization)) {
      req.resume();
      return answer(401, 'a valid bearer token is required');
    }
    if (ctype !== 'application/x-protobuf' && ctype !== 'application/protobuf' && ctype !== 'application/json') {
      req.resume();
      return answer(415, 'content-type must be application/x-protobuf or application/json');
    }
    const enc = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
    if (enc !== 'identity' && enc !== 'gzip' && enc !== 'deflate') {
      req.resume();
      return answer(415, 'content-encoding must be gzip, deflate or identity');
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > this.options.maxBodyBytes) {
      req.resume();
      return answer(413, `body larger than ${this.options.maxBodyBytes} bytes`);
    }
    let normalized: Normalized;
    try {
      const body = await readBody(req, enc as 'identity' | 'gzip' | 'deflate', this.options.maxBodyBytes, this.options.maxDecompressedBytes);
      normalized = decode(format, body, this.options);
    } catch (err) {
      if (err instanceof HttpError) return answer(err.status, err.message);
      if (err instanceof RangeError) return answer(400, 'body could not be decoded');
      throw err;
    }
    const written = this.queue.offer(normalized.rows, normalized.resources);
    if (!written) return answer(429, 'the span store is busy; retry later', { 'retry-after': '1' });
    try {
      await written;
    } catch (err) {
      this.log('warn', 'span write failed', { err: err instanceof Error ? err.message : String(err), spans: normalized.rows.length });
      return answer(503, 'the span store is unavailable; retry later', { 'retry-after': '2' });
    }
    this.stats.accepted += normalized.rows.length;
    this.stats.rejected += normalized.rejected;
    this.count(200);
    const partial =
      normalized.rejected > 0
        ? { partialSuccess: { rejectedSpans: normalized.rejected, errorMessage: `rejected ${normalized.rejected} span(s): ${normalized.problems.join('; ')}` } }
        : {};
    send(res, format, 200, partial);
  }
}
