/**
 * The explorer's options, compiled once: validated with a precise message, defaults
 * filled, frozen. Nothing downstream reads the environment.
 */

/** Limits applied to what senders give us, per request and per span. */
export interface Limits {
  readonly maxSpansPerRequest: number;
  /**
   * Values one request may decode into, counted on the wire before decoding: protobuf fields
   * and list items (a message also counts its lists), or JSON objects, arrays, members and
   * elements. Bounds the objects (memory and CPU) a small body can expand into.
   */
  readonly maxValuesPerRequest: number;
  readonly maxAttributes: number;
  readonly maxEvents: number;
  readonly maxLinks: number;
  readonly maxValueChars: number;
  readonly maxNameChars: number;
}

export interface ExplorerOptions {
  readonly host: string;
  readonly port: number;
  readonly otlpHost: string;
  readonly otlpPort: number;
  /** Required (and checked) whenever a listener is bound to a non-loopback address. */
  readonly token: string | undefined;
  /** Largest request body as sent (compressed), refused from Content-Length before reading. */
  readonly maxBodyBytes: number;
  /** Largest body after gzip decompression; the inflater stops at this many bytes. */
  readonly maxDecompressedBytes: number;
  /** Spans waiting to be written; beyond this the receiver answers 429. */
  readonly queueMaxSpans: number;
  /** Spans per INSERT statement. */
  readonly writeBatchSpans: number;
  /** INSERT statements in flight at once. */
  readonly writeConcurrency: number;
  readonly retentionMs: number;
  readonly retentionMaxSpans: number;
  readonly pruneIntervalMs: number;
  readonly limits: Limits;
}

export type ExplorerOptionsInput = Partial<Omit<ExplorerOptions, 'limits'>> & { limits?: Partial<Limits> };

function check(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`explorer option ${name} must be an integer from ${min} to ${max}, got ${v}`);
  return v;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function compileExplorerOptions(input: ExplorerOptionsInput = {}): ExplorerOptions {
  const o = {
    host: input.host ?? '127.0.0.1',
    port: check('port', input.port ?? 4000, 0, 65535),
    otlpHost: input.otlpHost ?? input.host ?? '127.0.0.1',
    otlpPort: check('otlpPort', input.otlpPort ?? 4318, 0, 65535),
    token: input.token || undefined,
    maxBodyBytes: check('maxBodyBytes', input.maxBodyBytes ?? 8 * 1024 * 1024, 1024, 1024 ** 3),
    maxDecompressedBytes: check('maxDecompressedBytes', input.maxDecompressedBytes ?? 32 * 1024 * 1024, 1024, 1024 ** 3),
    queueMaxSpans: check('queueMaxSpans', input.queueMaxSpans ?? 100_000, 1, 10_000_000),
    writeBatchSpans: check('writeBatchSpans', input.writeBatchSpans ?? 2_000, 1, 100_000),
    writeConcurrency: check('writeConcurrency', input.writeConcurrency ?? 2, 1, 32),
    retentionMs: check('retentionMs', input.retentionMs ?? 24 * 3_600_000, 1_000, 365 * 86_400_000),
    retentionMaxSpans: check('retentionMaxSpans', input.retentionMaxSpans ?? 2_000_000, 1, 1_000_000_000),
    pruneIntervalMs: check('pruneIntervalMs', input.pruneIntervalMs ?? 60_000, 100, 86_400_000),
    limits: Object.freeze({
      maxSpansPerRequest: check('limits.maxSpansPerRequest', input.limits?.maxSpansPerRequest ?? 50_000, 1, 10_000_000),
      maxValuesPerRequest: check('limits.maxValuesPerRequest', input.limits?.maxValuesPerRequest ?? 1_000_000, 1_000, 100_000_000),
      maxAttributes: check('limits.maxAttributes', input.limits?.maxAttributes ?? 128, 1, 100_000),
      maxEvents: check('limits.maxEvents', input.limits?.maxEvents ?? 128, 0, 100_000),
      maxLinks: check('limits.maxLinks', input.limits?.maxLinks ?? 128, 0, 100_000),
      maxValueChars: check('limits.maxValueChars', input.limits?.maxValueChars ?? 4_096, 16, 10_000_000),
      maxNameChars: check('limits.maxNameChars', input.limits?.maxNameChars ?? 256, 16, 100_000),
    }),
  };
  if (o.token !== undefined && !/^[\x21-\x7e]{16,}$/.test(o.token)) {
    throw new Error('EXPLORER_TOKEN must be at least 16 visible characters, without spaces (e.g. `openssl rand -hex 16`)');
  }
  if (o.maxDecompressedBytes < o.maxBodyBytes) throw new Error('explorer option maxDecompressedBytes must be at least maxBodyBytes');
  if (o.queueMaxSpans < o.limits.maxSpansPerRequest) o.limits = Object.freeze({ ...o.limits, maxSpansPerRequest: o.queueMaxSpans });
  for (const [what, host] of [['EXPLORER_HOST', o.host], ['EXPLORER_OTLP_HOST', o.otlpHost]] as const) {
    if (!isLoopback(host) && !o.token) throw new Error(`${what}=${host} is not a loopback address: set EXPLORER_TOKEN so that only holders of the token can read or write spans`);
  }
  return Object.freeze(o);
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const v = Number(raw);
  if (!Number.isInteger(v)) throw new Error(`${name} must be an integer, got "${raw}"`);
  return v;
}

/** From the environment of the explorer process (EXPLORER_*). */
export function explorerOptionsFromEnv(env: NodeJS.ProcessEnv): ExplorerOptions {
  const input: ExplorerOptionsInput = {};
  const set = <K extends keyof ExplorerOptionsInput>(k: K, v: ExplorerOptionsInput[K] | undefined) => {
    if (v !== undefined) input[k] = v;
  };
  set('host', env['EXPLORER_HOST'] || undefined);
  set('port', envInt(env, 'EXPLORER_PORT'));
  set('otlpHost', env['EXPLORER_OTLP_HOST'] || undefined);
  set('otlpPort', envInt(env, 'EXPLORER_OTLP_PORT'));
  set('token', env['EXPLORER_TOKEN'] || undefined);
  const mb = envInt(env, 'EXPLORER_MAX_BODY_MB');
  if (mb !== undefined) set('maxBodyBytes', mb * 1024 * 1024);
  const dmb = envInt(env, 'EXPLORER_MAX_DECOMPRESSED_MB');
  if (dmb !== undefined) set('maxDecompressedBytes', dmb * 1024 * 1024);
  set('queueMaxSpans', envInt(env, 'EXPLORER_QUEUE_MAX_SPANS'));
  const values = envInt(env, 'EXPLORER_MAX_REQUEST_VALUES');
  if (values !== undefined) input.limits = { maxValuesPerRequest: values };
  const hours = envInt(env, 'EXPLORER_RETENTION_HOURS');
  if (hours !== undefined) set('retentionMs', hours * 3_600_000);
  set('retentionMaxSpans', envInt(env, 'EXPLORER_RETENTION_MAX_SPANS'));
  return compileExplorerOptions(input);
}
