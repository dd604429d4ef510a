/**
 * Turns a decoded OTLP export request (from protobuf or from JSON) into rows for the span
 * store, applying the explorer's limits. Invalid spans are rejected one by one (partial
 * success); oversized ones are trimmed and the trimming counted in `dropped`.
 */
import { createHash } from 'node:crypto';
import * as sc from '@loomtrace/outbox/semconv';
import type { Limits } from '../options.js';

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

export interface SpanEventRow {
  timeUnixNano: string;
  name: string;
  attributes: Record<string, Json>;
}
export interface SpanLinkRow {
  traceId: string;
  spanId: string;
  traceState: string;
  attributes: Record<string, Json>;
}

/** One span as the store keeps it. Times are Unix epoch nanoseconds as decimal strings. */
export interface SpanRow {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  name: string;
  kind: number;
  service: string;
  scope: string | null;
  start_ns: string;
  end_ns: string;
  status_code: number;
  status_message: string | null;
  attributes: Record<string, Json>;
  resource_id: string;
  events: SpanEventRow[];
  links: SpanLinkRow[];
  dropped: number;
  block_id: string | null;
  aggregate_id: string | null;
  message_id: string | null;
  request_id: string | null;
  library_id: string | null;
}

export interface ResourceRow {
  id: string;
  attributes: Record<string, Json>;
}

export interface Normalized {
  rows: SpanRow[];
  /** The distinct resources of the request, each stored once. */
  resources: ResourceRow[];
  rejected: number;
  /** First few reasons, for the partial-success message. */
  problems: string[];
}

/** An id in either encoding: raw bytes (protobuf) or hex (OTLP/JSON). */
export type IdInput = Uint8Array | number[] | string | null | undefined;

/** What a decoder hands over: the request in the protobuf-js shape, ids and numbers still raw. */
export interface RawValue {
  stringValue?: unknown;
  boolValue?: unknown;
  intValue?: unknown;
  doubleValue?: unknown;
  arrayValue?: { values?: unknown } | null;
  kvlistValue?: { values?: unknown } | null;
  bytesValue?: unknown;
}
interface RawKeyValue {
  key?: unknown;
  value?: RawValue | null;
}

const HEX_TRACE = /^[0-9a-f]{32}$/;
const HEX_SPAN = /^[0-9a-f]{16}$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);
const MAX_DEPTH = 6;
const MAX_NS = 18_446_744_073_709_551_615n;
/**
 * Attribute keys lifted into their own indexed columns for search by id. The block and library
 * keys are the ones the Wordloom reference app puts on its spans and event attributes.
 */
const LIFTED_BLOCK_ID = 'loomtrace.block.id';
const LIFTED_LIBRARY_ID = 'loomtrace.library.id';

/** Text Postgres can store: no NUL, no lone surrogate, bounded length. */
export function cleanText(s: string, max: number): { text: string; cut: boolean } {
  let cut = false;
  if (s.length > max) {
    s = s.slice(0, max);
    cut = true;
  }
  if (s.includes('\u0000')) s = s.replaceAll('\u0000', '\uFFFD');
  // Lone surrogates cannot be stored in jsonb; replace them.
  if (/[\uD800-\uDFFF]/.test(s)) s = s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
  return { text: s, cut };
}

function hexId(v: IdInput): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v.toLowerCase();
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
  // protobufjs gives an empty plain array for an absent bytes field.
  return Array.isArray(v) ? Buffer.from(v as number[]).toString('hex') : '';
}

/** Nanoseconds from a Long, a number or a decimal string; undefined when not a valid u64. */
function nanos(v: unknown): string | undefined {
  if (v === null || v === undefined) return '0';
  let b: bigint;
  try {
    if (typeof v === 'object' && v !== null && 'low' in v && 'high' in v) {
      const l = v as { low: number; high: number };
      b = (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0);
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v) || v < 0) return undefined;
      b = BigInt(Math.trunc(v));
    } else if (typeof v === 'string' && /^\d{1,20}$/.test(v)) {
      b = BigInt(v);
    } else return undefined;
  } catch {
    return undefined;
  }
  // The store keeps a signed bigint: times past 2262 are not real.
  if (b > MAX_NS || b > 9_223_372_036_854_775_807n) return undefined;
  return b.toString();
}

function int64(v: unknown): Json {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : v;
  }
  if (typeof v === 'object' && v !== null && 'low' in v && 'high' in v) {
    const l = v as { low: number; high: number; unsigned?: boolean };
    const b = BigInt.asIntN(64, (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0));
    const n = Number(b);
    return Number.isSafeInteger(n) ? n : b.toString();
  }
  return null;
}

class Budget {
  dropped = 0;
  constructor(readonly limits: Limits) {}
}

const own = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k) && (o as Record<string, unknown>)[k] !== null && (o as Record<string, unknown>)[k] !== undefined;

/** One OTLP AnyValue. Only own fields count: decoded protobuf messages carry defaults on their prototype. */
function anyValue(v: RawValue | null | undefined, b: Budget, depth: number): Json {
  if (!v || typeof v !== 'object') return null;
  if (own(v, 'stringValue')) {
    const c = cleanText(String(v.stringValue), b.limits.maxValueChars);
    if (c.cut) b.dropped++;
    return c.text;
  }
  if (own(v, 'boolValue')) return Boolean(v.boolValue);
  if (own(v, 'intValue')) return int64(v.intValue);
  if (own(v, 'doubleValue')) {
    const d = Number(v.doubleValue);
    return Number.isFinite(d) ? d : String(d);
  }
  if (own(v, 'arrayValue')) {
    if (depth >= MAX_DEPTH) {
      b.dropped++;
      return null;
    }
    const values = Array.isArray(v.arrayValue!.values) ? (v.arrayValue!.values as RawValue[]) : [];
    if (values.length > b.limits.maxAttributes) b.dropped++;
    return values.slice(0, b.limits.maxAttributes).map((x) => anyValue(x, b, depth + 1));
  }
  if (own(v, 'kvlistValue')) {
    if (depth >= MAX_DEPTH) {
      b.dropped++;
      return null;
    }
    return keyValues(v.kvlistValue!.values, b, depth + 1);
  }
  if (own(v, 'bytesValue')) {
    const raw = v.bytesValue;
    if (typeof raw === 'string') return cleanText(raw, b.limits.maxValueChars).text;
    return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64').slice(0, b.limits.maxValueChars) : null;
  }
  return null;
}

function keyValues(list: unknown, b: Budget, depth = 0): Record<string, Json> {
  // No prototype: a key named `__proto__` (or `constructor`) is stored as a key like any other.
  const out = Object.create(null) as Record<string, Json>;
  if (!Array.isArray(list)) return out;
  let n = 0;
  for (const kv of list as RawKeyValue[]) {
    if (!kv || typeof kv.key !== 'string') {
      b.dropped++;
      continue;
    }
    if (n >= b.limits.maxAttributes) {
      b.dropped += list.length - n;
      break;
    }
    const key = cleanText(kv.key, 256).text;
    out[key] = anyValue(kv.value, b, depth);
    n++;
  }
  return out;
}

const str = (v: Json | undefined): string | null => (typeof v === 'string' && v !== '' ? v.slice(0, 200) : typeof v === 'number' ? String(v) : null);

/**
 * Validates and flattens one export request. `idsAreHex` is true for OTLP/JSON (ids are hex
 * strings there, base64 would be the protobuf JSON mapping but OTLP says hex).
 */
export function normalizeRequest(req: { resourceSpans?: unknown }, limits: Limits): Normalized {
  const rows: SpanRow[] = [];
  const resources = new Map<string, ResourceRow>();
  const problems: string[] = [];
  let rejected = 0;
  const reject = (why: string) => {
    rejected++;
    if (problems.length < 3 && !problems.includes(why)) problems.push(why);
  };
  const resourceSpans = Array.isArray(req.resourceSpans) ? req.resourceSpans : [];
  for (const rs of resourceSpans as { resource?: { attributes?: unknown; droppedAttributesCount?: unknown } | null; scopeSpans?: unknown }[]) {
    if (!rs || typeof rs !== 'object') continue;
    const rb = new Budget(limits);
    const resource = keyValues(rs.resource?.attributes, rb);
    const service = typeof resource['service.name'] === 'string' ? resource['service.name'] : 'unknown_service';
    const resourceId = createHash('sha256').update(JSON.stringify(resource)).digest('base64url').slice(0, 27);
    let resourceUsed = false;
    const scopeSpans = Array.isArray(rs.scopeSpans) ? rs.scopeSpans : [];
    for (const ss of scopeSpans as { scope?: { name?: unknown } | null; spans?: unknown }[]) {
      if (!ss || typeof ss !== 'object') continue;
      const scope = typeof ss.scope?.name === 'string' ? cleanText(ss.scope.name, 256).text : null;
      const spans = Array.isArray(ss.spans) ? ss.spans : [];
      for (const s of spans as Record<string, any>[]) {
        if (!s || typeof s !== 'object') {
          reject('span is not an object');
          continue;
        }
        if (rows.length >= limits.maxSpansPerRequest) {
          reject(`more than ${limits.maxSpansPerRequest} spans in one request`);
          continue;
        }
        const traceId = hexId(s['traceId']);
        const spanId = hexId(s['spanId']);
        if (!HEX_TRACE.test(traceId) || traceId === ZERO_TRACE) {
          reject('invalid trace id');
          continue;
        }
        if (!HEX_SPAN.test(spanId) || spanId === ZERO_SPAN) {
          reject('invalid span id');
          continue;
        }
        const parent = hexId(s['parentSpanId']);
        if (parent !== '' && !HEX_SPAN.test(parent)) {
          reject('invalid parent span id');
          continue;
        }
        const start = nanos(s['startTimeUnixNano']);
        const end = nanos(s['endTimeUnixNano']);
        if (start === undefined || end === undefined) {
          reject('invalid timestamp');
          continue;
        }
        const b = new Budget(limits);
        const name = cleanText(typeof s['name'] === 'string' ? s['name'] : '', limits.maxNameChars);
        if (name.cut) b.dropped++;
        const attributes = keyValues(s['attributes'], b);
        const rawEvents = Array.isArray(s['events']) ? (s['events'] as Record<string, any>[]) : [];
        if (rawEvents.length > limits.maxEvents) b.dropped += rawEvents.length - limits.maxEvents;
        const events: SpanEventRow[] = [];
        for (const e of rawEvents.slice(0, limits.maxEvents)) {
          const t = nanos(e?.['timeUnixNano']);
          if (!e || t === undefined) {
            b.dropped++;
            continue;
          }
          events.push({ timeUnixNano: t, name: cleanText(typeof e['name'] === 'string' ? e['name'] : '', limits.maxNameChars).text, attributes: keyValues(e['attributes'], b) });
        }
        const rawLinks = Array.isArray(s['links']) ? (s['links'] as Record<string, any>[]) : [];
        if (rawLinks.length > limits.maxLinks) b.dropped += rawLinks.length - limits.maxLinks;
        const links: SpanLinkRow[] = [];
        for (const l of rawLinks.slice(0, limits.maxLinks)) {
          const lt = l ? hexId(l['traceId']) : '';
          const ls = l ? hexId(l['spanId']) : '';
          if (!HEX_TRACE.test(lt) || !HEX_SPAN.test(ls)) {
            b.dropped++;
            continue;
          }
          links.push({ traceId: lt, spanId: ls, traceState: cleanText(typeof l['traceState'] === 'string' ? l['traceState'] : '', 512).text, attributes: keyValues(l['attributes'], b) });
        }
        const kind = Number(s['kind'] ?? 0);
        const statusCode = Number(s['status']?.['code'] ?? 0);
        const statusMessage = typeof s['status']?.['message'] === 'string' && s['status']['message'] !== '' ? cleanText(s['status']['message'], limits.maxValueChars).text : null;
        const senderDropped =
          (Number(s['droppedAttributesCount']) || 0) + (Number(s['droppedEventsCount']) || 0) + (Number(s['droppedLinksCount']) || 0);
        rows.push({
          trace_id: traceId,
          span_id: spanId,
          parent_span_id: parent === '' || parent === ZERO_SPAN ? null : parent,
          name: name.text,
          kind: Number.isInteger(kind) && kind >= 0 && kind <= 5 ? kind : 0,
          service: service.slice(0, 256),
          scope,
          start_ns: start,
          end_ns: end,
          status_code: statusCode === 1 || statusCode === 2 ? statusCode : 0,
          status_message: statusMessage,
          attributes,
          resource_id: resourceId,
          events,
          links,
          dropped: Math.min(2_000_000_000, b.dropped + senderDropped),
          block_id: str(attributes[LIFTED_BLOCK_ID]),
          aggregate_id: str(attributes[sc.ATTR_AGGREGATE_ID]),
          message_id: str(attributes[sc.ATTR_MESSAGING_MESSAGE_ID]),
          request_id: str(attributes[sc.ATTR_REQUEST_ID]),
          library_id: str(attributes[LIFTED_LIBRARY_ID]),
        });
        resourceUsed = true;
      }
    }
    if (resourceUsed && !resources.has(resourceId)) resources.set(resourceId, { id: resourceId, attributes: resource });
  }
  return { rows, resources: [...resources.values()], rejected, problems };
}
