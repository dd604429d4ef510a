import {
  context,
  createContextKey,
  ROOT_CONTEXT,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanKind,
  type Link,
  type Tracer,
} from '@opentelemetry/api';
import { INSTRUMENTATION_SCOPE } from './semconv.js';

/**
 * The OpenTelemetry SDK's "suppress tracing" context key: createContextKey returns
 * Symbol.for(description), so this is the key @opentelemetry/core's suppressTracing() sets
 * (decision 0009), without depending on @opentelemetry/core.
 */
const SUPPRESS_TRACING = createContextKey('OpenTelemetry SDK Context Key SUPPRESS_TRACING');

/** `ctx` without its active span and with tracing suppressed: under it the SDK's tracers start only non-recording spans. */
export function suppressedContext(ctx: Context): Context {
  return trace.deleteSpan(ctx).setValue(SUPPRESS_TRACING, true);
}

/** The library's tracer. A no-op until a process registers an SDK. */
export function tracer(): Tracer {
  return trace.getTracer(INSTRUMENTATION_SCOPE);
}

/** Error messages on spans stay short: no stack, no user content, at most this long. */
export const MAX_ERROR_MESSAGE = 200;

export function shortMessage(err: unknown): string {
  const raw = err instanceof Error ? err.message : String(err);
  const firstLine = raw.split('\n', 1)[0] ?? '';
  return firstLine.length > MAX_ERROR_MESSAGE ? `${firstLine.slice(0, MAX_ERROR_MESSAGE - 1)}…` : firstLine;
}

export function errorType(err: unknown): string {
  if (err && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.length > 0 && code.length < 40) return code;
    if (err instanceof Error) return err.name;
  }
  return 'Error';
}

/** Marks a span failed with a short message, without ending it. */
export function recordFailure(span: Span, err: unknown): void {
  const message = shortMessage(err);
  span.recordException({ name: errorType(err), message });
  span.setAttribute('error.type', errorType(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

export interface SpanOptions {
  kind?: SpanKind;
  attributes?: Attributes;
  links?: Link[];
  /** Parent context; defaults to the active one. */
  parent?: Context;
}

/**
 * Starts a span, makes it active for `fn`, ends it, records an error and rethrows.
 * The one way our code opens a span around work.
 */
export async function withSpan<T>(name: string, options: SpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = tracer().startSpan(
    name,
    { kind: options.kind, attributes: options.attributes, links: options.links },
    parent,
  );
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    recordFailure(span, err);
    throw err;
  } finally {
    span.end();
  }
}

export { ROOT_CONTEXT };
