/**
 * One POST of an export request, classified as the stock OTLP/HTTP exporter classifies it
 * (@opentelemetry/otlp-exporter-base 0.222.0, build/src/transport/http-transport-utils.js and
 * is-export-retryable.js): 2xx is a success (its body kept, up to 4 MiB, for the partial
 * success); 429, 502, 503 and 504 are retryable, with the server's Retry-After; a connection
 * error is retryable when its code is one of ECONNRESET, ECONNREFUSED, EPIPE, ETIMEDOUT,
 * EAI_AGAIN, ENOTFOUND, ENETUNREACH, EHOSTUNREACH, and so is a try that times out; anything
 * else (other statuses, TLS errors, an oversized response) fails for good.
 */
import http from 'node:http';
import https from 'node:https';
import type { OtlpHttpProtocol, TlsMaterial } from './config.js';
import { USER_AGENT } from './config.js';

export type SendResult = (
  | { status: 'success'; data: Buffer }
  | { status: 'retryable'; retryInMs?: number | undefined; why: string }
  | { status: 'failure'; why: string }
) & {
  /** Settled before the whole body was handed to the OS ('finish'): its buffers may still be read. */
  unwritten?: true;
};

export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([429, 502, 503, 504]);
const RETRYABLE_NETWORK: ReadonlySet<string> = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'ENETUNREACH', 'EHOSTUNREACH']);
/** The stock exporter's limit on a response body; more is a failure. */
export const MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/**
 * Retry-After in milliseconds: delay-seconds (parsed as the stock exporter does, parseInt; 0 or
 * less means now) or an HTTP date (its distance from now, 0 if past). Undefined when absent or
 * unparseable: the computed backoff applies (the stock exporter retries at once then).
 */
export function retryAfterMs(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const seconds = Number.parseInt(value, 10);
  if (Number.isInteger(seconds)) return seconds > 0 ? seconds * 1000 : 0;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export interface TransportOptions {
  url: string;
  headers: Record<string, string>;
  protocol: OtlpHttpProtocol;
  compression: 'gzip' | 'none';
  tls?: TlsMaterial | undefined;
}

export class HttpTransport {
  private readonly target: URL;
  private readonly request: typeof http.request;
  private readonly agent: http.Agent;
  /** Every request's headers but Content-Length, made once. */
  private readonly headers: Readonly<Record<string, string>>;

  constructor(o: TransportOptions) {
    this.target = new URL(o.url);
    const secure = this.target.protocol === 'https:';
    this.request = secure ? https.request : http.request;
    // As the stock exporter's agent factory: keepAlive, and ca/cert/key for https only.
    this.agent = secure ? new https.Agent({ keepAlive: true, ca: o.tls?.ca, cert: o.tls?.cert, key: o.tls?.key }) : new http.Agent({ keepAlive: true });
    this.headers = {
      ...o.headers,
      'Content-Type': o.protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
      'User-Agent': USER_AGENT,
      ...(o.compression === 'gzip' ? { 'Content-Encoding': 'gzip' } : {}),
    };
  }

  /** POSTs the body (its chunks in order); never rejects. */
  send(body: readonly Buffer[], timeoutMs: number): Promise<SendResult> {
    let length = 0;
    for (const b of body) length += b.length;
    const u = this.target;
    const headers = { ...this.headers, 'Content-Length': String(length) };
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      let finished = false;
      const done = (r: SendResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(finished ? r : { ...r, unwritten: true });
      };
      const req = this.request(
        { method: 'POST', protocol: u.protocol, hostname: u.hostname, port: u.port, path: u.pathname + u.search, headers, agent: this.agent },
        (res) => {
          const code = res.statusCode ?? 0;
          const classify = (data: Buffer | undefined): SendResult => {
            if (code >= 200 && code <= 299) return { status: 'success', data: data ?? Buffer.alloc(0) };
            if (RETRYABLE_STATUS.has(code)) return { status: 'retryable', retryInMs: retryAfterMs(res.headers['retry-after']), why: `HTTP ${code}` };
            return { status: 'failure', why: `HTTP ${code}` };
          };
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) {
              done({ status: 'failure', why: `response over ${MAX_RESPONSE_BYTES} bytes` });
              res.destroy();
              return;
            }
            chunks.push(c);
          });
          res.on('error', () => done(classify(undefined)));
          res.on('end', () => done(classify(Buffer.concat(chunks))));
        },
      );
      const timer = setTimeout(() => {
        done({ status: 'retryable', why: 'request timed out' });
        req.destroy();
      }, Math.max(1, timeoutMs));
      timer.unref();
      req.on('error', (err: NodeJS.ErrnoException) => {
        const code = typeof err.code === 'string' ? err.code : undefined;
        done(code !== undefined && RETRYABLE_NETWORK.has(code) ? { status: 'retryable', why: code } : { status: 'failure', why: code ?? 'request error' });
      });
      req.once('finish', () => (finished = true));
      if (body.length === 1) req.end(body[0]);
      else {
        req.cork();
        for (const b of body) req.write(b);
        req.end();
      }
    });
  }

  /** Closes idle connections. */
  shutdown(): void {
    this.agent.destroy();
  }
}
