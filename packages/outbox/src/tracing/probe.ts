/**
 * What the registered OpenTelemetry SDK does, probed once per process (never-ended probe spans,
 * never exported): whether it is there at all, whether its sampler keeps unsampled parents
 * unsampled, and the resource and scope it puts on spans (for the fast path).
 */
import { randomBytes } from 'node:crypto';
import { ROOT_CONTEXT, TraceFlags, trace } from '@opentelemetry/api';
import type { SpanOrigin } from './spanEncoder.js';
import { tracer } from './spans.js';

let sdkActive: boolean | undefined;
/**
 * True when a real SDK is registered. The no-op tracer hands out invalid span contexts; the
 * SDK makes real ids even for spans it does not sample. Checked once: with tracing off, the
 * worker's per-event cost is one boolean test.
 */
export function tracingActive(): boolean {
  if (sdkActive === undefined) {
    // Never ended, so never exported.
    const probe = tracer().startSpan('loomtrace.probe', { root: true });
    sdkActive = probe.spanContext().traceId !== '00000000000000000000000000000000';
  }
  return sdkActive;
}

let unsampledStays: boolean | undefined;
/**
 * True when the registered sampler never records a span whose remote parent was not sampled:
 * the parent-based samplers (the default, and what the OTEL_TRACES_SAMPLER values
 * `parentbased_*` give). Then an event whose producer was sampled out needs no span at all,
 * not even a non-recording one. Probed once with several random unsampled parents; a sampler
 * that records any of them (for example `always_on`) keeps the full path for every event.
 */
export function unsampledParentsStayUnsampled(): boolean {
  if (unsampledStays === undefined) {
    unsampledStays = true;
    for (let k = 0; k < 16 && unsampledStays; k++) {
      const parent = trace.setSpanContext(ROOT_CONTEXT, {
        traceId: randomBytes(16).toString('hex'),
        spanId: randomBytes(8).toString('hex'),
        traceFlags: TraceFlags.NONE,
        isRemote: true,
      });
      // Never ended, so never exported.
      if (tracer().startSpan('loomtrace.probe', {}, parent).isRecording()) unsampledStays = false;
    }
  }
  return unsampledStays;
}

let origin: SpanOrigin | null | undefined;
/**
 * The resource and instrumentation scope the SDK puts on our spans, read from a probe span
 * with a sampled remote parent (never ended, so never exported). Undefined when such a parent
 * does not give a sampled, recording SDK span: then the sampler is not parent-based (or the
 * provider is not the SDK's) and the fast path stays off.
 */
export function sdkOrigin(): SpanOrigin | undefined {
  if (origin === undefined) {
    origin = null;
    const parent = trace.setSpanContext(ROOT_CONTEXT, {
      traceId: randomBytes(16).toString('hex'),
      spanId: randomBytes(8).toString('hex'),
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
    });
    const probe = tracer().startSpan('loomtrace.probe', {}, parent);
    const s = probe as unknown as { resource?: unknown; instrumentationScope?: unknown };
    if (probe.isRecording() && (probe.spanContext().traceFlags & TraceFlags.SAMPLED) !== 0 && s.resource && s.instrumentationScope) {
      origin = { resource: s.resource, scope: s.instrumentationScope };
    }
  }
  return origin ?? undefined;
}

/** For tests that install an SDK after a worker ran without one. */
export function resetTracingProbe(): void {
  sdkActive = undefined;
  unsampledStays = undefined;
  origin = undefined;
}
