/**
 * What one OTLP request may decode into, checked before decoding. A 32 KiB gzip body can
 * inflate into 16 M empty spans (two bytes each on the wire) that protobufjs would turn into
 * 16 M objects (about 4 GB, tens of seconds on the event loop); a 32 MiB JSON array of `{}`
 * does the same to JSON.parse. So the receiver first counts on the wire, in one linear pass
 * that allocates nothing, and refuses with 413 as soon as a count passes its limit:
 *
 * - protobuf: every field and list item, plus one per list a message holds (an array the
 *   decoder allocates for it), against `maxValuesPerRequest`; every Span against
 *   `maxSpansPerRequest`. It walks the message types of the schema (proto.ts) with protobufjs'
 *   Reader; a field whose wire type contradicts the schema is a 400.
 * - JSON: every object, array, member and element (`maxValuesPerRequest`: `{`, `[` and `,`
 *   outside strings); spans are counted after the parse, by the shape check (jsonShape.ts).
 *
 * Nesting deeper than MAX_NESTING messages (twice that in JSON objects and arrays) is a 400.
 */
import protobuf from 'protobufjs';
import type { Limits } from '../options.js';
import { HttpError } from './body.js';
import { ExportTraceServiceRequest, SpanType } from './proto.js';

/** Messages inside one another (protobuf). OTLP needs about 10. */
const MAX_NESTING = 64;
/** The same in JSON: an object per message and an array per list between them. */
const MAX_JSON_NESTING = 2 * MAX_NESTING;

export type ScalarKind = 'string' | 'bool' | 'integer' | 'number' | 'enum';

export interface FieldInfo {
  /** lowerCamelCase, the OTLP/JSON name. */
  readonly name: string;
  readonly wireType: number;
  readonly repeated: boolean;
  /** The field's message type; undefined for a scalar. */
  readonly message: protobuf.Type | undefined;
  readonly scalar: ScalarKind;
  readonly enumValues: Readonly<Record<string, number>> | undefined;
}

interface FieldTable {
  /** Indexed by field number (OTLP's are all below 20). */
  readonly byId: readonly (FieldInfo | undefined)[];
  readonly byName: ReadonlyMap<string, FieldInfo>;
  /** Its repeated fields: the decoder allocates an array for each, with every message. */
  readonly arrays: number;
}

const basicWireTypes = protobuf.types.basic as Readonly<Record<string, number>>;

function scalarKind(type: string): ScalarKind {
  if (type === 'string' || type === 'bytes') return 'string';
  if (type === 'bool') return 'bool';
  if (type === 'double' || type === 'float') return 'number';
  return 'integer';
}

const tables = new Map<protobuf.Type, FieldTable>();

/** One message type's fields by number and by JSON name, built once per type. */
export function fieldTable(type: protobuf.Type): FieldTable {
  let table = tables.get(type);
  if (table) return table;
  const byId: (FieldInfo | undefined)[] = [];
  const byName = new Map<string, FieldInfo>();
  for (const f of type.fieldsArray) {
    const resolved = f.resolve().resolvedType;
    const message = resolved instanceof protobuf.Type ? resolved : undefined;
    const isEnum = resolved instanceof protobuf.Enum;
    const info: FieldInfo = {
      name: f.name,
      wireType: message ? 2 : isEnum ? 0 : basicWireTypes[f.type] ?? 2,
      repeated: f.repeated,
      message,
      scalar: isEnum ? 'enum' : scalarKind(f.type),
      enumValues: isEnum ? (resolved as protobuf.Enum).values : undefined,
    };
    byId[f.id] = info;
    byName.set(f.name, info);
  }
  table = { byId, byName, arrays: type.fieldsArray.filter((f) => f.repeated).length };
  tables.set(type, table);
  return table;
}

export function tooManySpans(limits: Limits): HttpError {
  return new HttpError(413, `the request holds more than ${limits.maxSpansPerRequest} spans (the limit per request); send smaller batches`);
}

function tooManyValues(limits: Limits): HttpError {
  return new HttpError(413, `the request decodes into more than ${limits.maxValuesPerRequest} values (fields and list items; the limit per request); send smaller batches`);
}

function tooDeep(what: string): HttpError {
  return new HttpError(400, `the request nests ${what} deeper than the limit`);
}

interface Tally {
  values: number;
  spans: number;
}

/**
 * Counts the fields, list items and spans of a protobuf ExportTraceServiceRequest without
 * decoding it. Throws 413 past a limit, 400 for a body that is not well-formed for the schema.
 */
export function checkProtobufRequest(body: Uint8Array, limits: Limits): void {
  const reader = protobuf.Reader.create(body);
  try {
    scanMessage(reader, body.length, ExportTraceServiceRequest, { values: 0, spans: 0 }, limits, 0);
  } catch (err) {
    if (err instanceof HttpError) throw err;
    // protobufjs' Reader: RangeError past the end, Error for an invalid wire type.
    throw new HttpError(400, 'body is not a valid OTLP protobuf ExportTraceServiceRequest');
  }
}

function malformed(where: string): HttpError {
  return new HttpError(400, `body is not a valid OTLP protobuf ExportTraceServiceRequest: ${where}`);
}

function scanMessage(r: protobuf.Reader, end: number, type: protobuf.Type, tally: Tally, limits: Limits, depth: number): void {
  if (depth > MAX_NESTING) throw tooDeep(`more than ${MAX_NESTING} messages`);
  const table = fieldTable(type);
  const fields = table.byId;
  // A message costs its arrays too: 1 M empty events (two bytes each) are 2 M objects.
  if ((tally.values += table.arrays) > limits.maxValuesPerRequest) throw tooManyValues(limits);
  while (r.pos < end) {
    const tag = r.uint32();
    if (++tally.values > limits.maxValuesPerRequest) throw tooManyValues(limits);
    const wireType = tag & 7;
    const f = fields[tag >>> 3];
    // Unknown fields are skipped, as the decoder does. (OTLP traces have no packed repeated scalars.)
    if (!f || !f.message) {
      if (f && wireType !== f.wireType) throw malformed(`${type.name}.${f.name} has wire type ${wireType}, not ${f.wireType}`);
      r.skipType(wireType);
      continue;
    }
    if (wireType !== 2) throw malformed(`${type.name}.${f.name} has wire type ${wireType}, not 2`);
    const length = r.uint32();
    const stop = r.pos + length;
    if (stop > end) throw malformed(`${type.name}.${f.name} runs past the end of its message`);
    if (f.message === SpanType && ++tally.spans > limits.maxSpansPerRequest) throw tooManySpans(limits);
    scanMessage(r, stop, f.message, tally, limits, depth + 1);
  }
  if (r.pos !== end) throw malformed(`a field of ${type.name} runs past the end of its message`);
}

/**
 * Counts the values of an OTLP/JSON body before JSON.parse: objects and arrays (`{`, `[`) and
 * members and elements after the first (`,`), outside strings; also the nesting depth. One
 * pass over the bytes (the structural characters are ASCII, so UTF-8 needs no decoding).
 */
export function checkJsonSize(body: Uint8Array, limits: Limits): void {
  const max = limits.maxValuesPerRequest;
  let values = 0;
  let depth = 0;
  const n = body.length;
  for (let i = 0; i < n; i++) {
    const c = body[i]!;
    if (c === 0x22) {
      // A string: to its closing quote, stepping over escapes.
      for (i++; i < n; i++) {
        const d = body[i]!;
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x7b || c === 0x5b) {
      if (++values > max) throw tooManyValues(limits);
      if (++depth > MAX_JSON_NESTING) throw tooDeep(`more than ${MAX_JSON_NESTING} objects and arrays`);
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (c === 0x2c) {
      if (++values > max) throw tooManyValues(limits);
    }
  }
}
