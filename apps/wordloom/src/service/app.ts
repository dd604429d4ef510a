import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import { FastifyOtelInstrumentation } from '@fastify/otel';
import type { Logger as PinoLogger } from 'pino';
import { isConnectionError } from '@loomtrace/outbox';
import type { Pool } from '@loomtrace/outbox';
import { allMigrationsCurrent } from '../db/migrate.js';
import * as sc from '../semconv.js';
import { createBlock, patchBlock, removeBlock, type Wake } from './blocks.js';
import { ApiError, notFound } from './errors.js';
import { BLOCK_TYPES, MAX_CONTENT_CHARS, blockJson } from './model.js';
import { searchBlocks, type SearchHit } from '../projection/postgres/searchBlocks.js';
import { insertBook } from './sql/insertBook.js';
import { insertLibrary } from './sql/insertLibrary.js';
import { selectBlock } from './sql/selectBlock.js';
import { selectBookBlocks } from './sql/selectBookBlocks.js';
import { MAX_SAFE_BIGINT, requestId, schemaErrorFormatter, textSchema, validatorCompiler } from './validation.js';

export interface AppOptions {
  pool: Pool;
  logger?: PinoLogger;
  /** Largest request body in bytes; larger gets 413. Default 1 MiB. */
  bodyLimit?: number;
  /**
   * Where `/api/v1/search` reads: the index the worker writes (SEARCH_BACKEND). Default: the
   * Postgres search projection on `pool`.
   */
  search?: (q: { text: string; libraryId?: string | undefined; limit: number }) => Promise<SearchHit[]>;
  /**
   * Called after each change committed with its outbox event: `OutboxWaker.wake` when `pool`
   * was made with `notifyAfterCommit` (its transactions do not NOTIFY the workers themselves).
   */
  wake?: Wake;
}

const uuid = { type: 'string', format: 'uuid' } as const;
const idParams = { type: 'object', required: ['id'], properties: { id: uuid }, additionalProperties: false } as const;
const errorSchema = {
  type: 'object',
  properties: { statusCode: { type: 'integer' }, code: { type: 'string' }, error: { type: 'string' }, message: { type: 'string' }, details: {} },
} as const;
const blockSchema = {
  type: 'object',
  properties: {
    id: uuid, book_id: uuid, library_id: uuid, block_type: { type: 'string', enum: BLOCK_TYPES },
    content: { type: 'string' }, position: { type: 'integer' }, version: { type: 'integer' },
    created_at: { type: 'string', format: 'date-time' }, updated_at: { type: 'string', format: 'date-time' },
  },
} as const;
const content = textSchema({}, `Block text, at most ${MAX_CONTENT_CHARS} characters (longer: 422 CONTENT_TOO_LONG).`);

/** The SERVER span @fastify/otel opened for this request, so handlers can add ids to it. */
const spanOf = (req: FastifyRequest) => req.opentelemetry().span;

function checkContent(c: string | undefined): void {
  if (c !== undefined && c.length > MAX_CONTENT_CHARS) {
    throw new ApiError(422, 'CONTENT_TOO_LONG', `content is ${c.length} characters; the limit is ${MAX_CONTENT_CHARS}`);
  }
}

/** Builds the Wordloom API. Routes live under /api/v1; /openapi.json describes them. */
export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const { pool, wake } = options;
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger as unknown as FastifyBaseLogger } : { logger: false }),
    bodyLimit: options.bodyLimit ?? 1_048_576,
    // Fastify takes the header as is when present and calls genReqId only when it is absent;
    // off, genReqId runs for every request and checks the header (see requestId).
    requestIdHeader: false,
    genReqId: requestId,
    schemaErrorFormatter,
  });
  app.setValidatorCompiler(validatorCompiler());

  const otel = new FastifyOtelInstrumentation({
    // One SERVER span per request; a span per Fastify hook and for the handler adds nothing a
    // user asks about ("which hook ran?") and costs a third of the API's tracing overhead.
    instrumentHooks: false,
    instrumentHandler: false,
    requestHook: (span, request) => {
      // An unsampled request's span records nothing: skip building what it would drop.
      if (!span.isRecording()) return;
      const q = request.url.indexOf('?');
      const path = q < 0 ? request.url : request.url.slice(0, q);
      const route = request.routeOptions.url ?? path;
      span.updateName(`${request.method} ${route}`);
      // url.path is the path only; the query string can carry user text (search terms).
      span.setAttribute('url.path', path || '/');
      span.setAttribute(sc.ATTR_REQUEST_ID, request.id);
      const id = (request.params as { id?: unknown } | undefined)?.id;
      if (typeof id === 'string' && route?.startsWith('/api/v1/blocks/')) span.setAttribute(sc.ATTR_BLOCK_ID, id);
    },
  });
  await app.register(otel.plugin());
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Wordloom API', version: '1.0.0', description: 'Libraries, books and blocks; every change is traced through the outbox to search.' },
    },
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string; validation?: unknown }, request, reply) => {
    if (err instanceof ApiError) {
      return reply.status(err.statusCode).send({ statusCode: err.statusCode, code: err.code, error: httpName(err.statusCode), message: err.message, ...(err.details !== undefined ? { details: err.details } : {}) });
    }
    if (err.validation) {
      return reply.status(400).send({ statusCode: 400, code: 'VALIDATION_FAILED', error: 'Bad Request', message: err.message, details: err.validation });
    }
    if (isConnectionError(err)) {
      // The database went away (a restart, a failover, a terminated backend): nothing this
      // request did committed unless its COMMIT's answer was what got lost. The pool reconnects.
      request.log.warn({ err: { type: err.name, code: err.code } }, 'database unavailable');
      return reply.status(503).header('retry-after', '1').send({ statusCode: 503, code: 'DATABASE_UNAVAILABLE', error: 'Service Unavailable', message: 'the database is unavailable; retry later' });
    }
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) {
      request.log.error({ err: { type: err.name, code: err.code, message: err.message.slice(0, 200) } }, 'request failed');
      return reply.status(500).send({ statusCode: 500, code: 'INTERNAL', error: 'Internal Server Error', message: 'internal error; see the server log for this request id' });
    }
    return reply.status(status).send({ statusCode: status, code: err.code ?? 'BAD_REQUEST', error: httpName(status), message: err.message });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.status(404).send({ statusCode: 404, code: 'ROUTE_NOT_FOUND', error: 'Not Found', message: `no route ${request.method} ${request.url.split('?')[0]}` });
  });

  const errors = { 400: errorSchema, 404: errorSchema, 503: errorSchema };

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { schema: { hide: true } }, async (_req, reply) => {
    try {
      await pool.query('select 1');
      const current = await allMigrationsCurrent(pool);
      if (!current) return reply.status(503).send({ status: 'not ready', reason: 'migrations are not current' });
      return { status: 'ready' };
    } catch {
      return reply.status(503).send({ status: 'not ready', reason: 'database unreachable' });
    }
  });

  app.post<{ Body: { name: string } }>(
    '/api/v1/libraries',
    {
      schema: {
        summary: 'Create a library',
        body: { type: 'object', required: ['name'], additionalProperties: false, properties: { name: textSchema({ minLength: 1, maxLength: 200 }) } },
        response: { 201: { type: 'object', properties: { id: uuid, name: { type: 'string' }, created_at: { type: 'string', format: 'date-time' } } }, ...errors },
      },
    },
    async (req, reply) => {
      const lib = await insertLibrary(pool, req.body.name);
      spanOf(req)?.setAttribute(sc.ATTR_LIBRARY_ID, lib.id);
      return reply.status(201).send(lib);
    },
  );

  app.post<{ Body: { library_id: string; title: string } }>(
    '/api/v1/books',
    {
      schema: {
        summary: 'Create a book in a library',
        body: { type: 'object', required: ['library_id', 'title'], additionalProperties: false, properties: { library_id: uuid, title: textSchema({ minLength: 1, maxLength: 500 }) } },
        response: { 201: { type: 'object', properties: { id: uuid, library_id: uuid, title: { type: 'string' }, created_at: { type: 'string', format: 'date-time' } } }, ...errors },
      },
    },
    async (req, reply) => {
      spanOf(req)?.setAttribute(sc.ATTR_LIBRARY_ID, req.body.library_id);
      const book = await insertBook(pool, req.body.library_id, req.body.title);
      if (!book) throw notFound('library', req.body.library_id);
      spanOf(req)?.setAttribute(sc.ATTR_BOOK_ID, book.id);
      return reply.status(201).send(book);
    },
  );

  app.post<{ Body: { book_id: string; block_type: string; content: string; position?: number } }>(
    '/api/v1/blocks',
    {
      schema: {
        summary: 'Create a block in a book (indexed for search through the outbox)',
        body: {
          type: 'object', required: ['book_id', 'block_type', 'content'], additionalProperties: false,
          properties: { book_id: uuid, block_type: { type: 'string', enum: BLOCK_TYPES }, content, position: { type: 'integer', minimum: 0, maximum: 1_000_000_000 } },
        },
        response: { 201: blockSchema, ...errors, 422: errorSchema },
      },
    },
    async (req, reply) => {
      checkContent(req.body.content);
      const block = await createBlock(pool, req.id, { bookId: req.body.book_id, blockType: req.body.block_type, content: req.body.content, position: req.body.position ?? 0 }, wake);
      if (!block) throw notFound('book', req.body.book_id);
      spanOf(req)?.setAttributes({ [sc.ATTR_BLOCK_ID]: block.id, [sc.ATTR_LIBRARY_ID]: block.library_id, [sc.ATTR_BOOK_ID]: block.book_id });
      return reply.status(201).send(blockJson(block));
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/v1/blocks/:id',
    { schema: { summary: 'Read a block', params: idParams, response: { 200: blockSchema, ...errors } } },
    async (req) => {
      const block = await selectBlock(pool, req.params.id);
      if (!block) throw notFound('block', req.params.id);
      spanOf(req)?.setAttribute(sc.ATTR_LIBRARY_ID, block.library_id);
      return blockJson(block);
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit?: number; offset?: number } }>(
    '/api/v1/books/:id/blocks',
    {
      schema: {
        summary: "List a book's blocks in order",
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000 }, offset: { type: 'integer', minimum: 0, maximum: MAX_SAFE_BIGINT } } },
        response: { 200: { type: 'object', properties: { blocks: { type: 'array', items: blockSchema } } }, ...errors },
      },
    },
    async (req) => {
      spanOf(req)?.setAttribute(sc.ATTR_BOOK_ID, req.params.id);
      const blocks = await selectBookBlocks(pool, req.params.id, req.query.limit ?? 100, req.query.offset ?? 0);
      if (!blocks) throw notFound('book', req.params.id);
      return { blocks: blocks.map(blockJson) };
    },
  );

  app.patch<{ Params: { id: string }; Body: { content?: string; block_type?: string; position?: number; expected_version?: number } }>(
    '/api/v1/blocks/:id',
    {
      schema: {
        summary: 'Change a block (its version rises by one; search follows through the outbox)',
        params: idParams,
        body: {
          type: 'object', additionalProperties: false, minProperties: 1,
          properties: {
            content, block_type: { type: 'string', enum: BLOCK_TYPES }, position: { type: 'integer', minimum: 0, maximum: 1_000_000_000 },
            expected_version: { type: 'integer', minimum: 1, maximum: MAX_SAFE_BIGINT, description: 'Apply only if the block is at this version (else 409).' },
          },
        },
        response: { 200: blockSchema, ...errors, 409: errorSchema, 422: errorSchema },
      },
    },
    async (req) => {
      checkContent(req.body.content);
      const block = await patchBlock(pool, req.id, req.params.id, {
        content: req.body.content, blockType: req.body.block_type, position: req.body.position, expectedVersion: req.body.expected_version,
      }, wake);
      if (!block) {
        if (req.body.expected_version !== undefined && (await selectBlock(pool, req.params.id))) {
          throw new ApiError(409, 'VERSION_CONFLICT', `block ${req.params.id} is not at version ${req.body.expected_version}`);
        }
        throw notFound('block', req.params.id);
      }
      spanOf(req)?.setAttribute(sc.ATTR_LIBRARY_ID, block.library_id);
      return blockJson(block);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/api/v1/blocks/:id',
    { schema: { summary: 'Delete a block (removed from search through the outbox)', params: idParams, response: { 204: { type: 'null' }, ...errors } } },
    async (req, reply) => {
      const block = await removeBlock(pool, req.id, req.params.id, wake);
      if (!block) throw notFound('block', req.params.id);
      spanOf(req)?.setAttribute(sc.ATTR_LIBRARY_ID, block.library_id);
      return reply.status(204).send();
    },
  );

  app.get<{ Querystring: { q: string; library_id?: string; limit?: number } }>(
    '/api/v1/search',
    {
      schema: {
        summary: 'Full-text search over the search projection',
        querystring: {
          type: 'object', required: ['q'], additionalProperties: false,
          properties: { q: textSchema({ minLength: 1, maxLength: 256 }), library_id: uuid, limit: { type: 'integer', minimum: 1, maximum: 100 } },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              hits: {
                type: 'array',
                items: {
                  type: 'object',
                  properties: {
                    block_id: uuid, book_id: uuid, library_id: uuid, version: { type: 'integer' }, block_type: { type: 'string' },
                    snippet: { type: 'string', description: 'Plain text around the matches, never HTML (no markup is added; the content\'s own is text): render it as text.' },
                    highlights: {
                      type: 'array',
                      description: 'The matched words in snippet, in order: UTF-16 code unit offsets (JavaScript string indices), end exclusive.',
                      items: { type: 'object', required: ['start', 'end'], properties: { start: { type: 'integer' }, end: { type: 'integer' } } },
                    },
                    rank: { type: 'number' },
                  },
                },
              },
            },
          },
          ...errors,
        },
      },
    },
    async (req) => {
      if (req.query.library_id) spanOf(req)?.setAttribute(sc.ATTR_LIBRARY_ID, req.query.library_id);
      const q = { text: req.query.q, libraryId: req.query.library_id, limit: req.query.limit ?? 20 };
      let hits: SearchHit[];
      if (!options.search) hits = await searchBlocks(pool, q);
      else {
        try {
          hits = await options.search(q);
        } catch (err) {
          // The cluster, not the caller: a 503 the client may retry; its message stays out of the answer.
          req.log.warn({ err: (err as Error).name, status: (err as { statusCode?: number; meta?: { statusCode?: number } }).statusCode ?? (err as { meta?: { statusCode?: number } }).meta?.statusCode }, 'search backend failed');
          throw new ApiError(503, 'SEARCH_UNAVAILABLE', 'the search backend did not answer; retry later');
        }
      }
      return { hits: hits.map((h) => ({ ...h, version: Number(h.version) })) };
    },
  );

  return app;
}

function httpName(status: number): string {
  const names: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 422: 'Unprocessable Entity', 429: 'Too Many Requests' };
  return names[status] ?? (status < 500 ? 'Client Error' : 'Server Error');
}
