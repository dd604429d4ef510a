/**
 * Exports the worker's per-event spans, encoded by a SpanWriter, to the OTLP/HTTP endpoint the
 * SDK's own exporter uses, batched the way the SDK's BatchSpanProcessor batches (schedule
 * delay, max export batch size, bounded queue that drops and counts when full).
 */
import http from 'node:http';
import https from 'node:https';
import { gzip } from 'node:zlib';
import { promisify } from 'node:util';
import { diag } from '@opentelemetry/api';
import { JsonSpans, ProtoSpans, type EncodedSpans, type SpanWriter } from './common.js';
import { jsonAttributes } from './json.js';
import { ProtoBuffer, ProtoSpanWriter, varintSize } from './proto.js';
import { JsonSpanWriter } from './json.js';

const gzipAsync = promisify(gzip);

/** The parts of an SDK Resource we read (a ReadableSpan's `.resource`). */
export interface ResourceLike {
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly schemaUrl?: string | undefined;
  readonly asyncAttributesPending?: boolean | undefined;
  waitForAsyncAttributes?(): Promise<void>;
}
/** The parts of an InstrumentationScope we read (a ReadableSpan's `.instrumentationScope`). */
export interface ScopeLike {
  readonly name: string;
  readonly version?: string | undefined;
  readonly schemaUrl?: string | undefined;
  readonly attributes?: Readonly<Record<string, unknown>> | undefined;
  readonly droppedAttributesCount?: number | undefined;
}
/** Where spans come from: the resource and scope the SDK puts on its own spans. */
export interface SpanOrigin {
  readonly resource: ResourceLike;
  readonly scope: ScopeLike;
}

export type OtlpHttpProtocol = 'http/protobuf' | 'http/json';

export interface EventSpanExporterOptions {
  url: string;
  headers: Record<string, string>;
  protocol: OtlpHttpProtocol;
  timeoutMs: number;
  compression: 'gzip' | 'none';
  scheduledDelayMs: number;
  maxExportBatchSize: number;
  maxQueueSize: number;
  /** Retries of a 429/502/503/504 or a connection error. Default 2. */
  maxRetries?: number;
  /** First backoff; doubles each retry (with ±20% jitter), or the server's Retry-After. Default 500 ms. */
  initialBackoffMs?: number;
}

interface Group {
  origin: SpanOrigin;
  parts: EncodedSpans[];
  count: number;
}

/** The encoded resource and scope of one origin, for both protocols' envelopes. */
interface Envelope {
  /** protobuf: ResourceSpans.resource field (tag+len+Resource), then the tail (schema_url). */
  resource: Buffer;
  resourceTail: Buffer;
  scope: Buffer;
  scopeTail: Buffer;
  /** JSON: text before the spans of one ResourceSpans and after them. */
  jsonHead: string;
  jsonTail: string;
}


function writeVarint(b: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    b[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  b[pos++] = n;
  return pos;
}

function encodeEnvelope(o: SpanOrigin): Envelope {
  const res = o.resource;
  const attrs = res.attributes;
  const r = new ProtoBuffer(1024);
  r.byte(0x0a);
  r.begin();
  r.attributes(0x0a, attrs);
  r.byte(0x10);
  r.byte(0);
  r.end();
  const rt = new ProtoBuffer(64);
  if (res.schemaUrl) {
    rt.byte(0x1a);
    rt.str(res.schemaUrl);
  }
  const sc = o.scope;
  const s = new ProtoBuffer(256);
  s.byte(0x0a);
  s.begin();
  s.byte(0x0a);
  s.str(sc.name);
  if (sc.version) {
    s.byte(0x12);
    s.str(sc.version);
  }
  if (sc.attributes) s.attributes(0x1a, sc.attributes);
  if (sc.droppedAttributesCount) {
    s.byte(0x20);
    s.varint(sc.droppedAttributesCount);
  }
  s.end();
  const st = new ProtoBuffer(64);
  if (sc.schemaUrl) {
    st.byte(0x1a);
    st.str(sc.schemaUrl);
  }
  // JSON, in the key order of the SDK's createResource / createInstrumentationScope.
  const schema = res.schemaUrl ? `,"schemaUrl":${JSON.stringify(res.schemaUrl)}` : '';
  const resource = `{"attributes":[${jsonAttributes(attrs)}],"droppedAttributesCount":0${schema}}`;
  let scope = `{"name":${JSON.stringify(sc.name)}`;
  if (sc.version !== undefined) scope += `,"version":${JSON.stringify(sc.version)}`;
  if (sc.attributes && Object.keys(sc.attributes).length > 0) {
    scope += `,"attributes":[${jsonAttributes(sc.attributes)}],"droppedAttributesCount":${sc.droppedAttributesCount ?? 0}`;
  }
  scope += '}';
  const scopeSchema = sc.schemaUrl !== undefined ? `,"schemaUrl":${JSON.stringify(sc.schemaUrl)}` : '';
  return {
    resource: r.copy(),
    resourceTail: rt.copy(),
    scope: s.copy(),
    scopeTail: st.copy(),
    jsonHead: `{"resource":${resource},"scopeSpans":[{"scope":${scope},"spans":[`,
    jsonTail: `]${scopeSchema}}]${schema}}`,
  };
}

/**
 * One group per origin, in order of first appearance: spans of several origins interleave
 * (a request's server, database and loomtrace spans), and each group costs an envelope.
 */
function mergeByOrigin(groups: Group[]): Group[] {
  if (groups.length < 2) return groups;
  const by = new Map<SpanOrigin, Group>();
  for (const g of groups) {
    const m = by.get(g.origin);
    if (m === undefined) by.set(g.origin, { origin: g.origin, parts: [...g.parts], count: g.count });
    else {
      for (const part of g.parts) m.parts.push(part);
      m.count += g.count;
    }
  }
  return by.size === groups.length ? groups : [...by.values()];
}

/** Result of one POST. */
type SendResult = { ok: true } | { ok: false; retryable: boolean; retryInMs?: number; why: string };

export class EventSpanExporter {
  readonly writer: SpanWriter;
  /** Spans dropped because the queue was full, since the start. */
  dropped = 0;
  /** Spans dropped because the receiver refused them or could not be reached. */
  failed = 0;
  /** Spans the receiver accepted. */
  exported = 0;
  private readonly opts: Required<EventSpanExporterOptions>;
  private readonly target: URL;
  private readonly agent: http.Agent;
  private queue: Group[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  private exporting: Promise<void> | undefined;
  private droppedSinceWarn = 0;
  private closed = false;
  private readonly envelopes = new WeakMap<SpanOrigin, Envelope>();

  constructor(options: EventSpanExporterOptions) {
    this.opts = { maxRetries: 2, initialBackoffMs: 500, ...options };
    if (this.opts.maxExportBatchSize > this.opts.maxQueueSize) this.opts.maxExportBatchSize = this.opts.maxQueueSize;
    this.target = new URL(options.url);
    this.writer = options.protocol === 'http/json' ? new JsonSpanWriter() : new ProtoSpanWriter();
    this.agent = this.target.protocol === 'https:' ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
  }

  get protocol(): OtlpHttpProtocol {
    return this.opts.protocol;
  }

  /**
   * Queues the spans the writer (this exporter's own, or another of the same protocol)
   * finished since the last call; they carry this origin's resource and scope.
   */
  submit(origin: SpanOrigin, writer: SpanWriter = this.writer): void {
    for (let part of writer.take()) {
      if (this.closed) {
        this.dropped += part.count;
        continue;
      }
      const room = this.opts.maxQueueSize - this.queued;
      if (part.count > room) {
        const lost = part.count - Math.max(0, room);
        this.dropped += lost;
        if (this.droppedSinceWarn === 0) diag.debug('loomtrace event spans: maxQueueSize reached, dropping spans');
        this.droppedSinceWarn += lost;
        if (room <= 0) continue;
        part = part.split(room)[0];
      } else if (this.droppedSinceWarn > 0) {
        diag.warn(`loomtrace event spans: dropped ${this.droppedSinceWarn} spans because maxQueueSize reached`);
        this.droppedSinceWarn = 0;
      }
      const last = this.queue[this.queue.length - 1];
      if (last && last.origin === origin) {
        last.parts.push(part);
        last.count += part.count;
      } else {
        this.queue.push({ origin, parts: [part], count: part.count });
      }
      this.queued += part.count;
    }
    this.schedule();
  }

  private schedule(): void {
    if (this.exporting) return;
    if (this.queued >= this.opts.maxExportBatchSize) {
      this.clearTimer();
      this.startExport();
      return;
    }
    if (this.timer !== undefined || this.queued === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.startExport();
    }, this.opts.scheduledDelayMs);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private startExport(): void {
    if (this.exporting || this.queued === 0) return;
    const p = this.exportOne()
      .catch((err: unknown) => diag.error(`loomtrace event spans: export failed: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => {
        this.exporting = undefined;
        this.schedule();
      });
    this.exporting = p;
  }

  /** Takes up to one export batch off the queue, grouped by origin. */
  private takeBatch(): { groups: Group[]; count: number } {
    const groups: Group[] = [];
    let count = 0;
    const max = this.opts.maxExportBatchSize;
    while (this.queue.length > 0 && count < max) {
      const g = this.queue[0]!;
      const taken: Group = { origin: g.origin, parts: [], count: 0 };
      // Parts taken whole are removed once, at the end (a group can hold one part per span).
      let i = 0;
      while (i < g.parts.length && count < max) {
        const part = g.parts[i]!;
        const room = max - count;
        if (part.count <= room) {
          taken.parts.push(part);
          taken.count += part.count;
          count += part.count;
          i++;
        } else {
          const [head, rest] = part.split(room);
          taken.parts.push(head);
          taken.count += head.count;
          count += head.count;
          g.parts[i] = rest;
        }
      }
      if (i > 0) g.parts.splice(0, i);
      g.count -= taken.count;
      if (g.parts.length === 0) this.queue.shift();
      groups.push(taken);
    }
    this.queued -= count;
    return { groups: mergeByOrigin(groups), count };
  }

  private async exportOne(): Promise<void> {
    const { groups, count } = this.takeBatch();
    if (count === 0) return;
    for (const g of groups) {
      const r = g.origin.resource;
      if (r.asyncAttributesPending && r.waitForAsyncAttributes) await r.waitForAsyncAttributes();
    }
    // Protobuf: the envelope's few bytes and the spans' chunks as they are (no copy into one body).
    let body: Buffer[] = this.opts.protocol === 'http/json' ? [this.encodeJson(groups)] : this.encodeProtoParts(groups);
    if (this.opts.compression === 'gzip') body = [await gzipAsync(Buffer.concat(body))];
    const deadline = Date.now() + this.opts.timeoutMs;
    let backoff = this.opts.initialBackoffMs;
    for (let attempt = 0; ; attempt++) {
      const r = await this.post(body, Math.max(1, deadline - Date.now()));
      if (r.ok) {
        this.exported += count;
        return;
      }
      const wait = r.retryInMs ?? backoff * (0.8 + Math.random() * 0.4);
      backoff *= 2;
      if (!r.retryable || attempt >= this.opts.maxRetries || Date.now() + wait >= deadline) {
        this.failed += count;
        diag.warn(`loomtrace event spans: export of ${count} spans failed: ${r.why}`);
        return;
      }
      await new Promise<void>((res) => setTimeout(res, wait).unref());
    }
  }

  private envelope(o: SpanOrigin): Envelope {
    let e = this.envelopes.get(o);
    if (!e) {
      e = encodeEnvelope(o);
      this.envelopes.set(o, e);
    }
    return e;
  }

  /** encodeProtoParts, in one buffer. */
  encodeProto(groups: readonly Group[]): Buffer {
    return Buffer.concat(this.encodeProtoParts(groups));
  }

  /** ExportTraceServiceRequest: one ResourceSpans per group, one ScopeSpans in each, the spans' bytes as they are. */
  encodeProtoParts(groups: readonly Group[]): Buffer[] {
    const parts: Buffer[] = [];
    for (const g of groups) {
      const env = this.envelope(g.origin);
      let spans = 0;
      for (const part of g.parts) spans += (part as ProtoSpans).byteLength;
      const ss = env.scope.length + spans + env.scopeTail.length;
      const rs = env.resource.length + 1 + varintSize(ss) + ss + env.resourceTail.length;
      const head = Buffer.allocUnsafe(1 + varintSize(rs) + env.resource.length + 1 + varintSize(ss) + env.scope.length);
      let p = 0;
      head[p++] = 0x0a;
      p = writeVarint(head, p, rs);
      p += env.resource.copy(head, p);
      head[p++] = 0x12;
      p = writeVarint(head, p, ss);
      env.scope.copy(head, p);
      parts.push(head);
      for (const part of g.parts) {
        const ps = part as ProtoSpans;
        if (ps.byteLength > 0) parts.push(ps.buf.subarray(ps.start, ps.start + ps.byteLength));
      }
      if (env.scopeTail.length > 0) parts.push(env.scopeTail);
      if (env.resourceTail.length > 0) parts.push(env.resourceTail);
    }
    return parts;
  }

  encodeJson(groups: readonly Group[]): Buffer {
    const parts = groups.map((g) => {
      const env = this.envelope(g.origin);
      return env.jsonHead + g.parts.map((part) => (part as JsonSpans).items.join(',')).join(',') + env.jsonTail;
    });
    return Buffer.from(`{"resourceSpans":[${parts.join(',')}]}`, 'utf8');
  }

  private post(body: readonly Buffer[], timeoutMs: number): Promise<SendResult> {
    let length = 0;
    for (const b of body) length += b.length;
    const u = this.target;
    const mod = u.protocol === 'https:' ? https : http;
    const headers: Record<string, string | number> = {
      ...this.opts.headers,
      'Content-Type': this.opts.protocol === 'http/json' ? 'application/json' : 'application/x-protobuf',
      'Content-Length': length,
      'User-Agent': 'loomtrace-event-spans',
    };
    if (this.opts.compression === 'gzip') headers['Content-Encoding'] = 'gzip';
    return new Promise<SendResult>((resolve) => {
      let settled = false;
      const done = (r: SendResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const req = mod.request(
        { method: 'POST', hostname: u.hostname, port: u.port, path: u.pathname + u.search, headers, agent: this.agent },
        (res) => {
          res.on('data', () => undefined);
          res.on('error', () => done({ ok: false, retryable: true, why: 'response aborted' }));
          res.on('end', () => {
            const code = res.statusCode ?? 0;
            if (code >= 200 && code < 300) return done({ ok: true });
            const retryable = code === 429 || code === 502 || code === 503 || code === 504;
            const ra = Number.parseInt(String(res.headers['retry-after'] ?? ''), 10);
            done({ ok: false, retryable, ...(Number.isInteger(ra) && ra >= 0 ? { retryInMs: ra * 1000 } : {}), why: `HTTP ${code}` });
          });
        },
      );
      const timer = setTimeout(() => {
        req.destroy(new Error('timeout'));
        done({ ok: false, retryable: true, why: 'timeout' });
      }, timeoutMs);
      timer.unref();
      req.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, retryable: true, why: err.code ?? err.message }));
      if (body.length === 1) req.end(body[0]);
      else {
        req.cork();
        for (const b of body) req.write(b);
        req.end();
      }
    });
  }

  /** Exports everything queued (the in-flight export first). */
  async forceFlush(): Promise<void> {
    this.clearTimer();
    for (;;) {
      if (this.exporting) {
        await this.exporting;
        continue;
      }
      if (this.queued === 0) return;
      this.startExport();
    }
  }

  /** Flushes, then refuses further spans and closes idle connections. */
  async shutdown(): Promise<void> {
    await this.forceFlush();
    this.closed = true;
    this.clearTimer();
    this.agent.destroy();
  }
}

function envNumber(env: NodeJS.ProcessEnv, name: string, def: number): number {
  const raw = env[name]?.trim();
  if (!raw) return def;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : def;
}

function parseHeaders(raw: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!raw) return out;
  for (const part of raw.split(',')) {
    const i = part.indexOf('=');
    if (i <= 0) continue;
    try {
      out[decodeURIComponent(part.slice(0, i).trim())] = decodeURIComponent(part.slice(i + 1).trim());
    } catch {
      diag.warn('loomtrace event spans: ignoring a malformed OTLP header');
    }
  }
  return out;
}

/** The traces URL the SDK's OTLP/HTTP exporter would use, from the standard variables. */
export function tracesUrlFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const specific = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']?.trim();
  if (specific) return new URL(specific).toString();
  const base = env['OTEL_EXPORTER_OTLP_ENDPOINT']?.trim();
  if (base) {
    new URL(base);
    return base.endsWith('/') ? `${base}v1/traces` : `${base}/v1/traces`;
  }
  return 'http://localhost:4318/v1/traces';
}

/** Variables that change what the SDK records (span limits): with any set, the fast path stays off. */
const LIMIT_VARS = [
  'OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT',
  'OTEL_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT',
  'OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_SPAN_EVENT_COUNT_LIMIT',
  'OTEL_SPAN_LINK_COUNT_LIMIT',
  'OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT',
  'OTEL_LINK_ATTRIBUTE_COUNT_LIMIT',
];

/**
 * Options for the fast exporter when the SDK's trace exporter is exactly the OTLP/HTTP one
 * (OTEL_TRACES_EXPORTER unset or `otlp`; protocol http/protobuf or http/json); undefined
 * otherwise (gRPC, zipkin, console, several exporters, span limits set, or
 * LOOMTRACE_FAST_EVENT_SPANS=false), and the SDK path stays in charge.
 */
export function eventSpanExporterOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): EventSpanExporterOptions | undefined {
  if (env['LOOMTRACE_FAST_EVENT_SPANS']?.trim().toLowerCase() === 'false') return undefined;
  const exporters = [...new Set((env['OTEL_TRACES_EXPORTER'] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '' && s !== 'null'))];
  if (!(exporters.length === 0 || (exporters.length === 1 && exporters[0] === 'otlp'))) return undefined;
  const protocol = (env['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL'] ?? env['OTEL_EXPORTER_OTLP_PROTOCOL'] ?? 'http/protobuf').trim();
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') return undefined;
  if (LIMIT_VARS.some((v) => (env[v] ?? '').trim() !== '')) return undefined;
  let url: string;
  try {
    url = tracesUrlFromEnv(env);
  } catch {
    return undefined;
  }
  const compression = (env['OTEL_EXPORTER_OTLP_TRACES_COMPRESSION'] ?? env['OTEL_EXPORTER_OTLP_COMPRESSION'] ?? 'none').trim() === 'gzip' ? 'gzip' : 'none';
  const timeout = envNumber(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', envNumber(env, 'OTEL_EXPORTER_OTLP_TIMEOUT', 10_000)) || 10_000;
  return {
    url,
    headers: { ...parseHeaders(env['OTEL_EXPORTER_OTLP_HEADERS']), ...parseHeaders(env['OTEL_EXPORTER_OTLP_TRACES_HEADERS']) },
    protocol,
    timeoutMs: timeout,
    compression,
    scheduledDelayMs: envNumber(env, 'OTEL_BSP_SCHEDULE_DELAY', 5_000),
    maxExportBatchSize: Math.max(1, envNumber(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512)),
    maxQueueSize: Math.max(1, envNumber(env, 'OTEL_BSP_MAX_QUEUE_SIZE', 2048)),
  };
}
