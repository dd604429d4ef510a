/**
 * A synthetic probe: one canary change through a declared pipeline, the time until the
 * projection holds it (asked through the declaration's inspector), and the change's trace
 * held to the declared shape. On failure the reason is the diagnosis's verdict, so "the worker
 * is stopped" reads as "Still queued for 10 s: …, no worker is connected".
 */
import type { Pipeline, Queryable } from '@loomtrace/outbox';
import { diagnose, type Diagnosis } from '../query/diagnosis.js';
import { checkTraceShape, normalizeSpans, type ShapeReport } from '../check/shape.js';
import { selectTraceJson } from '../query/sql/traceSpans.js';

export type ProbeOutcome = 'ok' | 'change_failed' | 'not_visible' | 'no_trace' | 'bad_shape';

export interface ProbeResult {
  readonly ok: boolean;
  readonly outcome: ProbeOutcome;
  readonly reason: string;
  readonly aggregateId: string | null;
  readonly version: number | null;
  /** From just before the change to the first answer holding its version. */
  readonly visibleMs: number | null;
  readonly traceId: string | null;
  readonly shape: ShapeReport | null;
  readonly diagnosis: Diagnosis | null;
}

export interface ProbeOptions {
  readonly db: Queryable;
  readonly pipeline: Pipeline;
  /** How long the change may take to become visible. Default 30 s. */
  readonly timeoutMs?: number;
  /** How long the trace may take to arrive in the store, once visible. Default 10 s. */
  readonly traceTimeoutMs?: number;
  /** Hold the trace to the declared shape (needs the spans in the explorer's store). Default true when one is declared. */
  readonly checkShape?: boolean;
  readonly pollMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function runProbe(o: ProbeOptions): Promise<ProbeResult> {
  const { pipeline, db } = o;
  const result = (r: Partial<ProbeResult> & Pick<ProbeResult, 'outcome' | 'reason'>): ProbeResult => ({ ok: r.outcome === 'ok', aggregateId: null, version: null, visibleMs: null, traceId: null, shape: null, diagnosis: null, ...r });
  if (!pipeline.canary) return result({ outcome: 'change_failed', reason: `the ${pipeline.aggregateType} → ${pipeline.projection} pipeline declares no canary change` });
  const poll = o.pollMs ?? 50;
  const started = performance.now();
  let change;
  try {
    change = await pipeline.canary(db);
  } catch (err) {
    return result({ outcome: 'change_failed', reason: `the canary change failed: ${(err as Error).message.slice(0, 200)}` });
  }
  const base = { aggregateId: change.aggregateId, version: change.version, traceId: change.traceId ?? null };
  const deadline = started + (o.timeoutMs ?? 30_000);
  let visibleMs: number | null = null;
  while (visibleMs === null) {
    const held = await pipeline.inspector.inspect(change.aggregateId, AbortSignal.timeout(5_000)).catch(() => null);
    if (held && held.version !== null && held.version >= change.version) visibleMs = performance.now() - started;
    else if (performance.now() > deadline) {
      const d = await diagnose(db, pipeline, change.aggregateId, { version: change.version });
      return result({ ...base, outcome: 'not_visible', reason: `not visible after ${Math.round(performance.now() - started)} ms: ${d.verdict}`, diagnosis: d });
    } else await sleep(poll);
  }
  const shapeWanted = (o.checkShape ?? true) && (pipeline.traceShape?.length ?? 0) > 0;
  if (!shapeWanted || !change.traceId) {
    return result({ ...base, outcome: 'ok', reason: `visible in ${Math.round(visibleMs)} ms${shapeWanted ? '; no trace id to check' : ''}`, visibleMs });
  }
  // The worker's spans are exported after its ack: wait for the last declared span to arrive.
  const shape = pipeline.traceShape!;
  const traceDeadline = performance.now() + (o.traceTimeoutMs ?? 10_000);
  let report: ShapeReport;
  for (;;) {
    const t = await selectTraceJson(db, change.traceId, 10_000);
    report = checkTraceShape(normalizeSpans(JSON.parse(t.spans) as Record<string, unknown>[]), shape, change.traceId);
    if (report.ok) break;
    if (performance.now() > traceDeadline) {
      if (t.count === 0) return result({ ...base, outcome: 'no_trace', reason: `visible in ${Math.round(visibleMs)} ms, but no span of trace ${change.traceId} reached the explorer`, visibleMs });
      return result({ ...base, outcome: 'bad_shape', reason: `visible in ${Math.round(visibleMs)} ms, but the trace ${report.problems.map((p) => p.detail).join('; ')}`, visibleMs, shape: report });
    }
    await sleep(200);
  }
  return result({ ...base, outcome: 'ok', reason: `visible in ${Math.round(visibleMs)} ms; trace ${change.traceId} has the declared shape`, visibleMs, shape: report });
}
