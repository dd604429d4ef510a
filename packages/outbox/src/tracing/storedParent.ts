/** The W3C context stored in an outbox row, parsed once per claimed event. */
import type { SpanContext } from '@opentelemetry/api';
import { parseTraceparent } from './carrier.js';

const HEX_LOWER = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) t[97 + i] = 10 + i;
  return t;
})();

/** A stored context, with its ids as 32-bit words too (trace id: w0..w3, span id: w4, w5). */
export interface StoredParent extends SpanContext {
  w0: number;
  w1: number;
  w2: number;
  w3: number;
  w4: number;
  w5: number;
}

/**
 * parseTraceparent without the regular expressions (the worker parses one per event): the
 * same answers, the common well-formed case checked by hand (its ids read into words on the
 * way), anything else left to it.
 */
export function parseStored(v: string | null): SpanContext | StoredParent | undefined {
  if (!v || v.length !== 55 || v.charCodeAt(0) !== 48 || v.charCodeAt(1) !== 48 || v.charCodeAt(2) !== 45 || v.charCodeAt(35) !== 45 || v.charCodeAt(52) !== 45) {
    return parseTraceparent(v);
  }
  let w0 = 0;
  let w1 = 0;
  let w2 = 0;
  let w3 = 0;
  let w4 = 0;
  let w5 = 0;
  let acc = 0;
  let n = 0;
  let k = 0;
  for (let i = 3; i < 52; i++) {
    if (i === 35) continue;
    const c = v.charCodeAt(i);
    const d = c < 128 ? HEX_LOWER[c]! : -1;
    if (d < 0) return undefined;
    acc = (acc << 4) | d;
    if (++n === 8) {
      const word = acc >>> 0;
      if (k === 0) w0 = word;
      else if (k === 1) w1 = word;
      else if (k === 2) w2 = word;
      else if (k === 3) w3 = word;
      else if (k === 4) w4 = word;
      else w5 = word;
      k++;
      acc = 0;
      n = 0;
    }
  }
  const c1 = v.charCodeAt(53);
  const c2 = v.charCodeAt(54);
  const f1 = c1 < 128 ? HEX_LOWER[c1]! : -1;
  const f2 = c2 < 128 ? HEX_LOWER[c2]! : -1;
  if (f1 < 0 || f2 < 0) return undefined;
  if ((w0 | w1 | w2 | w3) === 0 || (w4 | w5) === 0) return undefined;
  return { traceId: v.slice(3, 35), spanId: v.slice(36, 52), traceFlags: (f1 << 4) | f2, isRemote: true, w0, w1, w2, w3, w4, w5 };
}

/**
 * What parseStored would say of a stored traceparent's sampling, without parsing it into
 * strings and objects (the worker asks this of every claimed event; an unsampled one needs
 * nothing more): 1 sampled, 0 sampled out, -1 no valid context (parseStored gives undefined).
 */
export function storedSampling(v: string | null): -1 | 0 | 1 {
  // parseTraceparent accepts nothing that fails this check (its pattern is anchored, version 00, lowercase).
  if (!v || v.length !== 55 || v.charCodeAt(0) !== 48 || v.charCodeAt(1) !== 48 || v.charCodeAt(2) !== 45 || v.charCodeAt(35) !== 45 || v.charCodeAt(52) !== 45) return -1;
  let t = 0;
  let s = 0;
  for (let i = 3; i < 52; i++) {
    if (i === 35) continue;
    const c = v.charCodeAt(i);
    const d = c < 128 ? HEX_LOWER[c]! : -1;
    if (d < 0) return -1;
    if (i < 35) t |= d;
    else s |= d;
  }
  const c1 = v.charCodeAt(53);
  const c2 = v.charCodeAt(54);
  const f1 = c1 < 128 ? HEX_LOWER[c1]! : -1;
  const f2 = c2 < 128 ? HEX_LOWER[c2]! : -1;
  if (f1 < 0 || f2 < 0 || t === 0 || s === 0) return -1;
  return (f2 & 1) === 1 ? 1 : 0;
}

/** A stored context parsed on the common path, its ids read into words. */
export const hasWords = (p: SpanContext): p is StoredParent => 'w0' in p;
