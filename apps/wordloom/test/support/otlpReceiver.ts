import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttp, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { gunzipSync } from 'node:zlib';
import type { Received } from './otlpCapture.js';
import { freePort } from './procs.js';

/**
 * For the exporter parity tests: an OTLP/HTTP(S) receiver on loopback whose answers are
 * scripted per request (status, headers such as Retry-After, body), that can refuse
 * connections (not listening yet, or stopped) on a port it keeps, can require a client
 * certificate, and records every request it sees (time, path, headers, client certificate).
 * Its `bodies` (accepted requests, gunzipped) decode with decodeOtlp from otlpCapture.ts.
 */

export interface Hit {
  at: number;
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** The status answered. */
  status: number;
  /** CN of the client certificate, on TLS. */
  clientCN?: string | undefined;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export interface Receiver extends Received {
  port: number;
  origin: string;
  hits: Hit[];
  /** How to answer a request; 200 with an empty body unless replaced. */
  answer: (hit: Hit) => Answer;
  /** Starts (or restarts) accepting connections on the same port. */
  listen(): Promise<void>;
  /** Stops accepting connections (they are refused) and drops open ones. */
  stop(): Promise<void>;
}

export interface ReceiverOptions {
  /** Server key and certificate, and the CA client certificates must be signed by. */
  tls?: { key: Buffer; cert: Buffer; ca: Buffer };
  /** false: refuse connections until listen() is called. */
  listening?: boolean;
}

export async function otlpReceiver(o: ReceiverOptions = {}): Promise<Receiver> {
  const port = await freePort();
  const scheme = o.tls ? 'https' : 'http';
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const sock = req.socket as TLSSocket;
      const cn = o.tls ? sock.getPeerCertificate?.()?.subject?.CN : undefined;
      const hit: Hit = { at: Date.now(), path: req.url ?? '', headers: req.headers, body, status: 0, clientCN: Array.isArray(cn) ? cn.join(',') : cn };
      const a = rx.answer(hit);
      hit.status = a.status;
      rx.hits.push(hit);
      if (a.status >= 200 && a.status < 300) rx.bodies.push({ body, contentType: String(req.headers['content-type'] ?? '') });
      res.writeHead(a.status, a.headers ?? {}).end(a.body ?? '');
    });
  };
  let server: Server | undefined;
  const make = (): Server =>
    o.tls ? createHttps({ key: o.tls.key, cert: o.tls.cert, ca: o.tls.ca, requestCert: true, rejectUnauthorized: true }, handler) : createHttp(handler);
  const rx: Receiver = {
    port,
    origin: `${scheme}://127.0.0.1:${port}`,
    url: `${scheme}://127.0.0.1:${port}/v1/traces`,
    bodies: [],
    status: [],
    hits: [],
    answer: () => ({ status: 200 }),
    listen: async () => {
      if (server) return;
      const s = make();
      server = s;
      await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
    },
    stop: async () => {
      const s = server;
      server = undefined;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    },
    close: () => rx.stop(),
  };
  if (o.listening !== false) await rx.listen();
  return rx;
}

export interface Pki {
  dir: string;
  /** PEM files (paths) and their contents. */
  files: Record<'ca' | 'serverKey' | 'serverCert' | 'clientKey' | 'clientCert' | 'otherCa' | 'otherClientKey' | 'otherClientCert', string>;
  read(name: keyof Pki['files']): Buffer;
}

/**
 * A private CA with a server certificate for 127.0.0.1 and a client certificate
 * (CN loomtrace-exporter), and a second, unrelated CA with its own client certificate.
 */
export function makePki(): Pki {
  const dir = mkdtempSync(path.join(tmpdir(), 'loomtrace-pki-'));
  const f = (n: string) => path.join(dir, n);
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const ca = (name: string) =>
    ssl('req', '-x509', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`), '-days', '2', '-subj', `/CN=${name}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  const leaf = (name: string, cn: string, by: string, ext: string) => {
    writeFileSync(f(`${name}.ext`), ext);
    ssl('req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${by}.pem`), '-CAkey', f(`${by}.key`), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '2', '-extfile', f(`${name}.ext`));
  };
  ca('loomtrace-test-ca');
  ca('unrelated-ca');
  leaf('server', '127.0.0.1', 'loomtrace-test-ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  leaf('client', 'loomtrace-exporter', 'loomtrace-test-ca', 'extendedKeyUsage=clientAuth\n');
  leaf('other-client', 'someone-else', 'unrelated-ca', 'extendedKeyUsage=clientAuth\n');
  const files: Pki['files'] = {
    ca: f('loomtrace-test-ca.pem'),
    serverKey: f('server.key'),
    serverCert: f('server.pem'),
    clientKey: f('client.key'),
    clientCert: f('client.pem'),
    otherCa: f('unrelated-ca.pem'),
    otherClientKey: f('other-client.key'),
    otherClientCert: f('other-client.pem'),
  };
  return { dir, files, read: (n) => readFileSync(files[n]) };
}
