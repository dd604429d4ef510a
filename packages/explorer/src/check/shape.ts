/**
 * Trace-shape checks: does the trace of one change carry the spans a pipeline declares, each
 * with its kind, service, attributes, place (under which span) and order (after which span)?
 * Works on spans from anywhere: the explorer's store, an OTLP/JSON export request (one, a
 * list, or a Collector file exporter's one-request-per-line file), or a test's own capture.
 */
import type { SpanExpectation } from '@loomtrace/outbox';

export interface CheckSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | null;
  readonly name: string;
  /** OTLP span kind (1 INTERNAL, 2 SERVER, 3 CLIENT, 4 PRODUCER, 5 CONSUMER). */
  readonly kind: number;
  readonly service: string | null;
  readonly startNs: bigint;
  readonly attributes: Readonly<Record<string, unknown>>;
}

export type ShapeProblemKind = 'missing_span' | 'missing_attribute' | 'wrong_kind' | 'wrong_service' | 'not_under' | 'out_of_order';

export interface ShapeProblem {
  readonly span: string;
  readonly problem: ShapeProblemKind;
  readonly detail: string;
}

export interface ShapeReport {
  readonly ok: boolean;
  readonly traceId: string | null;
  readonly checked: number;
  readonly problems: readonly ShapeProblem[];
}

const KINDS: Record<string, number> = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 };
const KIND_NAMES = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'];

const hex = (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : '');
function nanos(v: unknown): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return BigInt(Math.trunc(v));
  if (typeof v === 'string' && /^\d{1,20}$/.test(v)) return BigInt(v);
  return 0n;
}
function kindOf(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return KINDS[v.replace(/^SPAN_KIND_/, '')] ?? 0;
  return 0;
}

/**
 * Spans in any of the flat shapes we meet: the explorer's stored spans (`startTimeUnixNano`,
 * `service`), or a test receiver's (`startNs`), attributes as a plain object.
 */
export function normalizeSpans(input: readonly Record<string, unknown>[]): CheckSpan[] {
  return input.map((s) => ({
    traceId: hex(s['traceId']),
    spanId: hex(s['spanId']),
    parentSpanId: hex(s['parentSpanId']) || null,
    name: typeof s['name'] === 'string' ? s['name'] : '',
    kind: kindOf(s['kind']),
    service: typeof s['service'] === 'string' ? s['service'] : null,
    startNs: nanos(s['startNs'] ?? s['startTimeUnixNano']),
    attributes: (s['attributes'] && typeof s['attributes'] === 'object' && !Array.isArray(s['attributes']) ? s['attributes'] : {}) as Record<string, unknown>,
  }));
}

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean; arrayValue?: { values?: AnyValue[] } };
type KeyValue = { key?: string; value?: AnyValue };
function anyValue(v: AnyValue | undefined): unknown {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(anyValue);
  return null;
}
const kvs = (list: unknown): Record<string, unknown> => Object.fromEntries((Array.isArray(list) ? (list as KeyValue[]) : []).filter((kv) => typeof kv?.key === 'string').map((kv) => [kv.key!, anyValue(kv.value)]));

/** Spans of OTLP/JSON export requests: one request, a list of them, or a file of one per line. */
export function spansFromOtlpJson(text: string): CheckSpan[] {
  const trimmed = text.trim();
  let requests: unknown[];
  try {
    const one = JSON.parse(trimmed) as unknown;
    requests = Array.isArray(one) ? one : [one];
  } catch {
    requests = trimmed.split('\n').filter((l) => l.trim()).map((l, i) => {
      try {
        return JSON.parse(l) as unknown;
      } catch {
        throw new Error(`line ${i + 1} is not JSON: an OTLP/JSON export request (or one per line) is expected`);
      }
    });
  }
  const out: Record<string, unknown>[] = [];
  for (const req of requests) {
    const rs = (req as { resourceSpans?: unknown })?.resourceSpans;
    if (!Array.isArray(rs)) throw new Error('no resourceSpans: an OTLP/JSON export request is expected');
    for (const r of rs as { resource?: { attributes?: unknown }; scopeSpans?: { spans?: Record<string, unknown>[] }[] }[]) {
      const service = kvs(r.resource?.attributes)['service.name'];
      for (const ss of r.scopeSpans ?? []) for (const s of ss.spans ?? []) out.push({ ...s, service: typeof service === 'string' ? service : null, attributes: kvs(s['attributes']) });
    }
  }
  return normalizeSpans(out);
}

/** Trace ids whose spans include one named `name`, in first-seen order. */
export function tracesWith(spans: readonly CheckSpan[], name: string): string[] {
  return [...new Set(spans.filter((s) => s.name === name).map((s) => s.traceId))];
}

/** Checks one trace (`traceId`, or the only trace in `spans`) against the declared shape. */
export function checkTraceShape(spans: readonly CheckSpan[], shape: readonly SpanExpectation[], traceId?: string): ShapeReport {
  const ids = [...new Set(spans.map((s) => s.traceId))];
  const tid = traceId ?? (ids.length === 1 ? ids[0]! : (tracesWith(spans, shape[0]?.name ?? '')[0] ?? null));
  const trace = spans.filter((s) => s.traceId === tid);
  const byId = new Map(trace.map((s) => [s.spanId, s]));
  const earliest = (name: string) => trace.filter((s) => s.name === name).reduce<bigint | null>((m, s) => (m === null || s.startNs < m ? s.startNs : m), null);
  const ancestorNamed = (s: CheckSpan, name: string) => {
    const seen = new Set<string>();
    for (let p = s.parentSpanId ? byId.get(s.parentSpanId) : undefined; p && !seen.has(p.spanId); p = p.parentSpanId ? byId.get(p.parentSpanId) : undefined) {
      if (p.name === name) return true;
      seen.add(p.spanId);
    }
    return false;
  };
  const problems: ShapeProblem[] = [];
  for (const e of shape) {
    const candidates = trace.filter((s) => s.name === e.name);
    if (candidates.length === 0) {
      problems.push({ span: e.name, problem: 'missing_span', detail: `no span named "${e.name}"${e.service ? ` from ${e.service}` : ''} in the trace` });
      continue;
    }
    // Retries make several spans of one name: the best of them is held to the declaration.
    let best: ShapeProblem[] | undefined;
    for (const s of candidates) {
      const p: ShapeProblem[] = [];
      if (e.kind && s.kind !== KINDS[e.kind]) p.push({ span: e.name, problem: 'wrong_kind', detail: `"${e.name}" is ${KIND_NAMES[s.kind] ?? s.kind}, declared ${e.kind}` });
      if (e.service && s.service !== e.service) p.push({ span: e.name, problem: 'wrong_service', detail: `"${e.name}" comes from ${s.service ?? 'no service'}, declared ${e.service}` });
      for (const a of e.attributes ?? []) if (s.attributes[a] === undefined || s.attributes[a] === null) p.push({ span: e.name, problem: 'missing_attribute', detail: `"${e.name}" lacks attribute ${a}` });
      if (e.under && !ancestorNamed(s, e.under)) p.push({ span: e.name, problem: 'not_under', detail: `"${e.name}" does not descend from "${e.under}"` });
      const after = e.after ? earliest(e.after) : null;
      if (e.after && after !== null && s.startNs < after) p.push({ span: e.name, problem: 'out_of_order', detail: `"${e.name}" starts before "${e.after}" (${Number(after - s.startNs) / 1e6} ms earlier)` });
      if (!best || p.length < best.length) best = p;
      if (p.length === 0) break;
    }
    problems.push(...best!);
  }
  return { ok: problems.length === 0, traceId: tid, checked: shape.length, problems };
}

export function formatShapeReport(r: ShapeReport): string {
  if (r.ok) return `trace ${r.traceId}: all ${r.checked} declared spans present, with their attributes, in order`;
  return [`trace ${r.traceId ?? '(none)'}: ${r.problems.length} problem(s)`, ...r.problems.map((p) => `  ✘ ${p.problem.padEnd(17)} ${p.detail}`)].join('\n');
}

/**
 * For a test: throws, naming each declared span or attribute that is missing or out of order,
 * unless the trace has the declared shape. `assertTraceShape(spans, pipeline.traceShape)`.
 */
export function assertTraceShape(spans: readonly Record<string, unknown>[] | readonly CheckSpan[], shape: readonly SpanExpectation[] | undefined, traceId?: string): ShapeReport {
  if (!shape || shape.length === 0) throw new Error('the pipeline declares no trace shape');
  const r = checkTraceShape(normalizeSpans(spans as Record<string, unknown>[]), shape, traceId);
  if (!r.ok) throw new Error(formatShapeReport(r));
  return r;
}
