/**
 * What the hand-written OTLP encoders share: the value types, the span flags and the time
 * conversion, each matching what the OpenTelemetry JS SDK (sdk-trace 2.x, otlp-transformer
 * 0.2xx) puts on the wire for the same span, so the fast path and the SDK path are
 * indistinguishable to a receiver.
 */

import type { AttrKey, AttrSet, AttrTarget, AttrValue, EventIds, EventSpanEncoder, Fragment } from '@loomtrace/outbox';

/**
 * The value, key, id and fragment types of the seam the outbox defines for its per-event spans
 * (`EventSpanEncoder`, which the writers here implement; the fast path never needs arrays).
 */
export type { AttrKey, AttrSet, AttrTarget, AttrValue, EventIds, Fragment };

/** OTLP Span.kind: the API's SpanKind + 1. */
export const Kind = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

/** OTLP span flags: the W3C trace flags, plus "has is_remote" and "is_remote" (the SDK's buildSpanFlags). */
export function spanFlags(traceFlags: number, parentIsRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | 0x100 | (parentIsRemote ? 0x200 : 0);
}

/**
 * Epoch milliseconds as [seconds, nanoseconds], exactly as the SDK's millisToHrTime does
 * (the SDK converts the same epoch-ms numbers we pass to startSpan/end/addEvent).
 */
export function hrParts(ms: number): [number, number] {
  return [Math.trunc(ms / 1000), Math.round((ms % 1000) * 1e6)];
}

/** The SDK ends a span at its start when the end is earlier ("inconsistent start and end time"). */
export function clampEnd(startMs: number, endMs: number): number {
  if (endMs >= startMs) return endMs;
  const [s0, n0] = hrParts(startMs);
  const [s1, n1] = hrParts(endMs);
  // Compare as the SDK does, on the converted times.
  return s1 * 1e9 + n1 < s0 * 1e9 + n0 ? startMs : endMs;
}

/** Decimal nanoseconds since the epoch (OTLP/JSON's string form of a fixed64 time). */
export function nanosString(ms: number): string {
  let [s, n] = hrParts(ms);
  if (n >= 1e9) {
    s += 1;
    n -= 1e9;
  }
  if (s === 0) return String(n);
  const tail = String(n);
  return String(s) + '000000000'.slice(tail.length) + tail;
}

import { randomFillSync } from 'node:crypto';

/** Span ids: 8 random bytes from a pooled buffer, never all zero. */
const idPool = Buffer.allocUnsafe(8 * 8192);
let idAt = idPool.length;
function nextId(): number {
  for (;;) {
    if (idAt >= idPool.length) {
      randomFillSync(idPool);
      idAt = 0;
    }
    const at = idAt;
    idAt += 8;
    if (idPool.readUInt32LE(at) !== 0 || idPool.readUInt32LE(at + 4) !== 0) return at;
  }
}
/** A new random span id, as 16 hex digits. */
export function randomSpanIdHex(): string {
  const at = nextId();
  return idPool.toString('hex', at, at + 8);
}
/** Writes a new random span id's 8 bytes at p; returns the position after them. */
export function putRandomSpanId(b: Buffer, p: number): number {
  const at = nextId();
  for (let i = 0; i < 8; i++) b[p + i] = idPool[at + i]!;
  return p + 8;
}

/** Which of an event's spans: its ids follow (queue wait and process: parent = the producer; the rest: parent = process). */
export const Role = { QUEUE_WAIT: 0, PROCESS: 1, CHILD: 2 } as const;
export type Role = (typeof Role)[keyof typeof Role];

/**
 * A span's name, kind, start and end and its first attributes, encoded once for many spans
 * (the batch's claim, write and ack children differ only in their ids).
 */
export class SpanPrefix {
  constructor(
    readonly data: Uint8Array | string,
    readonly hasAttrs: boolean,
  ) {}
}

/** The header of one span: everything before its attributes. */
export interface SpanHead {
  /** 32 lowercase hex digits. */
  traceId: string;
  /** 16 lowercase hex digits; undefined for a new random one. */
  spanId: string | undefined;
  parentSpanId: string | undefined;
  /** The serialized W3C tracestate; undefined when the span has none. */
  traceState: string | undefined;
  name: string;
  kind: number;
  startMs: number;
  endMs: number;
  /** OTLP span flags (spanFlags()). */
  flags: number;
}

/**
 * Streams spans in OTLP form, one at a time, in this order: beginSpan, attributes, events
 * (beginEvent, attributes, endEvent), links (beginLink, attributes, endLink), endSpan.
 * Finished spans are collected until `take()`.
 */
export interface SpanWriter extends EventSpanEncoder {
  readonly protocol: 'http/protobuf' | 'http/json';
  spanPrefix(name: string, kind: number, startMs: number | undefined, endMs: number | undefined, attrs: readonly Fragment[]): SpanPrefix;
  beginSpan(h: SpanHead): void;
  /** One whole SDK ReadableSpan, as the SDK's serializer for this protocol writes it. */
  sdkSpan(span: SdkSpanLike): void;
  /** The spans finished since the last call (each encoded as one ScopeSpans.spans entry). */
  take(): EncodedSpans[];
}

/** Encoded spans, back to back; split at span boundaries for export batches. */
export interface EncodedSpans {
  readonly count: number;
  /** The first n spans and the rest (the parts replace this one). */
  split(n: number): [EncodedSpans, EncodedSpans];
  /**
   * The exporter is done with these spans' bytes (sent and answered, or dropped) and holds no
   * reference to them any more: the buffer they lie in may be reused once all its spans are done.
   * Call it once per part, and not for a part that was split (its parts are called instead).
   */
  done(): void;
}

/**
 * A span writer's buffer (protoBuffer.ts's CHUNK bytes), reused once the writer has moved on to
 * another one and every span taken from it is done (docs/decisions/0024-worker-peak-rss.md): a
 * span waits in the exporter's queue long enough for its buffer to reach V8's old generation,
 * where, without reuse, it stayed until the next full collection (~20 MB in 12 s at 1,000
 * changes a second).
 */
export class SpanChunk {
  /** Spans handed out in ProtoSpans and not done yet. */
  pending = 0;
  private retired = false;
  private released = false;
  constructor(
    readonly buf: Buffer,
    private readonly release: (buf: Buffer) => void,
  ) {}
  settle(n: number): void {
    this.pending -= n;
    this.maybeRelease();
  }
  /** The writer writes no more into it. */
  retire(): void {
    this.retired = true;
    this.maybeRelease();
  }
  private maybeRelease(): void {
    if (this.retired && this.pending === 0 && !this.released) {
      this.released = true;
      this.release(this.buf);
    }
  }
}

/** Protobuf spans: bytes [start, ends[last]) of buf; span i ends at ends[i]. */
export class ProtoSpans implements EncodedSpans {
  constructor(
    readonly buf: Buffer,
    readonly start: number,
    readonly ends: number[],
    /** The reusable buffer they lie in, if they do (a writer's; counted in its `pending`). */
    readonly chunk?: SpanChunk,
  ) {}
  get count(): number {
    return this.ends.length;
  }
  get byteLength(): number {
    return this.ends.length === 0 ? 0 : this.ends[this.ends.length - 1]! - this.start;
  }
  split(n: number): [ProtoSpans, ProtoSpans] {
    return [new ProtoSpans(this.buf, this.start, this.ends.slice(0, n), this.chunk), new ProtoSpans(this.buf, this.ends[n - 1]!, this.ends.slice(n), this.chunk)];
  }
  done(): void {
    this.chunk?.settle(this.ends.length);
  }
}

/** OTLP/JSON spans: one JSON object text each. */
export class JsonSpans implements EncodedSpans {
  constructor(readonly items: string[]) {}
  get count(): number {
    return this.items.length;
  }
  split(n: number): [JsonSpans, JsonSpans] {
    return [new JsonSpans(this.items.slice(0, n)), new JsonSpans(this.items.slice(n))];
  }
  done(): void {}
}

/** An SDK HrTime: [seconds, nanoseconds]. */
export type HrTimeLike = readonly [number, number];
/** The parts of a span context the encoders read. */
export interface SpanContextLike {
  readonly traceId: string;
  readonly spanId: string;
  readonly traceFlags: number;
  readonly isRemote?: boolean | undefined;
  readonly traceState?: { serialize(): string } | undefined;
}
/**
 * The parts of an SDK ReadableSpan (@opentelemetry/sdk-trace-base 2.x) the encoders read,
 * structurally, so this module needs no SDK import.
 */
export interface SdkSpanLike {
  readonly name: string;
  readonly kind: number;
  spanContext(): SpanContextLike;
  readonly parentSpanContext?: SpanContextLike | undefined;
  readonly startTime: HrTimeLike;
  readonly endTime: HrTimeLike;
  readonly status: { readonly code: number; readonly message?: string | undefined };
  readonly attributes: Readonly<Record<string, unknown>>;
  readonly links: readonly { readonly context: SpanContextLike; readonly attributes?: Readonly<Record<string, unknown>> | undefined; readonly droppedAttributesCount?: number | undefined }[];
  readonly events: readonly { readonly time: HrTimeLike; readonly name: string; readonly attributes?: Readonly<Record<string, unknown>> | undefined; readonly droppedAttributesCount?: number | undefined }[];
  readonly droppedAttributesCount: number;
  readonly droppedEventsCount: number;
  readonly droppedLinksCount: number;
}

/** An HrTime as OTLP/JSON's decimal nanoseconds, exactly as the SDK's JSON encoder (BigInt) gives it. */
export function hrNanosString(t: HrTimeLike): string {
  return (BigInt(Math.trunc(t[0])) * 1_000_000_000n + BigInt(Math.trunc(t[1]))).toString();
}
