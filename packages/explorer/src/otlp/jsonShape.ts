/**
 * The types of an OTLP/JSON request, checked against the schema (proto.ts) after JSON.parse
 * and before normalising: a value of the wrong JSON type (`"name": {}`, `"traceId": 5`,
 * `"attributes": "x"`, `"bytesValue": 42`) makes the request undecodable, a 400 naming the
 * field, as a protobuf JSON parser would answer. The protobuf JSON mapping is followed:
 * unknown members are ignored, `null` means the default, 64-bit integers may be decimal
 * strings, doubles may be "NaN" / "Infinity" / "-Infinity". Values of the right type that are
 * still invalid (a trace id that is not 32 hex digits) are left to the normaliser, which
 * rejects that span alone (partial success). Also counts the spans: past
 * `maxSpansPerRequest` the request is refused with 413 before anything is normalised.
 *
 * Depth is already bounded by checkJsonSize (bounds.ts), so the recursion here is too.
 */
import type protobuf from 'protobufjs';
import type { Limits } from '../options.js';
import { HttpError } from './body.js';
import { fieldTable, tooManySpans, type FieldInfo } from './bounds.js';
import { ExportTraceServiceRequest, SpanType } from './proto.js';

type Path = (string | number)[];

const INTEGER = /^-?\d{1,20}$/;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return 'a string';
  return `a ${typeof v}`;
}

function wrongType(path: Path, expected: string, got: unknown): HttpError {
  const where = path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
  return new HttpError(400, `OTLP/JSON: ${where || 'the body'} must be ${expected}, got ${describe(got)}`);
}

/** Throws 400 for a value of the wrong type anywhere in the request, 413 for too many spans. */
export function checkJsonRequest(request: object, limits: Limits): void {
  checkMessage(request, ExportTraceServiceRequest, [], { spans: 0 }, limits);
}

function checkMessage(v: unknown, type: protobuf.Type, path: Path, tally: { spans: number }, limits: Limits): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw wrongType(path, 'an object', v);
  const fields = fieldTable(type).byName;
  for (const key of Object.keys(v)) {
    const f = fields.get(key);
    const x: unknown = (v as Record<string, unknown>)[key];
    if (!f || x === null) continue;
    path.push(key);
    if (f.repeated) {
      if (!Array.isArray(x)) throw wrongType(path, 'an array', x);
      if (f.message === SpanType && (tally.spans += x.length) > limits.maxSpansPerRequest) throw tooManySpans(limits);
      for (let i = 0; i < x.length; i++) {
        path.push(i);
        checkValue(x[i], f, path, tally, limits);
        path.pop();
      }
    } else {
      checkValue(x, f, path, tally, limits);
    }
    path.pop();
  }
}

function checkValue(x: unknown, f: FieldInfo, path: Path, tally: { spans: number }, limits: Limits): void {
  if (f.message) return checkMessage(x, f.message, path, tally, limits);
  switch (f.scalar) {
    case 'string':
      if (typeof x !== 'string') throw wrongType(path, 'a string', x);
      return;
    case 'bool':
      if (typeof x !== 'boolean') throw wrongType(path, 'true or false', x);
      return;
    case 'integer':
      if (!(typeof x === 'number' && Number.isInteger(x)) && !(typeof x === 'string' && INTEGER.test(x))) throw wrongType(path, 'an integer (a number or a decimal string)', x);
      return;
    case 'number':
      if (typeof x !== 'number' && !(typeof x === 'string' && (x === 'NaN' || x === 'Infinity' || x === '-Infinity' || (x.trim() !== '' && Number.isFinite(Number(x)))))) {
        throw wrongType(path, 'a number', x);
      }
      return;
    case 'enum':
      if (!(typeof x === 'number' && Number.isInteger(x)) && !(typeof x === 'string' && Object.hasOwn(f.enumValues ?? {}, x))) throw wrongType(path, 'an enum value', x);
      return;
  }
}
