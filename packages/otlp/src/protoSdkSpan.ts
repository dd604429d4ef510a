/**
 * The http/protobuf span writer's SDK part: an OpenTelemetry SDK ReadableSpan written field for
 * field as the SDK's own serializer writes it (proto.ts has the field numbers and the rest).
 */
import { spanFlags, type AttrValue, type SdkSpanLike, type SpanWriter } from './common.js';
import { ProtoSpanWriterBase } from './proto.js';
import { ATTR_TAG, T_LEN1, T_LEN2, T_LEN3, T_LEN4, T_LEN5, putHex } from './protoBuffer.js';

/** The span writer for http/protobuf (ProtoSpanWriterBase), with the SDK's spans. */
export class ProtoSpanWriter extends ProtoSpanWriterBase implements SpanWriter {
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

}
