/**
 * "Why is this block not in search?" The pipeline's declared steps, each marked from the
 * database (source of truth, outbox, attempts, index), plus the trace when one was stored:
 *
 *   source updated (v) → outbox event inserted → claimed → written → acked → visible (indexed ≥ v)
 *
 * The verdict names the first step that did not happen and why. Everything here works from
 * the database alone; spans only add the trace link.
 */
import type { Queryable } from '@loomtrace/outbox';
import { parseTraceparent } from '@loomtrace/outbox';
import {
  selectAggregateEvents,
  selectAttempts,
  selectBlockState,
  selectIndexedBlock,
  selectQueueState,
  type AttemptRow,
  type OutboxRow,
} from './sql/pipeline.js';
import { countTraceSpans } from './sql/traceSpans.js';

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
  | 'unknown_block'
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
  blockId: string;
  kind: VerdictKind;
  verdict: string;
  block: { version: number; deleted: boolean; updatedAt: string | null } | null;
  index: { version: number; deleted: boolean; indexedAt: string; eventId: string | null } | null;
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

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (s: string) => UUID.test(s);

/**
 * Diagnoses one block. `version` (optional) asks about an older change: a newer indexed
 * version then means "superseded".
 */
export async function diagnoseBlock(db: Queryable, blockId: string, opts: { version?: number } = {}): Promise<Diagnosis> {
  const [block, index, events] = await Promise.all([selectBlockState(db, blockId), selectIndexedBlock(db, blockId), selectAggregateEvents(db, blockId)]);
  const currentVersion = block ? Number(block.version) : events[0] ? Number(events[0].aggregate_version) : 0;
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
  const d: Diagnosis = {
    blockId,
    kind: 'unknown_block',
    verdict: '',
    block: block ? { version: Number(block.version), deleted: block.deleted_at !== null, updatedAt: iso(block.updated_at) } : null,
    index: index ? { version: Number(index.version), deleted: index.deleted, indexedAt: index.indexed_at.toISOString(), eventId: index.event_id } : null,
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
  decide(d, v, event, attempts);
  return d;
}

function decide(d: Diagnosis, v: number, e: OutboxRow | undefined, attempts: AttemptRow[]): void {
  const block = d.block;
  const index = d.index;
  const deleted = block?.deleted ?? false;
  const indexedOk = index !== null && index.version >= v && (!deleted || index.deleted || index.version > v);
  const step = (step: StepName, label: string, status: StepStatus, at: string | null, detail: string) => d.steps.push({ step, label, status, at, detail });

  step('source_updated', 'source of truth updated', block ? 'done' : e ? 'done' : 'pending', block?.updatedAt ?? null, block ? `version ${v}${deleted ? ' (deleted)' : ''}` : e ? `version ${v} (block row gone)` : 'no such block');
  if (!block && !e) {
    d.kind = 'unknown_block';
    d.verdict = `No block ${d.blockId} exists and no outbox event names it.`;
    return;
  }
  if (!e) {
    step('outbox_inserted', 'outbox event inserted', indexedOk ? 'skipped' : 'failed', null, `no outbox event for version ${v}`);
    if (indexedOk) {
      step('visible', 'visible in search', 'done', index!.indexedAt, `indexed version ${index!.version}`);
      d.kind = index!.version > v ? 'superseded' : 'visible';
      d.verdict = index!.version > v ? `Version ${v} was superseded: search already holds version ${index!.version}.` : `Block is in search at version ${index!.version} (no outbox event for it is kept).`;
      return;
    }
    d.kind = 'bug_no_event';
    d.verdict = `Bug: the block changed to version ${v} but no outbox event was written for that change${index ? ` (search holds version ${index.version})` : ''}.`;
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
    'written to the index',
    e.state === 'done' ? 'done' : failedWrite ? 'failed' : 'pending',
    e.state === 'done' ? iso(e.done_at) : lastAttempt ? lastAttempt.finished_at.toISOString() : null,
    e.state === 'done' ? 'bulk write accepted' : failedWrite ? `${e.last_reason ?? 'failed'}${e.last_error ? `: ${e.last_error.slice(0, 200)}` : ''}` : '',
  );
  step('acked', 'acked (guarded update)', e.state === 'done' ? 'done' : e.state === 'dead' ? 'failed' : 'pending', iso(e.done_at ?? e.dead_at), e.state === 'done' ? 'rows affected 1' : e.state === 'dead' ? 'dead-lettered' : '');
  step('visible', 'visible in search', indexedOk ? 'done' : e.state === 'done' ? 'failed' : 'pending', index ? index.indexedAt : null, index ? `indexed version ${index.version}${index.deleted ? ' (tombstone)' : ''}` : 'not in the index');

  if (indexedOk) {
    if (index!.version > v) {
      d.kind = 'superseded';
      d.verdict = `Version ${v} was superseded: search already holds version ${index!.version}.`;
    } else if (deleted) {
      d.kind = 'deleted_and_removed';
      d.verdict = `The block was deleted (version ${v}) and search removed it at ${index!.indexedAt}.`;
    } else {
      d.kind = 'visible';
      d.verdict = `Block is in search at version ${index!.version}, indexed ${humanDuration(Date.parse(index!.indexedAt) - e.enqueued_at.getTime())} after the change.`;
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
      d.kind = 'bug_index_behind';
      d.verdict = `Bug: event ${e.id} was acked at ${iso(e.done_at)} but search ${index ? `holds version ${index.version}${index.deleted ? ' (tombstone)' : ''}` : 'has no row for the block'}, behind version ${v}.`;
      return;
  }
}
