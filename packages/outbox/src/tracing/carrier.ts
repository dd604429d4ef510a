import { context, createTraceState, ROOT_CONTEXT, trace, TraceFlags, type Context, type SpanContext } from '@opentelemetry/api';

/**
 * The trace context as it is stored in an outbox row, the way messaging instrumentations
 * carry it in message headers (W3C Trace Context: traceparent and tracestate).
 */
export interface StoredContext {
  traceparent: string | null;
  tracestate: string | null;
}

/**
 * Captures the span context of `ctx` (default: the active one) as W3C traceparent/tracestate.
 * Written directly, not through the configured propagators: the row's columns are W3C by
 * definition, and a process that configured only B3 (or none) must still link its worker.
 */
export function injectContext(ctx: Context = context.active()): StoredContext {
  return storedContextOf(trace.getSpanContext(ctx));
}

/** A span context as injectContext stores it (for a span at hand: no context built to read it back). */
export function storedContextOf(sc: SpanContext | undefined): StoredContext {
  if (!sc || !trace.isSpanContextValid(sc)) return { traceparent: null, tracestate: null };
  const ts = sc.traceState?.serialize();
  return { traceparent: formatTraceparent(sc), tracestate: ts ? ts : null };
}

/** Restores a stored context as the parent of a new span; a missing or malformed one gives the root context. */
export function extractContext(stored: StoredContext): Context {
  const sc = parseTraceparent(stored.traceparent);
  if (!sc) return ROOT_CONTEXT;
  if (stored.tracestate) sc.traceState = createTraceState(stored.tracestate);
  return trace.setSpanContext(ROOT_CONTEXT, sc);
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/**
 * Parses a W3C traceparent without the propagation API. Used where the SDK may be absent
 * (the explorer, the CLI) and for reading the sampled flag kept in the row.
 */
export function parseTraceparent(value: string | null | undefined): SpanContext | undefined {
  if (!value) return undefined;
  const m = TRACEPARENT.exec(value);
  if (!m) return undefined;
  const [, traceId, spanId, flags] = m as unknown as [string, string, string, string];
  if (/^0+$/.test(traceId) || /^0+$/.test(spanId)) return undefined;
  return { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true };
}

export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & TraceFlags.SAMPLED).toString(16)}`;
}
