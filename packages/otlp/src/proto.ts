/**
 * A minimal protobuf writer for OTLP ExportTraceServiceRequest (opentelemetry-proto
 * collector/trace/v1, trace/v1, common/v1, resource/v1). Field numbers are the wire contract:
 *
 *   ExportTraceServiceRequest { 1 resource_spans }
 *   ResourceSpans   { 1 resource, 2 scope_spans, 3 schema_url }
 *   ScopeSpans      { 1 scope, 2 spans, 3 schema_url }
 *   Resource        { 1 attributes, 2 dropped_attributes_count }
 *   InstrumentationScope { 1 name, 2 version, 3 attributes, 4 dropped_attributes_count }
 *   Span { 1 trace_id, 2 span_id, 3 trace_state, 4 parent_span_id, 5 name, 6 kind,
 *          7 start_time_unix_nano (fixed64), 8 end_time_unix_nano (fixed64), 9 attributes,
 *          10 dropped_attributes_count, 11 events, 12 dropped_events_count, 13 links,
 *          14 dropped_links_count, 15 status, 16 flags (fixed32) }
 *   Span.Event { 1 time_unix_nano (fixed64), 2 name, 3 attributes, 4 dropped_attributes_count }
 *   Span.Link  { 1 trace_id, 2 span_id, 3 trace_state, 4 attributes, 5 dropped_attributes_count, 6 flags (fixed32) }
 *   Status     { 2 message, 3 code }
 *   KeyValue   { 1 key, 2 value }
 *   AnyValue   { 1 string, 2 bool, 3 int (int64), 4 double, 5 array, 6 kvlist, 7 bytes }
 *
 * Fields are written in the order, and with the defaults, the SDK's own serializer
 * (otlp-transformer's trace-serializer) writes them, so the bytes match it.
 */
import { type AttrKey, type EventIds, ProtoSpans, Role, SpanPrefix, putRandomSpanId, spanFlags, type SdkSpanLike, type EncodedSpans, type AttrSet, type AttrTarget, type AttrValue, type Fragment, type SpanHead, type SpanWriter } from './common.js';

const CHUNK = 256 * 1024;

// Tags: (field << 3) | wire type. 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
const T_LEN1 = 0x0a; // field 1, LEN
const T_LEN2 = 0x12; // field 2, LEN
const T_LEN3 = 0x1a; // field 3, LEN
const T_LEN4 = 0x22; // field 4, LEN
const T_LEN5 = 0x2a; // field 5, LEN
const T_LEN6 = 0x32;
const T_LEN7 = 0x3a;
const ATTR_TAG: Record<AttrTarget, number> = { span: 0x4a /* 9 */, event: T_LEN3, link: T_LEN4 };

const HEX = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[97 + i] = 10 + i;
    t[65 + i] = 10 + i;
  }
  return t;
})();

/** KeyValue's start for a key: tag 1, the key's bytes, tag 2 (the value's length follows). */
const keyPrefixes = new Map<string, Uint8Array>();
function keyPrefix(key: string): Uint8Array {
  const w = new ProtoBuffer(64 + 3 * key.length);
  w.byte(T_LEN1);
  w.str(key);
  w.byte(T_LEN2);
  return w.copy();
}

/** A 32-bit word, big-endian; returns the new position. */
function putWord(b: Buffer, p: number, w: number): number {
  b[p] = w >>> 24;
  b[p + 1] = (w >>> 16) & 0xff;
  b[p + 2] = (w >>> 8) & 0xff;
  b[p + 3] = w & 0xff;
  return p + 4;
}

/** Length byte and the bytes of a hex id; returns the new position. */
function putHex(b: Buffer, p: number, hex: string): number {
  const n = hex.length >> 1;
  b[p++] = n;
  for (let i = 0; i < n; i++) b[p++] = (HEX[hex.charCodeAt(2 * i)]! << 4) | HEX[hex.charCodeAt(2 * i + 1)]!;
  return p;
}

export function varintSize(n: number): number {
  let k = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    k++;
  }
  return k;
}

/** Writes a non-negative integer (below 2^53) as a varint at `p`; returns the position after it. */
function putVarint(b: Buffer, p: number, v: number): number {
  while (v >= 0x80) {
    b[p++] = (v & 0x7f) | 0x80;
    v = v > 0x7fffffff ? Math.floor(v / 128) : v >>> 7;
  }
  b[p++] = v;
  return p;
}

/** A growable buffer with the protobuf primitives; nested messages get their length when they end. */
export class ProtoBuffer {
  buf: Buffer;
  pos = 0;
  /** Where the current top-level item started: what moves when the buffer grows. */
  protected itemStart = 0;
  /** Open length-delimited messages: the position of each one's (1-byte, reserved) length. */
  private readonly open: number[] = [];

  constructor(size = CHUNK) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    this.grow(n);
  }

  /** Hook for the span writer: the finished items of the current buffer, before it is replaced. */
  protected retire(): void {}

  private grow(n: number): void {
    this.retire();
    const used = this.pos - this.itemStart;
    const next = Buffer.allocUnsafe(Math.max(CHUNK, (used + n) * 2));
    this.buf.copy(next, 0, this.itemStart, this.pos);
    const delta = this.itemStart;
    for (let i = 0; i < this.open.length; i++) this.open[i]! -= delta;
    // Items before itemStart stay where they are: their slices keep the old buffer alive.
    this.buf = next;
    this.pos = used;
    this.itemStart = 0;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  varint(n: number): void {
    this.ensure(10);
    if (n >= 0 && n < 0x80000000) {
      while (n >= 0x80) {
        this.buf[this.pos++] = (n & 0x7f) | 0x80;
        n >>>= 7;
      }
      this.buf[this.pos++] = n;
      return;
    }
    // Large or negative: int64 two's complement, as every protobuf writer does.
    let v = BigInt.asUintN(64, BigInt(n));
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  fixed32(n: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(n >>> 0, this.pos);
    this.pos += 4;
  }

  double(n: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(n, this.pos);
    this.pos += 8;
  }

  /** Epoch ms as fixed64 nanoseconds, exactly as the SDK's writeHrTimeAsFixed64 computes them. */
  timeMs(ms: number): void {
    // hrParts(ms), inline (no array): the SDK's millisToHrTime.
    this.timeHr(Math.trunc(ms / 1000), Math.round((ms % 1000) * 1e6));
  }

  /** An SDK HrTime ([seconds, nanoseconds]) as fixed64 nanoseconds: the SDK's writeHrTimeAsFixed64. */
  timeHr(seconds: number, nanos: number): void {
    const lo16 = seconds & 0xffff;
    const hi = (seconds / 0x10000) >>> 0;
    const fromLo = lo16 * 1e9;
    const fromHi = hi * 1e9;
    const lowWithCarry = (fromLo >>> 0) + (((fromHi & 0xffff) * 0x10000) >>> 0) + nanos;
    const low = lowWithCarry >>> 0;
    const carry = Math.floor(lowWithCarry / 0x100000000);
    const high = (Math.floor(fromLo / 0x100000000) + ((fromHi / 0x10000) >>> 0) + carry) >>> 0;
    this.ensure(8);
    const b = this.buf;
    const p = this.pos;
    b[p] = low & 0xff;
    b[p + 1] = (low >>> 8) & 0xff;
    b[p + 2] = (low >>> 16) & 0xff;
    b[p + 3] = low >>> 24;
    b[p + 4] = high & 0xff;
    b[p + 5] = (high >>> 8) & 0xff;
    b[p + 6] = (high >>> 16) & 0xff;
    b[p + 7] = high >>> 24;
    this.pos = p + 8;
  }

  /** A string field's length and UTF-8 bytes. */
  str(s: string): void {
    const n = s.length;
    if (n < 128) {
      this.ensure(1 + 3 * n);
      const b = this.buf;
      let p = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        b[p++] = c;
      }
      if (i === n) {
        b[this.pos] = n;
        this.pos = p;
        return;
      }
    }
    const len = Buffer.byteLength(s);
    this.varint(len);
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos);
  }

  /** A bytes field holding the binary form of a hex id (16 or 8 bytes). */
  hexId(hex: string): void {
    this.ensure(1 + (hex.length >> 1));
    this.pos = putHex(this.buf, this.pos, hex);
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Starts a length-delimited message (its tag already written). */
  begin(): void {
    this.ensure(1);
    this.open.push(this.pos);
    this.pos += 1;
  }

  /** Ends the innermost message: writes its length, moving the content when it needs more than one byte. */
  end(): void {
    const start = this.open.pop()!;
    const len = this.pos - start - 1;
    if (len < 0x80) this.buf[start] = len;
    else this.patchLength(start, 1, len);
  }

  /**
   * Writes `len` as a varint into the `reserved` bytes at `start` (inside the item being
   * written), moving what follows them when the varint needs another number of bytes.
   */
  protected patchLength(start: number, reserved: number, len: number): void {
    const k = varintSize(len);
    if (k !== reserved) {
      const rel = start - this.itemStart;
      if (k > reserved) this.ensure(k - reserved);
      start = this.itemStart + rel;
      this.buf.copyWithin(start + k, start + reserved, this.pos);
      this.pos += k - reserved;
    }
    putVarint(this.buf, start, len);
  }

  /** One KeyValue (its tag already written), as otlp-transformer's writeKeyValue. */
  keyValue(key: string, value: unknown): void {
    this.begin();
    this.byte(T_LEN1);
    this.str(key);
    this.byte(T_LEN2);
    this.begin();
    this.anyValue(value);
    this.end();
    this.end();
  }

  /** AnyValue's content, as otlp-transformer's writeAnyValue (integers within int64 as int, else double). */
  anyValue(value: unknown): void {
    switch (typeof value) {
      case 'string':
        this.byte(T_LEN1);
        this.str(value);
        return;
      case 'boolean':
        this.byte(0x10);
        this.byte(value ? 1 : 0);
        return;
      case 'number':
        if (Number.isInteger(value) && value >= -(2 ** 63) && value < 2 ** 63) {
          this.byte(0x18);
          this.varint(value);
        } else {
          this.byte(0x21);
          this.double(value);
        }
        return;
      default:
    }
    if (value instanceof Uint8Array) {
      this.byte(T_LEN7);
      this.varint(value.length);
      this.raw(value);
    } else if (Array.isArray(value)) {
      this.byte(T_LEN5);
      this.begin();
      for (const item of value as unknown[]) {
        this.byte(T_LEN1);
        this.begin();
        this.anyValue(item);
        this.end();
      }
      this.end();
    } else if (typeof value === 'object' && value !== null) {
      this.byte(T_LEN6);
      this.begin();
      for (const k in value) {
        if (!Object.prototype.hasOwnProperty.call(value, k)) continue;
        this.byte(T_LEN1);
        this.keyValue(k, (value as Record<string, unknown>)[k]);
      }
      this.end();
    }
  }

  /** Repeated KeyValue under the given tag, for every own key (the SDK's writeAttributes). */
  attributes(tag: number, attrs: Readonly<Record<string, unknown>>): void {
    for (const key in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key)) continue;
      this.byte(tag);
      this.keyValue(key, attrs[key]);
    }
  }

  /** The bytes written so far, copied out (for encode-once fragments). */
  copy(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

/** Encodes a list of KeyValue once, to be appended as bytes. */
export function protoAttributes(attrs: Readonly<Record<string, unknown>>, tag: number): Buffer {
  const w = new ProtoBuffer(256);
  w.attributes(tag, attrs);
  return w.copy();
}

/** The span writer for http/protobuf: each span is one `ScopeSpans.spans` entry (tag, length, Span). */
export class ProtoSpanWriter extends ProtoBuffer implements SpanWriter {
  readonly protocol = 'http/protobuf' as const;
  private done: EncodedSpans[] = [];
  /** Where the first finished span not yet taken starts, and where each finished span ends. */
  private partStart = 0;
  private ends: number[] = [];
  /** 0 attributes, 1 events, 2 links. */
  private phase = 0;
  private attrTag = ATTR_TAG.span;
  private flags = 0;
  /** The span's dropped counts (0 on the event-span path; an SDK span's own otherwise). */
  private droppedAttrs = 0;
  private droppedEvents = 0;
  private droppedLinks = 0;

  protected override retire(): void {
    if (this.ends.length > 0) this.done.push(new ProtoSpans(this.buf, this.partStart, this.ends));
    this.ends = [];
    // The span in progress moves to the new buffer's start.
    this.partStart = 0;
  }

  fragment(attrs: AttrSet, target: AttrTarget): Fragment {
    return protoAttributes(attrs, ATTR_TAG[target]);
  }

  beginSpan(h: SpanHead): void {
    this.itemStart = this.pos;
    const name = h.name;
    this.ensure(96 + 3 * name.length);
    const b = this.buf;
    let p = this.pos;
    b[p++] = T_LEN2;
    // The span's length: two bytes reserved (a span is 128 bytes to 16 KiB), fixed in endSpan.
    p += 2;
    b[p++] = T_LEN1;
    p = putHex(b, p, h.traceId);
    b[p++] = T_LEN2;
    if (h.spanId) p = putHex(b, p, h.spanId);
    else {
      b[p++] = 8;
      p = putRandomSpanId(b, p);
    }
    this.pos = p;
    if (h.traceState) {
      this.byte(T_LEN3);
      this.str(h.traceState);
    }
    if (h.parentSpanId) {
      this.ensure(10);
      this.buf[this.pos++] = T_LEN4;
      this.pos = putHex(this.buf, this.pos, h.parentSpanId);
    }
    this.byte(T_LEN5);
    this.str(name);
    this.ensure(24);
    this.buf[this.pos++] = 0x30;
    this.buf[this.pos++] = h.kind;
    this.buf[this.pos++] = 0x39;
    this.timeMs(h.startMs);
    this.buf[this.pos++] = 0x41;
    this.timeMs(h.endMs);
    this.phase = 0;
    this.attrTag = ATTR_TAG.span;
    this.flags = h.flags;
    this.droppedAttrs = this.droppedEvents = this.droppedLinks = 0;
  }

  spanPrefix(name: string, kind: number, startMs: number | undefined, endMs: number | undefined, attrs: readonly Fragment[]): SpanPrefix {
    const w = new ProtoBuffer(512);
    w.byte(T_LEN5);
    w.str(name);
    w.byte(0x30);
    w.varint(kind);
    if (startMs !== undefined && endMs !== undefined) {
      w.byte(0x39);
      w.timeMs(startMs);
      w.byte(0x41);
      w.timeMs(endMs);
      for (const a of attrs) w.raw(a as Uint8Array);
    }
    return new SpanPrefix(w.copy(), attrs.some((a) => a.length > 0));
  }

  beginEventSpan(prefix: SpanPrefix, ids: EventIds, role: Role, flags: number): void {
    this.itemStart = this.pos;
    const bytes = prefix.data as Buffer;
    const ts = ids.traceState;
    this.ensure(48 + bytes.length + (ts ? 5 + 3 * ts.length : 0));
    const b = this.buf;
    let p = this.pos;
    b[p++] = T_LEN2;
    p += 2; // the span's length, fixed in endSpan
    b[p++] = T_LEN1;
    b[p++] = 16;
    p = putWord(b, p, ids.t0);
    p = putWord(b, p, ids.t1);
    p = putWord(b, p, ids.t2);
    p = putWord(b, p, ids.t3);
    b[p++] = T_LEN2;
    b[p++] = 8;
    if (role === Role.PROCESS) {
      p = putWord(b, p, ids.s0);
      p = putWord(b, p, ids.s1);
    } else {
      p = putRandomSpanId(b, p);
    }
    if (ts) {
      this.pos = p;
      this.byte(T_LEN3);
      this.str(ts);
      p = this.pos;
    }
    b[p++] = T_LEN4;
    b[p++] = 8;
    if (role === Role.CHILD) {
      p = putWord(b, p, ids.s0);
      p = putWord(b, p, ids.s1);
    } else {
      p = putWord(b, p, ids.p0);
      p = putWord(b, p, ids.p1);
    }
    b.set(bytes, p);
    this.pos = p + bytes.length;
    this.phase = 0;
    this.attrTag = ATTR_TAG.span;
    this.flags = flags;
    this.droppedAttrs = this.droppedEvents = this.droppedLinks = 0;
  }

  times(startMs: number, endMs: number): void {
    this.ensure(18);
    this.buf[this.pos++] = 0x39;
    this.timeMs(startMs);
    this.buf[this.pos++] = 0x41;
    this.timeMs(endMs);
  }

  attrs(f: Fragment): void {
    this.raw(f as Uint8Array);
  }

  /**
   * One attribute. The common cases (a short ASCII string, a small non-negative integer, a
   * double, a boolean) are written in one pass with their lengths computed up front and the
   * key's bytes cached; anything else takes the general path.
   */
  attr(key: string | AttrKey, value: AttrValue): void {
    let kp: Uint8Array | undefined;
    if (typeof key === 'string') {
      kp = keyPrefixes.get(key);
      if (kp === undefined) {
        kp = keyPrefix(key);
        if (keyPrefixes.size < 1024) keyPrefixes.set(key, kp);
      }
    } else {
      kp = key.proto ??= keyPrefix(key.name);
    }
    let anyLen: number;
    let vlen = 0;
    if (typeof value === 'string') {
      vlen = value.length;
      if (vlen > 120) return this.attrSlow(key, value);
      anyLen = 2 + vlen;
    } else if (typeof value === 'number') {
      if (Number.isInteger(value) && value >= 0 && value < 0x80000000) {
        vlen = value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
        anyLen = 1 + vlen;
      } else if (Number.isInteger(value)) {
        return this.attrSlow(key, value);
      } else {
        anyLen = 9;
      }
    } else {
      anyLen = 2;
    }
    const kvLen = kp.length + 1 + anyLen;
    if (kvLen >= 0x4000) return this.attrSlow(key, value);
    this.ensure(3 + kvLen + 2 * vlen);
    const b = this.buf;
    let p = this.pos;
    b[p++] = this.attrTag;
    if (kvLen < 0x80) b[p++] = kvLen;
    else {
      b[p++] = (kvLen & 0x7f) | 0x80;
      b[p++] = kvLen >>> 7;
    }
    b.set(kp, p);
    p += kp.length;
    b[p++] = anyLen;
    if (typeof value === 'string') {
      b[p++] = T_LEN1;
      b[p++] = vlen;
      // Lengths above assume one byte per character; not ASCII: nothing is committed yet (pos
      // unchanged), write it the general way.
      if (vlen <= 64) {
        for (let i = 0; i < vlen; i++) {
          const c = value.charCodeAt(i);
          if (c >= 0x80) return this.attrSlow(key, value);
          b[p++] = c;
        }
      } else {
        // Room for the UTF-8 of any string of this length was ensured: the count is exact.
        if (b.write(value, p) !== vlen) return this.attrSlow(key, value);
        p += vlen;
      }
    } else if (typeof value === 'number') {
      if (anyLen === 9) {
        b[p++] = 0x21;
        b.writeDoubleLE(value, p);
        p += 8;
      } else {
        b[p++] = 0x18;
        let v = value;
        while (v >= 0x80) {
          b[p++] = (v & 0x7f) | 0x80;
          v >>>= 7;
        }
        b[p++] = v;
      }
    } else {
      b[p++] = 0x10;
      b[p++] = value ? 1 : 0;
    }
    this.pos = p;
  }

  private attrSlow(key: string | AttrKey, value: AttrValue): void {
    this.byte(this.attrTag);
    this.keyValue(typeof key === 'string' ? key : key.name, value);
  }

  private toPhase(p: number): void {
    if (this.phase < 1 && p >= 1) {
      // dropped_attributes_count
      this.byte(0x50);
      this.varint(this.droppedAttrs);
    }
    if (this.phase < 2 && p >= 2) {
      // dropped_events_count
      this.byte(0x60);
      this.varint(this.droppedEvents);
    }
    this.phase = p;
  }

  beginEvent(name: string, timeMs: number): void {
    this.toPhase(1);
    this.byte(0x5a); // 11, LEN
    this.begin();
    this.byte(0x09); // time_unix_nano, fixed64
    this.timeMs(timeMs);
    this.byte(T_LEN2);
    this.str(name);
    this.attrTag = ATTR_TAG.event;
  }

  endEvent(droppedAttributes = 0): void {
    this.byte(0x20); // dropped_attributes_count
    this.varint(droppedAttributes);
    this.end();
    this.attrTag = ATTR_TAG.span;
  }

  private linkFlags = 0;
  beginLink(traceId: string, spanId: string, traceState: string | undefined, flags: number): void {
    this.toPhase(2);
    this.byte(0x6a); // 13, LEN
    this.begin();
    this.byte(T_LEN1);
    this.hexId(traceId);
    this.byte(T_LEN2);
    this.hexId(spanId);
    if (traceState) {
      this.byte(T_LEN3);
      this.str(traceState);
    }
    this.attrTag = ATTR_TAG.link;
    this.linkFlags = flags;
  }

  endLink(droppedAttributes = 0): void {
    this.byte(0x28); // dropped_attributes_count
    this.varint(droppedAttributes);
    this.byte(0x35); // flags, fixed32
    this.fixed32(this.linkFlags);
    this.end();
    this.attrTag = ATTR_TAG.span;
  }

  endSpan(statusCode: number, statusMessage: string | undefined): void {
    this.toPhase(2);
    if (statusMessage || this.droppedLinks !== 0) {
      this.byte(0x70); // dropped_links_count
      this.varint(this.droppedLinks);
      this.byte(0x7a); // 15 status, LEN
      this.begin();
      if (statusMessage) {
        this.byte(T_LEN2);
        this.str(statusMessage);
      }
      this.byte(0x18);
      this.varint(statusCode);
      this.end();
    } else {
      this.ensure(6);
      const b = this.buf;
      b[this.pos++] = 0x70; // dropped_links_count = 0
      b[this.pos++] = 0;
      b[this.pos++] = 0x7a; // 15 status: { code }
      b[this.pos++] = 2;
      b[this.pos++] = 0x18;
      b[this.pos++] = statusCode;
    }
    this.ensure(6);
    const b = this.buf;
    b[this.pos++] = 0x85; // 16 flags, fixed32: tag 0x85 0x01
    b[this.pos++] = 0x01;
    b.writeUInt32LE(this.flags >>> 0, this.pos);
    this.pos += 4;
    // The span's length into the two reserved bytes (minimal varint: moved when it is not two bytes long).
    const start = this.itemStart + 1;
    const len = this.pos - start - 2;
    if (len >= 0x80 && len < 0x4000) {
      b[start] = (len & 0x7f) | 0x80;
      b[start + 1] = len >>> 7;
    } else {
      this.patchLength(start, 2, len);
    }
    this.ends.push(this.pos);
    this.itemStart = this.pos;
  }

  /**
   * One SDK ReadableSpan, field for field as the SDK's own serializer (otlp-transformer's
   * trace-serializer serializeSpan) writes it: ids, trace state when not empty, parent, name,
   * kind, times, attributes (for-in order), dropped counts, events, links, status, flags.
   */
  sdkSpan(span: SdkSpanLike): void {
    const ctx = span.spanContext();
    const parent = span.parentSpanContext;
    this.itemStart = this.pos;
    this.ensure(48);
    const b = this.buf;
    let p = this.pos;
    b[p++] = T_LEN2;
    p += 2; // the span's length, fixed in endSpan
    b[p++] = T_LEN1;
    p = putHex(b, p, ctx.traceId);
    b[p++] = T_LEN2;
    p = putHex(b, p, ctx.spanId);
    this.pos = p;
    const ts = ctx.traceState?.serialize();
    if (ts) {
      this.byte(T_LEN3);
      this.str(ts);
    }
    if (parent?.spanId) {
      this.ensure(10);
      this.buf[this.pos++] = T_LEN4;
      this.pos = putHex(this.buf, this.pos, parent.spanId);
    }
    this.byte(T_LEN5);
    this.str(span.name);
    const kind = span.kind == null ? 0 : span.kind + 1;
    if (kind !== 0) {
      this.byte(0x30);
      this.varint(kind);
    }
    this.byte(0x39);
    this.timeHr(span.startTime[0], span.startTime[1]);
    this.byte(0x41);
    this.timeHr(span.endTime[0], span.endTime[1]);
    this.phase = 0;
    this.attrTag = ATTR_TAG.span;
    this.flags = spanFlags(ctx.traceFlags, parent?.isRemote);
    this.droppedAttrs = span.droppedAttributesCount;
    this.droppedEvents = span.droppedEventsCount;
    this.droppedLinks = span.droppedLinksCount;
    this.sdkAttrs(span.attributes);
    for (const e of span.events) {
      this.toPhase(1);
      this.byte(0x5a); // 11, LEN
      this.begin();
      this.byte(0x09); // time_unix_nano, fixed64
      this.timeHr(e.time[0], e.time[1]);
      this.byte(T_LEN2);
      this.str(e.name);
      this.attrTag = ATTR_TAG.event;
      if (e.attributes) this.sdkAttrs(e.attributes);
      this.endEvent(e.droppedAttributesCount || 0);
    }
    for (const l of span.links) {
      const c = l.context;
      this.beginLink(c.traceId, c.spanId, c.traceState?.serialize(), spanFlags(c.traceFlags, c.isRemote));
      if (l.attributes) this.sdkAttrs(l.attributes);
      this.endLink(l.droppedAttributesCount || 0);
    }
    this.endSpan(span.status.code, span.status.message);
  }

  /** Attributes of any SDK value type (arrays and bytes take the general path). */
  private sdkAttrs(attrs: Readonly<Record<string, unknown>>): void {
    for (const key in attrs) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key)) continue;
      const v = attrs[key];
      const t = typeof v;
      if (t === 'string' || t === 'number' || t === 'boolean') this.attr(key, v as AttrValue);
      else {
        this.byte(this.attrTag);
        this.keyValue(key, v);
      }
    }
  }

  take(): EncodedSpans[] {
    if (this.ends.length > 0) this.done.push(new ProtoSpans(this.buf, this.partStart, this.ends));
    this.ends = [];
    this.partStart = this.pos;
    const out = this.done;
    this.done = [];
    return out;
  }
}
