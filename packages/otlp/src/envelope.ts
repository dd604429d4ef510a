/**
 * The export request around encoded spans: the resource and scope of each origin, encoded once
 * (protobuf and JSON, in the field and key order of the SDK's serializers), and the
 * ExportTraceServiceRequest built from them and the spans' bytes as they are.
 */
import { JsonSpans, ProtoSpans, type EncodedSpans } from './common.js';
import { jsonAttributes } from './json.js';
import { ProtoBuffer, varintSize } from './proto.js';

/** The parts of an SDK Resource we read (a ReadableSpan's `.resource`). */
export interface ResourceLike {
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly schemaUrl?: string | undefined;
  readonly asyncAttributesPending?: boolean | undefined;
  waitForAsyncAttributes?(): Promise<void>;
}
/** The parts of an InstrumentationScope we read (a ReadableSpan's `.instrumentationScope`). */
export interface ScopeLike {
  readonly name: string;
  readonly version?: string | undefined;
  readonly schemaUrl?: string | undefined;
  readonly attributes?: Readonly<Record<string, unknown>> | undefined;
  readonly droppedAttributesCount?: number | undefined;
}
/** Where spans come from: the resource and scope the SDK puts on its own spans. */
export interface SpanOrigin {
  readonly resource: ResourceLike;
  readonly scope: ScopeLike;
}

/** Spans of one origin waiting in the exporter's queue or taken for one export request. */
export interface Group {
  origin: SpanOrigin;
  parts: EncodedSpans[];
  count: number;
}

/** The encoded resource and scope of one origin, for both protocols' envelopes. */
interface Envelope {
  /** protobuf: ResourceSpans.resource field (tag+len+Resource), then the tail (schema_url). */
  resource: Buffer;
  resourceTail: Buffer;
  scope: Buffer;
  scopeTail: Buffer;
  /** JSON: text before the spans of one ResourceSpans and after them. */
  jsonHead: string;
  jsonTail: string;
}

function writeVarint(b: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    b[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  b[pos++] = n;
  return pos;
}

function encodeEnvelope(o: SpanOrigin): Envelope {
  const res = o.resource;
  const attrs = res.attributes;
  const r = new ProtoBuffer(1024);
  r.byte(0x0a);
  r.begin();
  r.attributes(0x0a, attrs);
  r.byte(0x10);
  r.byte(0);
  r.end();
  const rt = new ProtoBuffer(64);
  if (res.schemaUrl) {
    rt.byte(0x1a);
    rt.str(res.schemaUrl);
  }
  const sc = o.scope;
  const s = new ProtoBuffer(256);
  s.byte(0x0a);
  s.begin();
  s.byte(0x0a);
  s.str(sc.name);
  if (sc.version) {
    s.byte(0x12);
    s.str(sc.version);
  }
  if (sc.attributes) s.attributes(0x1a, sc.attributes);
  if (sc.droppedAttributesCount) {
    s.byte(0x20);
    s.varint(sc.droppedAttributesCount);
  }
  s.end();
  const st = new ProtoBuffer(64);
  if (sc.schemaUrl) {
    st.byte(0x1a);
    st.str(sc.schemaUrl);
  }
  // JSON, in the key order of the SDK's createResource / createInstrumentationScope.
  const schema = res.schemaUrl ? `,"schemaUrl":${JSON.stringify(res.schemaUrl)}` : '';
  const resource = `{"attributes":[${jsonAttributes(attrs)}],"droppedAttributesCount":0${schema}}`;
  let scope = `{"name":${JSON.stringify(sc.name)}`;
  if (sc.version !== undefined) scope += `,"version":${JSON.stringify(sc.version)}`;
  if (sc.attributes && Object.keys(sc.attributes).length > 0) {
    scope += `,"attributes":[${jsonAttributes(sc.attributes)}],"droppedAttributesCount":${sc.droppedAttributesCount ?? 0}`;
  }
  scope += '}';
  const scopeSchema = sc.schemaUrl !== undefined ? `,"schemaUrl":${JSON.stringify(sc.schemaUrl)}` : '';
  return {
    resource: r.copy(),
    resourceTail: rt.copy(),
    scope: s.copy(),
    scopeTail: st.copy(),
    jsonHead: `{"resource":${resource},"scopeSpans":[{"scope":${scope},"spans":[`,
    jsonTail: `]${scopeSchema}}]${schema}}`,
  };
}

/**
 * One group per origin, in order of first appearance: spans of several origins interleave
 * (a request's server, database and loomtrace spans), and each group costs an envelope.
 */
export function mergeByOrigin(groups: Group[]): Group[] {
  if (groups.length < 2) return groups;
  const by = new Map<SpanOrigin, Group>();
  for (const g of groups) {
    const m = by.get(g.origin);
    if (m === undefined) by.set(g.origin, { origin: g.origin, parts: [...g.parts], count: g.count });
    else {
      for (const part of g.parts) m.parts.push(part);
      m.count += g.count;
    }
  }
  return by.size === groups.length ? groups : [...by.values()];
}

/** Encoded envelopes per origin, made once per origin (an origin is the SDK's own resource + scope objects). */
export class Envelopes {
  private readonly byOrigin = new WeakMap<SpanOrigin, Envelope>();

  private envelope(o: SpanOrigin): Envelope {
    let e = this.byOrigin.get(o);
    if (!e) {
      e = encodeEnvelope(o);
      this.byOrigin.set(o, e);
    }
    return e;
  }

  /** ExportTraceServiceRequest: one ResourceSpans per group, one ScopeSpans in each, the spans' bytes as they are. */
  encodeProtoParts(groups: readonly Group[]): Buffer[] {
    const parts: Buffer[] = [];
    for (const g of groups) {
      const env = this.envelope(g.origin);
      let spans = 0;
      for (const part of g.parts) spans += (part as ProtoSpans).byteLength;
      const ss = env.scope.length + spans + env.scopeTail.length;
      const rs = env.resource.length + 1 + varintSize(ss) + ss + env.resourceTail.length;
      const head = Buffer.allocUnsafe(1 + varintSize(rs) + env.resource.length + 1 + varintSize(ss) + env.scope.length);
      let p = 0;
      head[p++] = 0x0a;
      p = writeVarint(head, p, rs);
      p += env.resource.copy(head, p);
      head[p++] = 0x12;
      p = writeVarint(head, p, ss);
      env.scope.copy(head, p);
      parts.push(head);
      // Parts that lie back to back in one buffer (a span writer's takes, one per turn of the
      // event loop) go out as one chunk: an API export of 512 spans had ~400 parts, and a write
      // per chunk cost more than the spans' encoding (decision 0022).
      let buf: Buffer | undefined;
      let from = 0;
      let to = 0;
      for (const part of g.parts) {
        const ps = part as ProtoSpans;
        const n = ps.byteLength;
        if (n === 0) continue;
        if (ps.buf === buf && ps.start === to) {
          to += n;
          continue;
        }
        if (buf) parts.push(buf.subarray(from, to));
        buf = ps.buf;
        from = ps.start;
        to = ps.start + n;
      }
      if (buf) parts.push(buf.subarray(from, to));
      if (env.scopeTail.length > 0) parts.push(env.scopeTail);
      if (env.resourceTail.length > 0) parts.push(env.resourceTail);
    }
    return parts;
  }

  encodeJson(groups: readonly Group[]): Buffer {
    const parts = groups.map((g) => {
      const env = this.envelope(g.origin);
      return env.jsonHead + g.parts.map((part) => (part as JsonSpans).items.join(',')).join(',') + env.jsonTail;
    });
    return Buffer.from(`{"resourceSpans":[${parts.join(',')}]}`, 'utf8');
  }
}
