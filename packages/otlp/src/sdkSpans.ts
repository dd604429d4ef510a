/**
 * The SDK's own spans (the API's server, database, transaction and producer spans) encoded
 * straight to OTLP when they end, and exported by the same OTLP/HTTP exporter as the worker's
 * per-event spans (docs/decisions/0009-api-trace-cost.md). Replaces the SDK's
 * BatchSpanProcessor + OTLPTraceExporter pair: same batching variables, same endpoint, the same
 * OTLP field by field (checked by test/api-trace-export.test.ts), without keeping the span
 * objects alive until the batch is serialized.
 */
import type { SdkSpanLike } from './common.js';
import type { EventSpanExporter, ResourceLike, ScopeLike, SpanOrigin } from './exporter.js';
import { JsonSpanWriter } from './json.js';
import { ProtoSpanWriter } from './protoSdkSpan.js';

/** A ReadableSpan as the processor reads it (structural: no SDK import). */
export interface ProcessedSpan extends SdkSpanLike {
  readonly resource: ResourceLike;
  readonly instrumentationScope: ScopeLike;
}

/** One origin (resource + scope) and the writer its spans are encoded into, back to back. */
interface Lane {
  readonly origin: SpanOrigin;
  readonly writer: ProtoSpanWriter | JsonSpanWriter;
  pending: boolean;
}

/** Implements the SDK's SpanProcessor interface (onStart, onEnd, forceFlush, shutdown). */
export class OtlpSpanProcessor {
  /** One lane per instrumentation scope object (a tracer's), checked against the span's resource. */
  private readonly lanes = new WeakMap<ScopeLike, Lane>();
  /** Lanes with encoded spans not yet handed to the exporter. */
  private dirty: Lane[] = [];
  private scheduled = false;
  private readonly submitAll = (): void => {
    this.scheduled = false;
    const lanes = this.dirty;
    this.dirty = [];
    for (const l of lanes) {
      l.pending = false;
      this.exporter.submit(l.origin, l.writer);
    }
  };

  constructor(private readonly exporter: EventSpanExporter) {}

  onStart(): void {}

  onEnd(span: ProcessedSpan): void {
    // As the BatchSpanProcessor: only sampled spans are exported.
    if ((span.spanContext().traceFlags & 1) === 0) return;
    const lane = this.lane(span);
    lane.writer.sdkSpan(span);
    // Handed to the exporter's queue once per turn of the event loop, not per span: the spans
    // a turn ends are one contiguous part per origin.
    if (!lane.pending) {
      lane.pending = true;
      this.dirty.push(lane);
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(this.submitAll);
      }
    }
  }

  private lane(span: ProcessedSpan): Lane {
    const scope = span.instrumentationScope;
    let l = this.lanes.get(scope);
    if (l === undefined || l.origin.resource !== span.resource) {
      if (l?.pending) this.submitAll();
      l = { origin: { resource: span.resource, scope }, writer: this.exporter.protocol === 'http/json' ? new JsonSpanWriter() : new ProtoSpanWriter(64 * 1024), pending: false };
      this.lanes.set(scope, l);
    }
    return l;
  }

  forceFlush(): Promise<void> {
    this.submitAll();
    return this.exporter.forceFlush();
  }

  /** Flushes; the exporter itself is shut down by its owner (src/cli/telemetry.ts), after the SDK. */
  shutdown(): Promise<void> {
    return this.forceFlush();
  }
}
