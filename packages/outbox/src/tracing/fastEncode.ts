/**
 * The fast path's encoding of one batch's per-event spans (decision 0007): the batch's shared
 * attribute lists and span prefixes, each event's queue wait, and at finish its process span
 * with the claim, write and ack children, the same spans and attributes the SDK path makes.
 */
import { SpanStatusCode, type SpanContext } from '@opentelemetry/api';
import { Kind, Role, clampEnd, spanFlags, type EventSpanEncoder, type EventSpanSink, type Fragment, type SpanOrigin } from './spanEncoder.js';
import * as sc from './semconv.js';
import { FastSpan, K, LOCAL_CHILD, REMOTE_CHILD, attrKey, constantsFor, type FastBatch, type FastPrefixes } from './fastParts.js';
import type { ItemOutcome } from '../outcome.js';
import type { OutboxEvent } from '../types.js';

/** What one batch's spans carry that does not change from batch to batch: encoded once per writer and worker. */
interface Shared {
  procA: Fragment;
  procB: Fragment;
  batchSize: Fragment;
  write: Fragment;
}
const sharedByWriter = new WeakMap<EventSpanEncoder, Map<string, Shared>>();

/**
 * The fragments a worker's batches share, cached by projection, worker, sink system and batch
 * size (a worker has one of each, and a few batch sizes: bounded all the same). Encoding them
 * for every batch was a fixed cost of each batch that holds a sampled event (decision 0023).
 */
function sharedFor(w: EventSpanEncoder, projection: string, workerId: string, system: string, n: number): Shared {
  let m = sharedByWriter.get(w);
  if (!m) sharedByWriter.set(w, (m = new Map()));
  const key = `${projection}\u0000${workerId}\u0000${system}\u0000${n}`;
  let s = m.get(key);
  if (!s) {
    s = {
      procA: w.fragment(
        {
          [sc.ATTR_MESSAGING_SYSTEM]: sc.MESSAGING_SYSTEM,
          [sc.ATTR_MESSAGING_OPERATION_TYPE]: sc.MessagingOperationType.PROCESS,
          [sc.ATTR_MESSAGING_OPERATION_NAME]: 'process',
          [sc.ATTR_MESSAGING_DESTINATION_NAME]: projection,
        },
        'span',
      ),
      procB: w.fragment({ [sc.ATTR_MESSAGING_CLIENT_ID]: workerId, [sc.ATTR_PROJECTION]: projection }, 'span'),
      batchSize: w.fragment({ [sc.ATTR_BATCH_SIZE]: n }, 'span'),
      write: w.fragment({ [sc.ATTR_DB_SYSTEM_NAME]: system, [sc.ATTR_DB_OPERATION_NAME]: 'bulk', [sc.ATTR_DB_OPERATION_BATCH_SIZE]: n }, 'span'),
    };
    if (m.size >= 256) m.clear();
    m.set(key, s);
  }
  return s;
}

/** The batch's fast-path state, built at its first sampled event. */
export function fastBatch(
  exporter: EventSpanSink,
  origin: SpanOrigin,
  batchLink: SpanContext,
  b: { projection: string; workerId: string; leaseToken: string; system: string; n: number; claimStart: number; claimEnd: number },
): FastBatch {
  const w = exporter.writer;
  const s = sharedFor(w, b.projection, b.workerId, b.system, b.n);
  return {
    exporter,
    w,
    origin,
    projection: b.projection,
    claimStart: b.claimStart,
    claimEnd: b.claimEnd,
    procA: s.procA,
    procB: s.procB,
    procC: w.fragment({ [sc.ATTR_LEASE_OWNER]: b.workerId, [sc.ATTR_LEASE_TOKEN]: b.leaseToken }, 'span'),
    batchSize: s.batchSize,
    write: s.write,
    leaseToken: b.leaseToken,
    batchLink,
    batchLinkState: batchLink.traceState?.serialize(),
  };
}

/** The fast path's queue wait span of one sampled event (its ids: the event's FastSpan). */
export function encodeQueueWait(f: FastBatch, span: FastSpan, e: OutboxEvent): void {
  const w = f.w;
  w.beginEventSpan((f.queueWait ??= w.spanPrefix(sc.SpanNames.queueWait(f.projection), Kind.INTERNAL, undefined, undefined, [])), span, Role.QUEUE_WAIT, REMOTE_CHILD);
  w.times(e.readyAtMs, clampEnd(e.readyAtMs, Math.max(e.readyAtMs, e.claimedAtMs)));
  w.attr(K.queueWait, Math.max(0, e.claimedAtMs - e.readyAtMs));
  w.attr(K.queueWaitSource, e.readySource);
  w.attr(K.attempt, e.attempt);
  w.attr(K.messageId, e.id);
  w.endSpan(SpanStatusCode.UNSET, undefined);
}

export interface FinishTimes {
  writeStart: number;
  writeEnd: number;
  ackStart: number;
  ackEnd: number;
  statusCode?: number;
}

/** What the settle step decided for one event. */
export interface Settled {
  outcome: 'done' | 'retry' | 'dead' | 'lost';
  /** Rows the guarded UPDATE changed for this event: 1, or 0 when the lease was lost. */
  ackRows: 0 | 1;
  delayMs?: number;
}

/** The batch's span prefixes (name, kind, times and the attributes every event shares), each built when first needed. */
function prefixes(f: FastBatch, t: FinishTimes): FastPrefixes {
  return (f.prefixes ??= {
    claim: f.w.spanPrefix(sc.SpanNames.claim(f.projection), Kind.INTERNAL, f.claimStart, clampEnd(f.claimStart, f.claimEnd), [f.batchSize]),
    process: f.w.spanPrefix(sc.SpanNames.process(f.projection), Kind.CONSUMER, f.claimStart, clampEnd(f.claimStart, t.ackEnd), [f.procA]),
  });
}
const writePrefix = (f: FastBatch, t: FinishTimes, attrs: Fragment[]) => f.w.spanPrefix(sc.SpanNames.write(f.projection), Kind.CLIENT, t.writeStart, clampEnd(t.writeStart, t.writeEnd), attrs);
const ackPrefix = (f: FastBatch, t: FinishTimes, attrs: Fragment[]) => f.w.spanPrefix(sc.SpanNames.ack(f.projection), Kind.CLIENT, t.ackStart, clampEnd(t.ackStart, t.ackEnd), attrs);

/** Encodes one event's process span and its claim, write and ack children: the same spans the SDK path makes. */
export function encodeFinish(f: FastBatch, span: FastSpan, e: OutboxEvent, o: ItemOutcome, s: Settled, t: FinishTimes): void {
  const w = f.w;
  const c = constantsFor(w);
  const p = prefixes(f, t);
  w.beginEventSpan(p.claim, span, Role.CHILD, LOCAL_CHILD);
  w.endSpan(SpanStatusCode.UNSET, undefined);

  const status = 'statusCode' in o ? o.statusCode : undefined;
  const failed = o.kind === 'retry' || o.kind === 'fail';
  const dead = s.outcome === 'dead';
  if (o.kind === 'written' && status === undefined) {
    w.beginEventSpan((p.writeWritten ??= writePrefix(f, t, [f.write, c.written])), span, Role.CHILD, LOCAL_CHILD);
    w.endSpan(SpanStatusCode.UNSET, undefined);
  } else {
    w.beginEventSpan((p.write ??= writePrefix(f, t, [f.write])), span, Role.CHILD, LOCAL_CHILD);
    w.attr(K.writeResult, o.kind === 'written' ? 'written' : o.kind === 'stale' ? 'stale' : 'failed');
    if (status !== undefined) w.attr(K.writeStatus, status);
    if (failed) {
      w.attr(K.retryReason, o.reason);
      w.beginEvent(o.kind === 'retry' ? 'retry scheduled' : 'failed permanently', t.writeEnd);
      w.attr(K.retryReason, o.reason);
      if (s.delayMs !== undefined) w.attr(K.retryDelay, s.delayMs);
      w.attr(K.exceptionMessage, o.message);
      w.endEvent();
    }
    w.endSpan(failed && dead ? SpanStatusCode.ERROR : SpanStatusCode.UNSET, failed && dead ? o.message : undefined);
  }

  if (s.ackRows === 1 && s.outcome === 'done') {
    w.beginEventSpan((p.ackDone ??= ackPrefix(f, t, [c.ackOp, c.ackDone, c.ackDb])), span, Role.CHILD, LOCAL_CHILD);
  } else {
    w.beginEventSpan((p.ack ??= ackPrefix(f, t, [c.ackOp])), span, Role.CHILD, LOCAL_CHILD);
    w.attr(K.ackRows, s.ackRows);
    w.attr(K.outcome, s.outcome);
    w.attrs(c.ackDb);
    if (s.ackRows === 0) {
      w.beginEvent('stale ack: lease lost', t.ackEnd);
      w.attrs((f.staleEvent ??= w.fragment({ [sc.ATTR_LEASE_TOKEN]: f.leaseToken }, 'event')));
      w.endEvent();
    }
  }
  w.endSpan(SpanStatusCode.UNSET, undefined);

  // The process span, with the attributes in the order the SDK path sets them.
  w.beginEventSpan(p.process, span, Role.PROCESS, REMOTE_CHILD);
  w.attr(K.messageId, e.id);
  w.attrs(f.procB);
  w.attr(K.eventType, e.eventType);
  w.attr(K.aggregateId, e.aggregateId);
  w.attr(K.aggregateVersion, e.aggregateVersion);
  w.attr(K.attempt, e.attempt);
  w.attrs(f.procC);
  w.attr(K.reclaimed, e.reclaimed);
  w.attr(K.queueWait, Math.max(0, e.claimedAtMs - e.readyAtMs));
  w.attrs(f.batchSize);
  if (e.attributes) for (const k in e.attributes) w.attr(attrKey(k), e.attributes[k]!);
  if (e.requestId) w.attr(K.requestId, e.requestId);
  if (e.attempt > 1 && e.lastReason) w.attr(K.retryReason, e.lastReason);
  if (e.attempt > 1 && e.lastDelayMs !== null) w.attr(K.retryDelay, e.lastDelayMs);
  if (e.previousOwner) w.attr(K.previousOwner, e.previousOwner);
  if (e.previousToken) w.attr(K.previousToken, e.previousToken);
  if (e.reclaimed && e.previousLeaseMs !== null) w.attr(K.leaseAge, e.previousLeaseMs);
  if (e.lastReason === 'replayed') w.attr(K.replayed, true);
  w.attr(K.outcome, s.outcome);
  w.attr(K.ackRows, s.ackRows);
  if (s.delayMs !== undefined) w.attr(K.nextDelay, s.delayMs);
  if (failed) w.attr(K.errorType, o.reason);
  if (span.renewals) {
    for (const [at, expires] of span.renewals) {
      w.beginEvent('lease renewed', at);
      w.attr(K.leaseExpires, expires);
      w.endEvent();
    }
  }
  const bl = f.batchLink;
  w.beginLink(bl.traceId, bl.spanId, f.batchLinkState, spanFlags(bl.traceFlags, bl.isRemote));
  w.attrs(c.linkBatch);
  w.endLink();
  const prev = span.prev;
  if (prev) {
    w.beginLink(prev.traceId, prev.spanId, undefined, spanFlags(prev.traceFlags, prev.isRemote));
    w.attrs(c.linkPrev);
    w.endLink();
  }
  if (dead) w.endSpan(SpanStatusCode.ERROR, failed ? o.message : 'dead-lettered');
  else w.endSpan(SpanStatusCode.UNSET, undefined);
}
