import { ATTR_REQUEST_ID } from './tracing/semconv.js';

type AttrValue = string | number | boolean;

const MAX_KEYS = 16;
const KEY = /^[A-Za-z0-9_.\-/]{1,128}$/;
const MAX_STRING = 256;
/** The worker's option check: an event for a projection no worker can be started for would wait forever. */
export const PROJECTION_NAME = /^[a-z][a-z0-9_.-]{0,62}$/;

/** Rejects a projection name no worker accepts (`[a-z][a-z0-9_.-]*`, at most 63 characters). */
export function checkedProjection(projection: string): string {
  if (typeof projection !== 'string' || !PROJECTION_NAME.test(projection)) {
    throw new TypeError(`enqueue: projection must match [a-z][a-z0-9_.-]* (at most 63 characters), got ${JSON.stringify(String(projection).slice(0, 70))}`);
  }
  return projection;
}

/**
 * A producer's event attributes, checked once at enqueue (they go on every span of the event):
 * a few keys of a safe shape, scalar values, short strings, none of the outbox's own keys.
 */
export function checkedAttributes(attrs: Readonly<Record<string, AttrValue>> | null | undefined): Readonly<Record<string, AttrValue>> {
  if (attrs == null) return {};
  if (typeof attrs !== 'object' || Array.isArray(attrs)) throw new TypeError('enqueue: attributes must be an object of string, number or boolean values');
  const keys = Object.keys(attrs);
  if (keys.length > MAX_KEYS) throw new RangeError(`enqueue: at most ${MAX_KEYS} attributes, got ${keys.length}`);
  for (const k of keys) {
    if (!KEY.test(k)) throw new TypeError(`enqueue: attribute key ${JSON.stringify(k.slice(0, 40))} must be 1 to 128 letters, digits, _ . - /`);
    if (k === ATTR_REQUEST_ID || (k.startsWith('loomtrace.') && RESERVED.has(k.slice(10).split('.')[0]!)) || k.startsWith('messaging.')) {
      throw new TypeError(`enqueue: attribute key ${k} is the outbox's own`);
    }
    const v = attrs[k];
    if (typeof v === 'string') {
      if (v.length > MAX_STRING) throw new RangeError(`enqueue: attribute ${k} is longer than ${MAX_STRING} characters`);
    } else if (typeof v === 'number') {
      if (!Number.isFinite(v)) throw new TypeError(`enqueue: attribute ${k} must be a finite number`);
    } else if (typeof v !== 'boolean') {
      throw new TypeError(`enqueue: attribute ${k} must be a string, number or boolean`);
    }
  }
  return attrs;
}

/** Namespaces under `loomtrace.` that the outbox writes itself. */
const RESERVED = new Set(['projection', 'event', 'aggregate', 'attempt', 'lease', 'queue', 'retry', 'ack', 'outcome', 'reclaimed', 'previous', 'batch', 'write', 'replayed', 'next', 'link', 'db', 'max', 'sampled', 'worker', 'request']);
