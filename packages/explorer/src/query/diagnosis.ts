/**
 * "Why is this <aggregate> not in <projection>?" for any declared pipeline. The declared steps,
 * each marked from the source of truth (read through the declaration), the outbox, its
 * attempts and the projection (asked through the declaration's inspector), plus the trace
 * when one was stored:
 *
 *   source updated (v) → outbox event inserted → claimed → written → acked → visible (holds ≥ v)
 *
 * The verdict names the first step that did not happen and why. Everything here works from
 * the database and the projection alone; spans only add the trace link.
 */
import type { Pipeline, Queryable } from '@loomtrace/outbox';
import { parseTraceparent } from '@loomtrace/outbox';
import { selectAggregateEvents, selectAttempts, selectQueueState, type AttemptRow, type OutboxRow } from './sql/pipeline.js';
import { countTraceSpans } from './sql/traceSpans.js';
import { labelsOf, type PipelineLabels } from './pipelines.js';

export type StepStatus = 'done' | 'pending' | 'failed' | 'skipped';
export type StepName = 'source_updated' | 'outbox_inserted' | 'claimed' | 'written' | 'acked' | 'visible';

export interface Step {
  step: StepName;
  label: string;
  status: StepStatus;
  at: string | null;
  detail: string;
}

export type VerdictKind =
  | 'unknown_aggregate'
  | 'projection_unavailable'
  | 'visible'
  | 'deleted_and_removed'
  | 'queued'
  | 'in_progress'
  | 'lease_expired'
  | 'retrying'
  | 'dead'
  | 'superseded'
  | 'bug_no_event'
  | 'bug_index_behind';

export interface Diagnosis {
  aggregateType: string;
  aggregateId: string;
  projection: string;
  /** The system the projection lives in (postgresql, elasticsearch, …). */
  system: string;
  kind: VerdictKind;
  verdict: string;
  source: { version: number; deleted: boolean; updatedAt: string | null } | null;
  /** What the projection holds; `version` null when it knows the aggregate is gone but not at which version. */
  projected: { version: number | null; deleted: boolean; at: string | null; eventId: string | null; where: string | null } | null;
  /** Why the projection could not be asked (it did not answer); null when it answered. */
  projectionError: string | null;
  event: {
    id: string;
    version: number;
    state: string;
    attempts: number;
    enqueuedAt: string;
    runAt: string;
    claimedAt: string | null;
    leaseOwner: string | null;
    leaseExpiresAt: string | null;
    lastReason: string | null;
    lastDelayMs: number | null;
    doneAt: string | null;
    deadAt: string | null;
  } | null;
  attempts: { attempt: number; outcome: string; reason: string | null; owner: string | null; claimedAt: string | null; finishedAt: string; delayMs: number | null }[];
  queue: { depth: number; ahead: number; oldestPendingSeconds: number | null; workers: number } | null;
  steps: Step[];
  trace: { traceId: string; sampled: boolean; storedSpans: number } | null;
}

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);

export function humanDuration(ms: number): string {
  if (ms < 1_000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 90) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = s / 60;
  if (m < 90) return `${m.toFixed(0)} min`;
  const h = m / 60;
  if (h < 48) return `${h.toFixed(1)} h`;
  return `${(h / 24).toFixed(1)} days`;
}

/** How long the projection may take to answer before the diagnosis says it could not ask. */
const INSPECT_TIMEOUT_MS = 3_000;

async function inspect(p: Pipeline, id: string): Promise<{ state: Awaited<ReturnType<Pipeline['inspector']['inspect']>>; error: string | null }> {
  try {
    return { state: await p.inspector.inspect(id, AbortSignal.timeout(INSPECT_TIMEOUT_MS)), error: null };
  } catch (err) {
    // Only the error's kind and status: a client's message can quote the request.
    const e = err as { name?: string; code?: string; meta?: { statusCode?: number }; statusCode?: number };
    const status = e.meta?.statusCode ?? e.statusCode;
    return { state: null, error: [e.name ?? 'Error', e.code, status].filter((x) => x !== undefined && x !== '').join(' ') };
  }
}

/**
 * Diagnoses one aggregate of a declared pipeline. `version` (optional) asks about an older
 * change: a newer projected version then means "superseded".
 */
export async function diagnose(db: Queryable, pipeline: Pipeline, aggregateId: string, opts: { version?: number } = {}): Promise<Diagnosis> {
  const key = { projection: pipeline.projection, aggregateType: pipeline.aggregateType, aggregateId };
  const [source, projected, events] = await Promise.all([pipeline.readSource(db, aggregateId), inspect(pipeline, aggregateId), selectAggregateEvents(db, key)]);
  const currentVersion = source ? source.version : events[0] ? Number(events[0].aggregate_version) : 0;
  const v = opts.version ?? currentVersion;
  const event: OutboxRow | undefined = events.find((e) => Number(e.aggregate_version) === v);
  const [attempts, queue, traceInfo] = await Promise.all([
    event ? selectAttempts(db, event.id) : Promise.resolve([] as AttemptRow[]),
    event ? selectQueueState(db, event.projection, event.id) : Promise.resolve(undefined),
    (async () => {
      const ctx = parseTraceparent(event?.traceparent);
      if (!ctx) return null;
      return { traceId: ctx.traceId, sampled: (ctx.traceFlags & 1) === 1, storedSpans: await countTraceSpans(db, ctx.traceId) };
    })(),
  ]);
  const ps = projected.state;
  const d: Diagnosis = {
    aggregateType: pipeline.aggregateType,
    aggregateId,
    projection: pipeline.projection,
    system: pipeline.inspector.system,
    kind: 'unknown_aggregate',
    verdict: '',
    source: source ? { version: source.version, deleted: source.deleted, updatedAt: iso(source.updatedAt) } : null,
    projected: ps ? { version: ps.version, deleted: ps.deleted, at: iso(ps.at), eventId: ps.eventId ?? null, where: ps.where ?? null } : null,
    projectionError: projected.error,
    event: event
      ? {
          id: event.id,
          version: Number(event.aggregate_version),
          state: event.state,
          attempts: event.attempts,
          enqueuedAt: event.enqueued_at.toISOString(),
          runAt: event.run_at.toISOString(),
          claimedAt: iso(event.claimed_at),
          leaseOwner: event.lease_owner,
          leaseExpiresAt: iso(event.lease_expires_at),
          lastReason: event.last_reason,
          lastDelayMs: event.last_delay_ms,
          doneAt: iso(event.done_at),
          deadAt: iso(event.dead_at),
        }
      : null,
    attempts: attempts.map((a) => ({ attempt: a.attempt, outcome: a.outcome, reason: a.reason, owner: a.lease_owner, claimedAt: iso(a.claimed_at), finishedAt: a.finished_at.toISOString(), delayMs: a.delay_ms })),
    queue: queue ? { depth: queue.depth, ahead: queue.ahead, oldestPendingSeconds: queue.oldest_pending_s, workers: queue.workers } : null,
    steps: [],
    trace: traceInfo,
  };
  decide(d, labelsOf(pipeline), v, event, attempts);
  return d;
}

/** True when the diagnosis means the projection holds the asked version (or its removal, or newer). */
export const holdsVersion = (d: Pick<Diagnosis, 'kind'>) => d.kind === 'visible' || d.kind === 'deleted_and_removed' || d.kind === 'superseded';

const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

function decide(d: Diagnosis, L: PipelineLabels, v: number, e: OutboxRow | undefined, attempts: AttemptRow[]): void {
  const src = d.source;
  const pr = d.projected;
  const deleted = src?.deleted ?? false;
  const A = cap(L.aggregate);
  // The projection holds version v (or newer, or v's removal). A projection that forgets deleted
  // aggregates (a cluster) holds "nothing" after an acked delete: that is the removal.
  const removedUnversioned = deleted && e?.state === 'done' && d.projectionError === null && (pr === null || pr.version === null);
  const heldOk = pr !== null && pr.version !== null && pr.version >= v && (!deleted || pr.deleted || pr.version > v);
  const indexedOk = heldOk || removedUnversioned;
  const holds = () => (pr === null ? `has no row for the ${L.aggregate}` : `holds ${pr.version === null ? 'no version' : `version ${pr.version}`}${pr.deleted ? ' (tombstone)' : ''}`);
  const where = pr?.where ? ` (${pr.where})` : '';
  const visibleDetail = () => (d.projectionError ? `${L.projection} did not answer: ${d.projectionError}` : pr ? `${pr.version === null ? 'removed' : `version ${pr.version}`}${pr.deleted ? ' (tombstone)' : ''}${where}` : `not in ${L.target}`);
  const step = (step: StepName, label: string, status: StepStatus, at: string | null, detail: string) => d.steps.push({ step, label, status, at, detail });

  step('source_updated', 'source of truth updated', src ? 'done' : e ? 'done' : 'pending', src?.updatedAt ?? null, src ? `version ${v}${deleted ? ' (deleted)' : ''}` : e ? `version ${v} (${L.aggregate} row gone)` : `no such ${L.aggregate}`);
  if (!src && !e) {
    d.kind = 'unknown_aggregate';
    d.verdict = `No ${L.aggregate} ${d.aggregateId} exists and no outbox event names it.`;
    return;
  }
  if (!e) {
    step('outbox_inserted', 'outbox event inserted', heldOk ? 'skipped' : 'failed', null, `no outbox event for version ${v}`);
    if (heldOk) {
      step('visible', `visible in ${L.projection}`, 'done', pr!.at, visibleDetail());
      d.kind = pr!.version! > v ? 'superseded' : 'visible';
      d.verdict = pr!.version! > v ? `Version ${v} was superseded: ${L.projection} already holds version ${pr!.version}.` : `${A} is in ${L.projection} at version ${pr!.version}${where} (no outbox event for it is kept).`;
      return;
    }
    if (d.projectionError) {
      d.kind = 'projection_unavailable';
      d.verdict = `No outbox event for version ${v} is kept, and ${L.projection} did not answer (${d.projectionError}): cannot tell whether it holds the ${L.aggregate}.`;
      return;
    }
    d.kind = 'bug_no_event';
    d.verdict = `Bug: the ${L.aggregate} changed to version ${v} but no outbox event was written for that change${pr ? ` (${L.projection} ${holds()})` : ''}.`;
    return;
  }
  const now = e.now.getTime();
  step('outbox_inserted', 'outbox event inserted', 'done', e.enqueued_at.toISOString(), `event ${e.id} (${e.event_type})`);
  const lastAttempt = attempts[attempts.length - 1];
  const claimedEver = e.attempts > 0;
  step('claimed', 'claimed by a worker', claimedEver ? 'done' : 'pending', iso(e.claimed_at), claimedEver ? `attempt ${e.attempts}${e.lease_owner ? ` by ${e.lease_owner}` : ''}${e.reclaims ? `, reclaimed ${e.reclaims}×` : ''}` : 'waiting in the queue');
  const failedWrite = e.state === 'dead' || (e.state === 'pending' && claimedEver);
  step(
    'written',
    `written to ${L.target}`,
    e.state === 'done' ? 'done' : failedWrite ? 'failed' : 'pending',
    e.state === 'done' ? iso(e.done_at) : lastAttempt ? lastAttempt.finished_at.toISOString() : null,
    e.state === 'done' ? 'bulk write accepted' : failedWrite ? `${e.last_reason ?? 'failed'}${e.last_error ? `: ${e.last_error.slice(0, 200)}` : ''}` : '',
  );
  step('acked', 'acked (guarded update)', e.state === 'done' ? 'done' : e.state === 'dead' ? 'failed' : 'pending', iso(e.done_at ?? e.dead_at), e.state === 'done' ? 'rows affected 1' : e.state === 'dead' ? 'dead-lettered' : '');
  step('visible', `visible in ${L.projection}`, indexedOk ? 'done' : e.state === 'done' ? 'failed' : 'pending', pr?.at ?? (removedUnversioned ? iso(e.done_at) : null), visibleDetail());

  if (indexedOk) {
    const at = pr?.at ? Date.parse(pr.at) : (e.done_at?.getTime() ?? null);
    const after = at === null ? '' : `, ${pr?.at ? 'written' : 'acked'} ${humanDuration(at - e.enqueued_at.getTime())} after the change`;
    if (pr && pr.version !== null && pr.version > v) {
      d.kind = 'superseded';
      d.verdict = `Version ${v} was superseded: ${L.projection} already holds version ${pr.version}${where}.`;
    } else if (deleted) {
      d.kind = 'deleted_and_removed';
      d.verdict = `The ${L.aggregate} was deleted (version ${v}) and ${L.projection} removed it${where}${after}.`;
    } else {
      d.kind = 'visible';
      d.verdict = `${A} is in ${L.projection} at version ${pr!.version}${where}${after}.`;
    }
    return;
  }
  const q = d.queue;
  switch (e.state) {
    case 'pending':
      if (!claimedEver) {
        d.kind = 'queued';
        d.verdict = `Still queued for ${humanDuration(now - e.enqueued_at.getTime())}: ${q?.ahead ?? 0} event(s) ahead, queue depth ${q?.depth ?? 0}, ${q?.workers ? `${q.workers} worker connection(s) alive` : 'no worker is connected'}.`;
      } else if (e.last_reason === 'worker_gone') {
        d.kind = 'retrying';
        d.verdict = `Retrying: attempt ${e.attempts} was taken over because ${e.previous_owner ?? 'its worker'} died (its database session ended); the event is back in the queue, next try at ${e.run_at.toISOString()}.`;
      } else if (e.last_reason === 'lease_expired') {
        d.kind = 'retrying';
        d.verdict = `Retrying: attempt ${e.attempts} lost its lease (${e.previous_owner ?? 'a worker'} stopped answering); the event is back in the queue, next try at ${e.run_at.toISOString()}.`;
      } else {
        d.kind = 'retrying';
        const wait = e.run_at.getTime() - now;
        d.verdict = `Retrying: attempt ${e.attempts} failed with ${e.last_reason ?? 'an error'}; next try at ${e.run_at.toISOString()}${wait > 0 ? ` (in ${humanDuration(wait)})` : ' (due now)'}.`;
      }
      return;
    case 'claimed': {
      const expires = e.lease_expires_at?.getTime() ?? now;
      if (expires < now) {
        d.kind = 'lease_expired';
        d.verdict = `Attempt ${e.attempts} by ${e.lease_owner ?? 'a worker'} holds an expired lease (expired ${humanDuration(now - expires)} ago); a worker will reclaim it.`;
      } else {
        d.kind = 'in_progress';
        d.verdict = `Being processed: attempt ${e.attempts} by ${e.lease_owner ?? 'a worker'} since ${humanDuration(now - (e.claimed_at?.getTime() ?? now))} ago.`;
      }
      return;
    }
    case 'dead':
      d.kind = 'dead';
      d.verdict = `Dead-lettered after ${e.attempts} attempt(s): ${e.last_reason ?? 'failed'}${e.last_error ? ` (${e.last_error.slice(0, 160)})` : ''}; it will not be retried unless replayed.`;
      return;
    case 'done':
      if (d.projectionError) {
        d.kind = 'projection_unavailable';
        d.verdict = `Event ${e.id} was acked at ${iso(e.done_at)}, but ${L.projection} did not answer (${d.projectionError}): cannot tell whether it holds version ${v}.`;
        return;
      }
      d.kind = 'bug_index_behind';
      d.verdict = `Bug: event ${e.id} was acked at ${iso(e.done_at)} but ${L.projection} ${holds()}${where}, behind version ${v}.`;
      return;
  }
}
