/**
 * The exporter's options, and how the standard variables compile to them: read once, when the
 * process wires its telemetry, exactly as the stock OTLP/HTTP trace exporter reads them
 * (@opentelemetry/otlp-exporter-base 0.222.0, build/src/configuration/
 * otlp-node-http-env-configuration.js and shared-env-configuration.js; sdk-node's utils.js for
 * the exporter and protocol choice). Checked against the stock exporter's source:
 *
 * - Endpoint: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT used as is (`new URL(v).toString()`: a bare
 *   origin gets its `/`); else OTEL_EXPORTER_OTLP_ENDPOINT + `/v1/traces` (one `/` between);
 *   else http://localhost:4318/v1/traces. An unparseable value is warned about and the next one
 *   used. Values are not trimmed (a blank one counts as unset), as core's getStringFromEnv.
 * - Headers: OTEL_EXPORTER_OTLP_HEADERS, then OTEL_EXPORTER_OTLP_TRACES_HEADERS over it, key by
 *   key, parsed by core's parseKeyPairsIntoRecord (URL-decoded, `;metadata` dropped, empty and
 *   malformed pairs skipped). Content-Type and User-Agent are set over them.
 * - Timeout: _TRACES_TIMEOUT, else OTEL_EXPORTER_OTLP_TIMEOUT, each only if a finite number > 0
 *   (otherwise warned about and skipped); default 10 s. It bounds the whole export, retries
 *   included; each try gets what is left.
 * - Compression: _TRACES_COMPRESSION, else OTEL_EXPORTER_OTLP_COMPRESSION, each only if exactly
 *   `gzip` or `none` after trimming (otherwise warned about and skipped); default none.
 * - TLS: _TRACES_CERTIFICATE / _CLIENT_CERTIFICATE / _CLIENT_KEY over the generic
 *   OTEL_EXPORTER_OTLP_CERTIFICATE / _CLIENT_CERTIFICATE / _CLIENT_KEY, each file chosen on its
 *   own, read once (relative to the working directory) into the https agent's ca, cert and key
 *   (keepAlive on); an unreadable file is warned about and left out. Ignored for http URLs.
 * - Protocol: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, not
 *   trimmed; default http/protobuf. grpc (and anything else: the SDK warns and falls back to
 *   http/protobuf) stays with the SDK's own exporter.
 * - OTEL_TRACES_EXPORTER: as sdk-node reads it (a list; `null` ignored; `none` first means no
 *   tracing; `none` among others means otlp). Only a list that comes to exactly `otlp` is ours.
 * - Batching: OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_EXPORT_BATCH_SIZE, OTEL_BSP_MAX_QUEUE_SIZE.
 *   Not honoured: OTEL_BSP_EXPORT_TIMEOUT (the BatchSpanProcessor's own give-up time, 30 s,
 *   longer than an export's OTLP timeout unless that is raised past it).
 * Retries: src/tracing/otlp/retry.ts. Responses: transport.ts, response.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { diag } from '@opentelemetry/api';
import { parseKeyPairsIntoRecord } from '@opentelemetry/core';
import type { Logger } from '@loomtrace/outbox';

export type OtlpHttpProtocol = 'http/protobuf' | 'http/json';
/** A structured logger (pino's satisfies it), the outbox's; messages never carry span content. */
export type { Logger };

/** PEM contents for the https agent (the stock exporter's ca, cert, key). */
export interface TlsMaterial {
  ca?: Buffer | undefined;
  cert?: Buffer | undefined;
  key?: Buffer | undefined;
}

/**
 * Spans per export request with a backlog, when OTEL_BSP_MAX_EXPORT_BATCH_SIZE is not set: a
 * request's cost is mostly per request (headers, the kernel's copy, the receiver's round
 * trip), so a worker draining a backlog at 100 % sends ~1.5 MB requests rather than 512-span
 * ones (decision 0016).
 */
export const BACKLOG_EXPORT_BATCH_SIZE = 4096;

/**
 * Spans the exporter queues at most, when OTEL_BSP_MAX_QUEUE_SIZE is not set. The SDK's 2,048
 * is less than one outbox batch makes at full sampling (500 events, five spans each, handed
 * over at once): with it a worker draining a backlog dropped about a tenth of its spans
 * (decision 0016). The queue holds encoded bytes, about 360 per span: at most ~6 MB.
 */
export const DEFAULT_MAX_QUEUE_SIZE = 16_384;

export interface EventSpanExporterOptions {
  url: string;
  headers: Record<string, string>;
  protocol: OtlpHttpProtocol;
  /** Whole export, retries included (OTEL_EXPORTER_OTLP_TIMEOUT). */
  timeoutMs: number;
  compression: 'gzip' | 'none';
  scheduledDelayMs: number;
  maxExportBatchSize: number;
  maxQueueSize: number;
  /**
   * Spans one export may carry when more than a full batch is queued (a backlog): an export
   * still starts once `maxExportBatchSize` spans are queued, and takes up to this many.
   * Default: `maxExportBatchSize`. From the environment: BACKLOG_EXPORT_BATCH_SIZE when
   * OTEL_BSP_MAX_EXPORT_BATCH_SIZE is not set, that value when it is
   * (docs/decisions/0016-worker-export-batches-and-memory.md).
   */
  backlogExportBatchSize?: number | undefined;
  /** Trusted roots and client certificate for an https endpoint. */
  tls?: TlsMaterial | undefined;
  /** Where failures and partial successes are logged (never span content). Default: the OpenTelemetry diag logger. */
  logger?: Logger | undefined;
  /**
   * The retry policy is the stock exporter's and no variable changes it (as with the stock
   * one); tests shorten it. Retries after the first try (5), first backoff (1000 ms), its
   * multiplier (1.5) and cap (5000 ms); each backoff gets ±20 % jitter.
   */
  maxRetries?: number;
  initialBackoffMs?: number;
  backoffMultiplier?: number;
  maxBackoffMs?: number;
}

/** `diag` as a Logger, for an exporter given none (library users, tests). */
export const diagLogger: Logger = {
  info: (obj, msg) => diag.info(`${msg ?? ''} ${JSON.stringify(obj)}`),
  warn: (obj, msg) => diag.warn(`${msg ?? ''} ${JSON.stringify(obj)}`),
  error: (obj, msg) => diag.error(`${msg ?? ''} ${JSON.stringify(obj)}`),
  debug: (obj, msg) => diag.debug(`${msg ?? ''} ${JSON.stringify(obj)}`),
};

/** @loomtrace/otlp's package.json version, read once (this file is dist/config.js; package.json is beside dist/). */
function packageVersion(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === '@loomtrace/otlp' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      /* not here */
    }
    dir = path.dirname(dir);
  }
  return 'unknown';
}

/** Sent with every export request (the stock one sends `OTel-OTLP-Exporter-JavaScript/<version>`). */
export const USER_AGENT = `loomtrace-otlp/${packageVersion()}`; // the package @loomtrace/otlp

type Env = NodeJS.ProcessEnv;

/** core's getStringFromEnv on a given env: blank is unset; the value is not trimmed. */
function str(env: Env, name: string): string | undefined {
  const raw = env[name];
  return raw == null || raw.trim() === '' ? undefined : raw;
}

/** core's getNumberFromEnv on a given env. */
function num(env: Env, name: string, log: Logger): number | undefined {
  const raw = str(env, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (Number.isNaN(n)) {
    log.warn({ variable: name }, 'OTLP exporter: not a number, using the default');
    return undefined;
  }
  return n;
}

function envNumber(env: Env, name: string, def: number): number {
  const raw = env[name]?.trim();
  if (!raw) return def;
  const n = Number(raw);
  return Number.isFinite(n) && n >= 0 ? n : def;
}

function timeoutFrom(env: Env, name: string, log: Logger): number | undefined {
  const n = num(env, name, log);
  if (n === undefined) return undefined;
  if (Number.isFinite(n) && n > 0) return n;
  log.warn({ variable: name }, 'OTLP exporter: timeout must be a number greater than 0; ignored');
  return undefined;
}

function compressionFrom(env: Env, name: string, log: Logger): 'gzip' | 'none' | undefined {
  const v = str(env, name)?.trim();
  if (v === undefined || v === 'gzip' || v === 'none') return v;
  log.warn({ variable: name }, "OTLP exporter: compression must be 'none' or 'gzip'; ignored");
  return undefined;
}

/** One TLS file: the signal-specific variable over the generic one; read now, once. */
function fileFrom(env: Env, specific: string, generic: string, log: Logger): Buffer | undefined {
  const file = str(env, specific) ?? str(env, generic);
  if (file === undefined) return undefined;
  try {
    return readFileSync(path.resolve(process.cwd(), file));
  } catch {
    log.warn({ variable: str(env, specific) !== undefined ? specific : generic }, 'OTLP exporter: could not read the file; exporting without it');
    return undefined;
  }
}

/** The traces URL the stock OTLP/HTTP exporter would use, from the standard variables. */
export function tracesUrlFromEnv(env: Env = process.env, log: Logger = diagLogger): string {
  const specific = str(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (specific !== undefined) {
    try {
      return new URL(specific).toString();
    } catch {
      log.warn({ variable: 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' }, 'OTLP exporter: could not parse the endpoint; ignored');
    }
  }
  const base = str(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (base !== undefined) {
    try {
      new URL(base);
      const url = `${base.endsWith('/') ? base : `${base}/`}v1/traces`;
      new URL(url);
      return url;
    } catch {
      log.warn({ variable: 'OTEL_EXPORTER_OTLP_ENDPOINT' }, 'OTLP exporter: could not parse the endpoint (with /v1/traces); ignored');
    }
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

/** True when sdk-node would build exactly one exporter, the OTLP one. */
function onlyOtlp(env: Env): boolean {
  const raw = str(env, 'OTEL_TRACES_EXPORTER');
  let list = raw === undefined ? [] : [...new Set(raw.split(',').map((s) => s.trim()).filter((s) => s !== ''))].filter((s) => s !== 'null');
  if (list[0] === 'none') return false;
  if (list.length === 0 || (list.length > 1 && list.includes('none'))) list = ['otlp'];
  return list.length === 1 && list[0] === 'otlp';
}

/**
 * Options for the fast exporter when the SDK's trace exporter would be exactly the OTLP/HTTP
 * one (see the header); undefined otherwise (gRPC, zipkin, console, several exporters, span
 * limits set, or LOOMTRACE_FAST_EVENT_SPANS=false), and the SDK path stays in charge.
 * Everything is read here, once: files included.
 */
export function eventSpanExporterOptionsFromEnv(env: Env = process.env, logger?: Logger): EventSpanExporterOptions | undefined {
  const log = logger ?? diagLogger;
  if (env['LOOMTRACE_FAST_EVENT_SPANS']?.trim().toLowerCase() === 'false') return undefined;
  if (!onlyOtlp(env)) return undefined;
  const protocol = str(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? str(env, 'OTEL_EXPORTER_OTLP_PROTOCOL') ?? 'http/protobuf';
  if (protocol !== 'http/protobuf' && protocol !== 'http/json') return undefined;
  if (LIMIT_VARS.some((v) => (env[v] ?? '').trim() !== '')) return undefined;
  const url = tracesUrlFromEnv(env, log);
  // Read whatever the URL's scheme (as the stock exporter, which warns about a missing file
  // either way); the transport uses them for https only.
  const tls: TlsMaterial = {
    ca: fileFrom(env, 'OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CERTIFICATE', log),
    cert: fileFrom(env, 'OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE', 'OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE', log),
    key: fileFrom(env, 'OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY', 'OTEL_EXPORTER_OTLP_CLIENT_KEY', log),
  };
  return {
    url,
    headers: { ...parseKeyPairsIntoRecord(str(env, 'OTEL_EXPORTER_OTLP_HEADERS')), ...parseKeyPairsIntoRecord(str(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS')) },
    protocol,
    timeoutMs: timeoutFrom(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', log) ?? timeoutFrom(env, 'OTEL_EXPORTER_OTLP_TIMEOUT', log) ?? 10_000,
    compression: compressionFrom(env, 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION', log) ?? compressionFrom(env, 'OTEL_EXPORTER_OTLP_COMPRESSION', log) ?? 'none',
    tls,
    logger: log,
    scheduledDelayMs: envNumber(env, 'OTEL_BSP_SCHEDULE_DELAY', 5_000),
    maxExportBatchSize: Math.max(1, envNumber(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', 512)),
    maxQueueSize: Math.max(1, envNumber(env, 'OTEL_BSP_MAX_QUEUE_SIZE', DEFAULT_MAX_QUEUE_SIZE)),
    // The user's batch size is a cap; ours (the SDK's 512) only says when to send.
    ...(str(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE') === undefined ? { backlogExportBatchSize: BACKLOG_EXPORT_BATCH_SIZE } : {}),
  };
}
