/**
 * The OTLP/JSON form of the same spans (what `OTEL_EXPORTER_OTLP_PROTOCOL=http/json` sends):
 * ids as hex, times as decimal strings, kinds and int values as JSON numbers, exactly as the
 * SDK's JSON serializer (JSON.stringify of the otlp-transformer objects) writes them.
 */
import { type AttrKey, type EventIds, JsonSpans, Role, SpanPrefix, hrNanosString, nanosString, randomSpanIdHex, spanFlags, type SdkSpanLike, type EncodedSpans, type AttrSet, type AttrTarget, type AttrValue, type Fragment, type SpanHead, type SpanWriter } from './common.js';

/** AnyValue as the SDK's toAnyValue + JSON.stringify give it. */
export function jsonAnyValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return `{"stringValue":${JSON.stringify(value)}}`;
    case 'number':
      return Number.isInteger(value) ? `{"intValue":${JSON.stringify(value)}}` : `{"doubleValue":${JSON.stringify(value)}}`;
    case 'boolean':
      return value ? '{"boolValue":true}' : '{"boolValue":false}';
    default:
  }
  if (value instanceof Uint8Array) return `{"bytesValue":${JSON.stringify(Buffer.from(value).toString('base64'))}}`;
  if (Array.isArray(value)) return `{"arrayValue":{"values":[${(value as unknown[]).map(jsonAnyValue).join(',')}]}}`;
  if (typeof value === 'object' && value !== null) {
    const kv = Object.keys(value).map((k) => jsonKeyValue(k, (value as Record<string, unknown>)[k]));
    return `{"kvlistValue":{"values":[${kv.join(',')}]}}`;
  }
  return '{}';
}

export function jsonKeyValue(key: string, value: unknown): string {
  return `{"key":${JSON.stringify(key)},"value":${jsonAnyValue(value)}}`;
}

/** A KeyValue list's JSON items, comma-separated, without brackets. */
export function jsonAttributes(attrs: Readonly<Record<string, unknown>>): string {
  return Object.keys(attrs)
    .map((k) => jsonKeyValue(k, attrs[k]))
    .join(',');
}

/** `{"key":"…","value":` per key, cached. */
const keyPrefixes = new Map<string, string>();

export class JsonSpanWriter implements SpanWriter {
  readonly protocol = 'http/json' as const;
  private out: string[] = [];
  private s = '';
  /** 0 attributes, 1 events, 2 links. */
  private phase = 0;
  /** Nothing written yet in the innermost open list. */
  private first = true;
  private firstItem = true;
  private tail = '';
  private flags = 0;

  fragment(attrs: AttrSet, _target: AttrTarget): Fragment {
    return jsonAttributes(attrs);
  }

  beginSpan(h: SpanHead): void {
    let s = `{"traceId":"${h.traceId}","spanId":"${h.spanId ?? randomSpanIdHex()}",`;
    if (h.parentSpanId) s += `"parentSpanId":"${h.parentSpanId}",`;
    if (h.traceState !== undefined) s += `"traceState":${JSON.stringify(h.traceState)},`;
    s += `"name":${JSON.stringify(h.name)},"kind":${h.kind},"startTimeUnixNano":"${nanosString(h.startMs)}","endTimeUnixNano":"${nanosString(h.endMs)}","attributes":[`;
    this.s = s;
    this.phase = 0;
    this.first = true;
    this.flags = h.flags;
  }

  spanPrefix(name: string, kind: number, startMs: number | undefined, endMs: number | undefined, attrs: readonly Fragment[]): SpanPrefix {
    if (startMs === undefined || endMs === undefined) return new SpanPrefix(`"name":${JSON.stringify(name)},"kind":${kind},`, false);
    const list = (attrs as string[]).filter((a) => a.length > 0);
    return new SpanPrefix(
      `"name":${JSON.stringify(name)},"kind":${kind},"startTimeUnixNano":"${nanosString(startMs)}","endTimeUnixNano":"${nanosString(endMs)}","attributes":[${list.join(',')}`,
      list.length > 0,
    );
  }

  beginEventSpan(prefix: SpanPrefix, ids: EventIds, role: Role, flags: number): void {
    const spanId = role === Role.PROCESS ? ids.spanId : randomSpanIdHex();
    const parent = role === Role.CHILD ? ids.spanId : ids.parentSpanId;
    const ts = ids.traceState;
    this.s =
      `{"traceId":"${ids.traceId}","spanId":"${spanId}","parentSpanId":"${parent}",` +
      (ts !== undefined ? `"traceState":${JSON.stringify(ts)},` : '') +
      (prefix.data as string);
    this.phase = 0;
    this.first = !prefix.hasAttrs;
    this.flags = flags;
  }

  times(startMs: number, endMs: number): void {
    this.s += `"startTimeUnixNano":"${nanosString(startMs)}","endTimeUnixNano":"${nanosString(endMs)}","attributes":[`;
    this.first = true;
  }

  attrs(f: Fragment): void {
    const t = f as string;
    if (t.length === 0) return;
    this.s += this.first ? t : ',' + t;
    this.first = false;
  }

  attr(key: string | AttrKey, value: AttrValue): void {
    let kp: string | undefined;
    if (typeof key === 'string') {
      kp = keyPrefixes.get(key);
      if (kp === undefined) {
        kp = `{"key":${JSON.stringify(key)},"value":`;
        if (keyPrefixes.size < 1024) keyPrefixes.set(key, kp);
      }
    } else {
      kp = key.json ??= `{"key":${JSON.stringify(key.name)},"value":`;
    }
    const kv =
      typeof value === 'string'
        ? `${kp}{"stringValue":${JSON.stringify(value)}}}`
        : typeof value === 'number' && Number.isInteger(value)
          ? `${kp}{"intValue":${value}}}`
          : `${kp}${jsonAnyValue(value)}}`;
    this.s += this.first ? kv : ',' + kv;
    this.first = false;
  }

  private toPhase(p: number): void {
    if (this.phase < 1 && p >= 1) {
      this.s += '],"droppedAttributesCount":0,"events":[';
      this.firstItem = true;
    }
    if (this.phase < 2 && p >= 2) {
      this.s += '],"droppedEventsCount":0,"links":[';
      this.firstItem = true;
    }
    this.phase = p;
  }

  beginEvent(name: string, timeMs: number): void {
    this.toPhase(1);
    this.s += this.firstItem ? '{"attributes":[' : ',{"attributes":[';
    this.firstItem = false;
    this.first = true;
    this.tail = `],"name":${JSON.stringify(name)},"timeUnixNano":"${nanosString(timeMs)}","droppedAttributesCount":0}`;
  }

  endEvent(): void {
    this.s += this.tail;
  }

  beginLink(traceId: string, spanId: string, traceState: string | undefined, flags: number): void {
    this.toPhase(2);
    this.s += this.firstItem ? '{"attributes":[' : ',{"attributes":[';
    this.firstItem = false;
    this.first = true;
    this.tail = `],"spanId":"${spanId}","traceId":"${traceId}",${traceState !== undefined ? `"traceState":${JSON.stringify(traceState)},` : ''}"droppedAttributesCount":0,"flags":${flags}}`;
  }

  endLink(): void {
    this.s += this.tail;
  }

  endSpan(statusCode: number, statusMessage: string | undefined): void {
    this.toPhase(2);
    const status = statusMessage !== undefined ? `{"code":${statusCode},"message":${JSON.stringify(statusMessage)}}` : `{"code":${statusCode}}`;
    this.out.push(`${this.s}],"droppedLinksCount":0,"status":${status},"flags":${this.flags}}`);
    this.s = '';
  }

  /**
   * One SDK ReadableSpan as the SDK's JSON serializer (JSON.stringify of otlp-transformer's
   * sdkSpanToOtlpSpan) writes it, keys in the same order.
   */
  sdkSpan(span: SdkSpanLike): void {
    const ctx = span.spanContext();
    const parent = span.parentSpanContext;
    let s = `{"traceId":"${ctx.traceId}","spanId":"${ctx.spanId}",`;
    if (parent?.spanId) s += `"parentSpanId":"${parent.spanId}",`;
    const ts = ctx.traceState?.serialize();
    if (ts !== undefined) s += `"traceState":${JSON.stringify(ts)},`;
    s += `"name":${JSON.stringify(span.name)},"kind":${span.kind == null ? 0 : span.kind + 1},"startTimeUnixNano":"${hrNanosString(span.startTime)}","endTimeUnixNano":"${hrNanosString(span.endTime)}","attributes":[${jsonAttributes(span.attributes)}],"droppedAttributesCount":${span.droppedAttributesCount},"events":[`;
    let first = true;
    for (const e of span.events) {
      s += `${first ? '' : ','}{"attributes":[${e.attributes ? jsonAttributes(e.attributes) : ''}],"name":${JSON.stringify(e.name)},"timeUnixNano":"${hrNanosString(e.time)}","droppedAttributesCount":${e.droppedAttributesCount || 0}}`;
      first = false;
    }
    const st = span.status;
    s += `],"droppedEventsCount":${span.droppedEventsCount},"status":${st.message !== undefined ? `{"code":${st.code},"message":${JSON.stringify(st.message)}}` : `{"code":${st.code}}`},"links":[`;
    first = true;
    for (const l of span.links) {
      const c = l.context;
      const lts = c.traceState?.serialize();
      s += `${first ? '' : ','}{"attributes":[${l.attributes ? jsonAttributes(l.attributes) : ''}],"spanId":"${c.spanId}","traceId":"${c.traceId}",${lts !== undefined ? `"traceState":${JSON.stringify(lts)},` : ''}"droppedAttributesCount":${l.droppedAttributesCount || 0},"flags":${spanFlags(c.traceFlags, c.isRemote)}}`;
      first = false;
    }
    this.out.push(`${s}],"droppedLinksCount":${span.droppedLinksCount},"flags":${spanFlags(ctx.traceFlags, parent?.isRemote)}}`);
  }

  take(): EncodedSpans[] {
    if (this.out.length === 0) return [];
    const out = new JsonSpans(this.out);
    this.out = [];
    return [out];
  }
}
