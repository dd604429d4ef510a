/**
 * The explorer's web server: the JSON query API under /api and the UI's static files, with a
 * strict Content-Security-Policy (scripts and styles only from this origin, nothing inline)
 * and, when a token is configured, a token or a session on every request (auth.ts).
 */
import compress from '@fastify/compress';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { isConnectionError } from '@loomtrace/outbox';
import type { Pipeline, Pool } from '@loomtrace/outbox';
import type { ExplorerOptions } from '../options.js';
import { createAuth } from './auth.js';
import { diagnose } from '../query/diagnosis.js';
import { describePipelines, findPipeline, PipelineLookupError, validId } from '../query/pipelines.js';
import { pipelineHealth } from '../query/health.js';
import { listEvents, replayEvent } from '../query/replay.js';
import { listServices, searchTraces, type TraceFilter } from '../query/sql/searchTraces.js';
import { selectSpanDetail, selectTraceJson } from '../query/sql/traceSpans.js';
import { selectTraceRows, TRACE_ROW_FIELDS } from '../query/sql/traceRows.js';
import { selectTraceOutbox } from '../query/sql/traceOutbox.js';
import { selectBatchEvents } from '../query/sql/batchEvents.js';
import { loadStatic } from './static.js';

export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TRACE_ID = /^[0-9a-f]{32}$/;
const SPAN_ID = /^[0-9a-f]{16}$/;
const MAX_TRACE_SPANS = 50_000;
const ROW_FIELDS = JSON.stringify(TRACE_ROW_FIELDS);

/** Span times are Unix nanoseconds in a signed 64-bit column: milliseconds up to 2262-04-11. */
const MAX_MS = 9_223_372_036_854;

/** Text for a query: NUL cannot be sent to Postgres, so it is refused rather than failing there. */
function text(name: string, raw: string): string {
  if (raw.includes('\u0000')) throw new BadRequest(`${name} must not contain NUL characters`);
  return raw;
}

/** An ISO 8601 date, time optional. (Date.parse alone also takes "-5" as May 2001.) */
const ISO_DATE = /^([+-]\d{6}|\d{4})-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Epoch ms, ISO date, or nothing; from 1970 to 2262 (what the store's nanoseconds hold). */
function timeNs(name: string, raw: unknown): bigint | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string') throw new BadRequest(`${name} must be given once`);
  const ms = /^\d+$/.test(raw) ? Number(raw) : ISO_DATE.test(raw) ? Date.parse(raw) : NaN;
  if (!Number.isFinite(ms)) throw new BadRequest(`${name} is not a time (epoch milliseconds or an ISO date such as 2026-01-01T00:00): ${raw.slice(0, 40)}`);
  if (ms < 0 || ms > MAX_MS) throw new BadRequest(`${name} must be between 1970 and 2262`);
  return BigInt(Math.trunc(ms)) * 1_000_000n;
}

class BadRequest extends Error {}

/**
 * A whole number from the query: `dflt` when absent; out of [min, max] it is clamped when
 * `clamp` (a list's limit), refused otherwise; anything but decimal digits is refused.
 */
function intParam(name: string, raw: unknown, min: number, max: number, dflt: number, clamp = false): number {
  if (raw === undefined || raw === '') return dflt;
  if (typeof raw !== 'string' || !/^\d{1,16}$/.test(raw)) throw new BadRequest(`${name} must be a whole number from ${min} to ${max}`);
  const n = Number(raw);
  if (n >= min && n <= max) return n;
  if (clamp) return Math.min(max, Math.max(min, n));
  throw new BadRequest(`${name} must be a whole number from ${min} to ${max}`);
}

export function parseTraceFilter(q: Record<string, unknown>): TraceFilter {
  const s = (k: string) => (typeof q[k] === 'string' && q[k] !== '' ? text(k, (q[k] as string).slice(0, 300)) : undefined);
  const f: TraceFilter = { limit: intParam('limit', q['limit'], 1, 200, 50, true) };
  f.service = s('service');
  f.name = s('name');
  // Either attr=key=value, or one of the id shortcuts.
  const attr = s('attr');
  if (attr) {
    const i = attr.indexOf('=');
    if (i <= 0) throw new BadRequest('attr must be key=value');
    f.attribute = { key: attr.slice(0, i), value: attr.slice(i + 1) };
  }
  const shortcuts: Record<string, string> = {
    block_id: 'loomtrace.block.id',
    aggregate_id: 'loomtrace.aggregate.id',
    event_id: 'messaging.message.id',
    request_id: 'loomtrace.request.id',
    library_id: 'loomtrace.library.id',
  };
  for (const [param, key] of Object.entries(shortcuts)) {
    const v = s(param);
    if (v) f.attribute = { key, value: v };
  }
  const status = s('status');
  if (status) {
    if (status !== 'error' && status !== 'ok' && status !== 'unset') throw new BadRequest('status must be error, ok or unset');
    f.status = status;
  }
  const minMs = s('min_ms');
  if (minMs) {
    const n = Number(minMs);
    if (!Number.isFinite(n) || n < 0 || n > MAX_MS) throw new BadRequest('min_ms must be a number of milliseconds');
    f.minDurationMs = n;
  }
  f.fromNs = timeNs('from', q['from']);
  f.toNs = timeNs('to', q['to']);
  if (q['min_attempts'] !== undefined && q['min_attempts'] !== '') f.minAttempt = intParam('min_attempts', q['min_attempts'], 1, 1_000_000, 1);
  const outcome = s('outcome');
  if (outcome) {
    if (!['done', 'retry', 'dead', 'lost'].includes(outcome)) throw new BadRequest('outcome must be done, retry, dead or lost');
    f.outcome = outcome;
  }
  const yes = (k: string) => {
    const v = s(k);
    if (v === undefined || v === '0' || v === 'false') return undefined;
    if (v !== '1' && v !== 'true') throw new BadRequest(`${k} must be 1 or 0`);
    return true;
  };
  f.reclaimed = yes('reclaimed');
  f.dead = yes('dead');
  f.changesOnly = yes('changes');
  return f;
}

export async function buildExplorerServer(pool: Pool, options: ExplorerOptions, statusInfo: () => unknown = () => ({}), pipelines: readonly Pipeline[] = []): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024 });
  const files = loadStatic();
  const auth = options.token ? createAuth(options.token) : undefined;
  // Brotli or gzip as the browser asks: a 10,000-span trace's rows are ~1.3 MB of JSON, ~10 times less compressed.
  await app.register(compress, { encodings: ['br', 'gzip'], threshold: 2048 });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('content-security-policy', CSP);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('referrer-policy', 'no-referrer');
    reply.header('x-frame-options', 'DENY');
    // A token configured: a bearer header or a session (see auth.ts).
    return auth?.check(req, reply);
  });

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof BadRequest) return reply.code(400).send({ error: err.message });
    if (err instanceof PipelineLookupError) return reply.code(err.status).send({ error: err.message });
    const { statusCode: status, message } = err as { statusCode?: number; message?: string };
    if (status && status >= 400 && status < 500) return reply.code(status).send({ error: message ?? 'bad request' });
    if (isConnectionError(err)) return reply.code(503).header('retry-after', '1').send({ error: 'the database is unavailable; retry later' });
    return reply.code(500).send({ error: 'internal error' });
  });

  const page = (name: string) => async (_req: FastifyRequest, reply: FastifyReply) => {
    const f = files.get(name);
    if (!f) return reply.code(404).send({ error: 'not found' });
    return reply.type(f.type).header('cache-control', 'no-cache').send(f.body);
  };
  app.get('/', page('index.html'));
  app.get('/static/:file', async (req, reply) => {
    const f = files.get((req.params as { file: string }).file);
    if (!f) return reply.code(404).send({ error: 'not found' });
    return reply.type(f.type).header('cache-control', 'no-cache').send(f.body);
  });
  for (const p of ['block', 'event', 'health', 'events']) app.get(`/${p}`, page(`${p}.html`));
  // The trace page's two API calls start with the page (a Link preload), not after its modules.
  const tracePage = page('trace.html');
  app.get('/trace', async (req, reply) => {
    const id = (req.query as { id?: unknown }).id;
    if (typeof id === 'string' && TRACE_ID.test(id)) {
      reply.header('link', `</api/traces/${id}/rows>; rel=preload; as=fetch; crossorigin, </api/traces/${id}/outbox>; rel=preload; as=fetch; crossorigin`);
    }
    return tracePage(req, reply);
  });

  app.get('/api/status', async () => statusInfo());
  app.get('/api/services', async () => ({ services: await listServices(pool) }));
  app.get('/api/traces', async (req) => {
    const rows = await searchTraces(pool, parseTraceFilter(req.query as Record<string, unknown>));
    return {
      traces: rows.map((r) => ({
        traceId: r.trace_id,
        rootName: r.root_name,
        rootService: r.root_service,
        services: r.services,
        spans: r.spans,
        errors: r.errors,
        retries: r.retries,
        maxAttempt: r.max_attempt,
        version: r.version === null ? null : Number(r.version),
        startTimeUnixNano: r.start_ns,
        durationMs: Number(BigInt(r.end_ns) - BigInt(r.start_ns)) / 1e6,
      })),
    };
  });
  app.get('/api/traces/:traceId', async (req, reply) => {
    const id = (req.params as { traceId: string }).traceId.toLowerCase();
    if (!TRACE_ID.test(id)) return reply.code(400).send({ error: 'a trace id is 32 hex digits' });
    const t = await selectTraceJson(pool, id, MAX_TRACE_SPANS);
    if (t.count === 0) return reply.code(404).send({ error: 'no spans stored for this trace (not sampled, not yet received, or past retention)' });
    return reply.type('application/json; charset=utf-8').send(`{"traceId":"${id}","truncated":${t.count >= MAX_TRACE_SPANS},"spans":${t.spans}}`);
  });
  // The waterfall's rows: a tuple a span (fields named once), times from the trace's start.
  app.get('/api/traces/:traceId/rows', async (req, reply) => {
    const id = (req.params as { traceId: string }).traceId.toLowerCase();
    if (!TRACE_ID.test(id)) return reply.code(400).send({ error: 'a trace id is 32 hex digits' });
    const t = await selectTraceRows(pool, id, MAX_TRACE_SPANS);
    if (t.count === 0) return reply.code(404).send({ error: 'no spans stored for this trace (not sampled, not yet received, or past retention)' });
    return reply.type('application/json; charset=utf-8').send(`{"traceId":"${id}","truncated":${t.count >= MAX_TRACE_SPANS},"startNs":"${t.startNs}","fields":${ROW_FIELDS},"spans":${t.rows}}`);
  });
  // The outbox's record of the trace's events: attempts no span tells of (a dead worker's),
  // backoff, dead letters. Empty where the explorer does not share the outbox's database.
  app.get('/api/traces/:traceId/outbox', async (req, reply) => {
    const id = (req.params as { traceId: string }).traceId.toLowerCase();
    if (!TRACE_ID.test(id)) return reply.code(400).send({ error: 'a trace id is 32 hex digits' });
    try {
      return { traceId: id, events: await selectTraceOutbox(pool, id) };
    } catch (err) {
      if ((err as { code?: string }).code === '42P01' || (err as { code?: string }).code === '3F000') return { traceId: id, events: [] };
      throw err;
    }
  });
  // A batch trace's way back to the event traces it served (each event's process span links to the batch).
  app.get('/api/traces/:traceId/events', async (req, reply) => {
    const id = (req.params as { traceId: string }).traceId.toLowerCase();
    if (!TRACE_ID.test(id)) return reply.code(400).send({ error: 'a trace id is 32 hex digits' });
    const rows = await selectBatchEvents(pool, id, 500);
    return { traceId: id, events: rows.map((r) => ({ traceId: r.trace_id, spanId: r.span_id, eventId: r.message_id, outcome: r.outcome })) };
  });
  app.get('/api/traces/:traceId/spans/:spanId', async (req, reply) => {
    const { traceId, spanId } = req.params as { traceId: string; spanId: string };
    if (!TRACE_ID.test(traceId) || !SPAN_ID.test(spanId)) return reply.code(400).send({ error: 'bad trace or span id' });
    const s = await selectSpanDetail(pool, traceId, spanId);
    if (!s) return reply.code(404).send({ error: 'no such span' });
    return {
      traceId, spanId, scope: s.scope, statusMessage: s.status_message, attributes: s.attributes, events: s.events, links: s.links,
      dropped: s.dropped, resource: s.resource, receivedAt: s.received_at.toISOString(),
    };
  });
  app.get('/api/pipelines', async () => ({ pipelines: describePipelines(pipelines) }));
  // "Why is this <aggregate> not in <projection>?" for any declared pipeline.
  app.get('/api/diagnosis/:aggregateType/:id', async (req, reply) => {
    const { aggregateType, id } = req.params as { aggregateType: string; id: string };
    const q = req.query as { version?: unknown; projection?: unknown };
    if (q.projection !== undefined && typeof q.projection !== 'string') throw new BadRequest('projection must be given once');
    const pipeline = findPipeline(pipelines, text('aggregate type', aggregateType), q.projection === undefined || q.projection === '' ? undefined : text('projection', q.projection));
    if (!validId(pipeline, id)) return reply.code(400).send({ error: `not a valid ${pipeline.labels?.aggregate ?? pipeline.aggregateType} id` });
    const version = q.version === undefined || q.version === '' ? undefined : intParam('version', q.version, 1, Number.MAX_SAFE_INTEGER, 0);
    return diagnose(pool, pipeline, id, version === undefined ? {} : { version });
  });
  app.get('/api/events', async (req, reply) => {
    const q = req.query as { state?: unknown; limit?: unknown };
    const state = q.state ?? 'dead';
    if (state !== 'pending' && state !== 'claimed' && state !== 'done' && state !== 'dead') return reply.code(400).send({ error: 'state must be pending, claimed, done or dead' });
    return { events: await listEvents(pool, state, intParam('limit', q.limit, 1, 500, 50, true)) };
  });
  app.get('/api/events/:id', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    if (!/^\d{1,18}$/.test(id)) return reply.code(400).send({ error: 'an event id is a positive integer' });
    const r = await replayEvent(pool, id);
    if (!r) return reply.code(404).send({ error: 'no such event' });
    return r;
  });
  app.get('/api/health', async (req) => {
    const m = intParam('minutes', (req.query as { minutes?: unknown }).minutes, 1, 1440, 30);
    return pipelineHealth(pool, m);
  });
  return app;
}
