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
import { type AttrKey, type EventIds, ProtoSpans, Role, SpanChunk, SpanPrefix, putRandomSpanId, type EncodedSpans, type AttrSet, type AttrTarget, type AttrValue, type Fragment, type SpanHead, type SpanWriter } from './common.js';
import { ATTR_TAG, CHUNK, ProtoBuffer, acquireChunk, releaseChunk, T_LEN1, T_LEN2, T_LEN3, T_LEN4, T_LEN5, keyPrefix, keyPrefixes, protoAttributes, putHex, putWord } from './protoBuffer.js';

export { ProtoBuffer, varintSize } from './protoBuffer.js';

/**
 * The span writer for http/protobuf: each span is one `ScopeSpans.spans` entry (tag, length,
 * Span). This part writes the worker's event spans and the parts every span has; the SDK's
 * ReadableSpans are ProtoSpanWriter's (protoSdkSpan.ts).
 */
export abstract class ProtoSpanWriterBase extends ProtoBuffer implements Omit<SpanWriter, 'sdkSpan'> {
  readonly protocol = 'http/protobuf' as const;
  private done: EncodedSpans[] = [];
  /** Where the first finished span not yet taken starts, and where each finished span ends. */
  private partStart = 0;
  private ends: number[] = [];
  /** 0 attributes, 1 events, 2 links. */
  protected phase = 0;
  protected attrTag = ATTR_TAG.span;
  protected flags = 0;
  /** The span's dropped counts (0 on the event-span path; an SDK span's own otherwise). */
  protected droppedAttrs = 0;
  protected droppedEvents = 0;
  protected droppedLinks = 0;

  /** The current buffer's reuse count: spans taken from it and not yet done. */
  private chunk = new SpanChunk(this.buf, releaseChunk);

  protected override retire(): void {
    if (this.ends.length > 0) this.done.push(this.part());
    this.ends = [];
    // The span in progress moves to the new buffer's start.
    this.partStart = 0;
  }

  protected override allocate(size: number): Buffer {
    return size === CHUNK ? acquireChunk() : Buffer.allocUnsafe(size);
  }

  protected override replaced(): void {
    this.chunk.retire();
    this.chunk = new SpanChunk(this.buf, releaseChunk);
  }

  /** The finished spans since partStart, counted in the buffer's chunk. */
  private part(): ProtoSpans {
    this.chunk.pending += this.ends.length;
    return new ProtoSpans(this.buf, this.partStart, this.ends, this.chunk);
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

  protected toPhase(p: number): void {
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

  take(): EncodedSpans[] {
    if (this.ends.length > 0) this.done.push(this.part());
    this.ends = [];
    this.partStart = this.pos;
    const out = this.done;
    this.done = [];
    return out;
  }
}
