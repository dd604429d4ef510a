import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Ajv, type Options } from 'ajv';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler, FastifySchemaValidationError, FastifyServerOptions } from 'fastify';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule.default;

/**
 * A UUID as Postgres reads it back: 8-4-4-4-12 hex digits. ajv-formats' own `uuid` also takes a
 * `urn:uuid:` prefix, which Postgres refuses (a 500 where a 400 belongs).
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Text Postgres stores as given: no NUL (a `text` value cannot hold U+0000) and no unpaired
 * UTF-16 surrogate (the driver would store U+FFFD in its place, silently changing the text).
 * Ajv compiles patterns with the `u` flag, where a surrogate pair is one code point and only an
 * unpaired surrogate falls in \uD800-\uDFFF.
 */
export const STORABLE_TEXT = '^[^\\u0000\\uD800-\\uDFFF]*$';

/** A string schema for user text: the length limits given, and STORABLE_TEXT. */
export function textSchema(limits: { minLength?: number; maxLength?: number }, description?: string) {
  return {
    type: 'string',
    ...limits,
    pattern: STORABLE_TEXT,
    description: `${description ? `${description} ` : ''}No NUL (U+0000) or unpaired surrogate characters.`,
  } as const;
}

const STORABLE_TEXT_MESSAGE = 'must not contain NUL (U+0000) or unpaired surrogate characters';

/**
 * Fastify's `schemaErrorFormatter`: its default message (`body/content must …`, joined by
 * commas), with the STORABLE_TEXT pattern said in words in the message and in `details`.
 */
export const schemaErrorFormatter: NonNullable<FastifyServerOptions['schemaErrorFormatter']> = (errors: FastifySchemaValidationError[], dataVar) => {
  for (const e of errors) {
    if (e.keyword === 'pattern' && e.params['pattern'] === STORABLE_TEXT) e.message = STORABLE_TEXT_MESSAGE;
  }
  return new Error(errors.map((e) => `${dataVar}${e.instancePath || ''} ${e.message ?? 'is invalid'}`).join(', '));
};

/** Largest integer JSON numbers carry exactly (2^53 - 1); the bound for bigint inputs. */
export const MAX_SAFE_BIGINT = Number.MAX_SAFE_INTEGER;

function ajv(options: Options): Ajv {
  const a = new Ajv({ useDefaults: true, removeAdditional: false, allErrors: true, addUsedSchema: false, ...options });
  addFormats(a);
  a.addFormat('uuid', UUID);
  return a;
}

/**
 * Validators per part of the request. Bodies are JSON and arrive typed: `content: 42` or
 * `position: "3"` is a wrong type (400), never coerced into a stored value. Query strings and
 * path parameters are text by nature: `?limit=10` is coerced to the integer 10.
 */
export function validatorCompiler(): FastifySchemaCompiler<unknown> {
  const body = ajv({ coerceTypes: false });
  const text = ajv({ coerceTypes: 'array' });
  return ({ schema, httpPart }) => (httpPart === 'body' ? body : text).compile(schema as object);
}

/** A request id we echo and record (spans, outbox rows): 1–128 of letters, digits, `_.:-`. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * Fastify's `genReqId`, run for every request (`requestIdHeader: false`): a valid `x-request-id`
 * is kept, anything else (overlong, markup, several) is replaced by a fresh UUID.
 */
export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}
