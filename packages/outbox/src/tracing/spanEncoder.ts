/**
 * The seam through which the worker's per-event spans skip the SDK (decision 0007): an OTLP
 * span encoder and exporter, described by what the outbox needs of it. The outbox never
 * imports an implementation; `@loomtrace/otlp`'s `EventSpanExporter` satisfies this interface
 * structurally, and a process hands one to `OutboxWorker` as its `eventSpans` option. Without
 * it, every span goes through the OpenTelemetry API (the SDK path).
 */
import { randomFillSync } from 'node:crypto';

export type AttrValue = string | number | boolean;
export type AttrSet = Readonly<Record<string, AttrValue>>;
/** Where a precompiled attribute list goes: its field number differs per message. */
export type AttrTarget = 'span' | 'event' | 'link';
/** A precompiled attribute list (bytes or JSON text, per encoder). */
export type Fragment = Uint8Array | string;

/** OTLP Span.kind: the API's SpanKind + 1. */
export const Kind = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

/** Which of an event's spans: queue wait and process (parent: the producer), or a child of process. */
export const Role = { QUEUE_WAIT: 0, PROCESS: 1, CHILD: 2 } as const;
export type Role = (typeof Role)[keyof typeof Role];

/** OTLP span flags: the W3C trace flags, plus "has is_remote" and "is_remote" (the SDK's buildSpanFlags). */
export function spanFlags(traceFlags: number, parentIsRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | 0x100 | (parentIsRemote ? 0x200 : 0);
}

/**
 * The SDK ends a span at its start when the end is earlier; it compares the times converted to
 * [seconds, nanoseconds], as its millisToHrTime does.
 */
export function clampEnd(startMs: number, endMs: number): number {
  if (endMs >= startMs) return endMs;
  const ns = (ms: number) => Math.trunc(ms / 1000) * 1e9 + Math.round((ms % 1000) * 1e6);
  return ns(endMs) < ns(startMs) ? startMs : endMs;
}

/** An attribute key whose encoded form an encoder computes once and keeps here. */
export class AttrKey {
  proto: Uint8Array | undefined;
  json: string | undefined;
  constructor(readonly name: string) {}
}

/** Name, kind, times and leading attributes of spans that share them, encoded once. */
export interface SpanPrefix {
  readonly data: Uint8Array | string;
  readonly hasAttrs: boolean;
}

const idPool = Buffer.allocUnsafe(8 * 8192);
let idAt = idPool.length;
/** The words randomWords() drew last (no array per span id). */
let rw0 = 0;
let rw1 = 0;
/** Two random 32-bit words for a span id (big-endian, as its hex reads), never both zero: into rw0, rw1. */
function randomWords(): void {
  for (;;) {
    if (idAt >= idPool.length) {
      randomFillSync(idPool);
      idAt = 0;
    }
    const at = idAt;
    idAt += 8;
    rw0 = idPool.readUInt32BE(at);
    rw1 = idPool.readUInt32BE(at + 4);
    if ((rw0 | rw1) !== 0) return;
  }
}
const hex8 = (w: number): string => (w >>> 0).toString(16).padStart(8, '0');

/**
 * The ids of one event's spans: its trace and the producer's span (the stored context, as hex
 * and as 32-bit words, which a binary encoder copies without decoding hex), and a new random
 * id for its process span, the parent of its claim, write and ack spans.
 */
export class EventIds {
  readonly s0: number;
  readonly s1: number;
  private hex: string | undefined;
  constructor(
    readonly traceId: string,
    readonly t0: number,
    readonly t1: number,
    readonly t2: number,
    readonly t3: number,
    readonly parentSpanId: string,
    readonly p0: number,
    readonly p1: number,
    readonly traceState: string | undefined,
  ) {
    randomWords();
    this.s0 = rw0;
    this.s1 = rw1;
  }
  /** The process span's id, as 16 hex digits. */
  get spanId(): string {
    return (this.hex ??= hex8(this.s0) + hex8(this.s1));
  }
}

/**
 * Streams an event's spans in OTLP form, one at a time: beginEventSpan, attributes, events
 * (beginEvent, attributes, endEvent), links (beginLink, attributes, endLink), endSpan.
 */
export interface EventSpanEncoder {
  fragment(attrs: AttrSet, target: AttrTarget): Fragment;
  /** Without times (then no attributes): `times()` follows `beginEventSpan`. */
  spanPrefix(name: string, kind: number, startMs: number | undefined, endMs: number | undefined, attrs: readonly Fragment[]): SpanPrefix;
  beginEventSpan(prefix: SpanPrefix, ids: EventIds, role: Role, flags: number): void;
  times(startMs: number, endMs: number): void;
  attrs(f: Fragment): void;
  attr(key: string | AttrKey, value: AttrValue): void;
  beginEvent(name: string, timeMs: number): void;
  endEvent(): void;
  beginLink(traceId: string, spanId: string, traceState: string | undefined, flags: number): void;
  endLink(): void;
  /** Status code: 0 unset, 1 ok, 2 error (the API's values). */
  endSpan(statusCode: number, statusMessage: string | undefined): void;
}

/**
 * The SDK's resource and instrumentation scope, read off one of its spans and handed to the
 * exporter as they are: the outbox does not look inside.
 */
export interface SpanOrigin {
  readonly resource: unknown;
  readonly scope: unknown;
}

/** Encodes and exports the per-event spans: `submit` hands what the encoder wrote since the last call to the exporter. */
export interface EventSpanSink {
  readonly writer: EventSpanEncoder;
  submit(origin: SpanOrigin): void;
}
