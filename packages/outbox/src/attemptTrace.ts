import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, context, createTraceState, diag, trace, type Context, type Link, type Span, type SpanContext } from '@opentelemetry/api';
import { formatTraceparent, parseTraceparent } from './tracing/carrier.js';
import { Kind, Role, clampEnd, spanFlags, type EventSpanSink, type SpanOrigin } from './tracing/spanEncoder.js';
import * as sc from './tracing/semconv.js';
import { suppressedContext, tracer } from './tracing/spans.js';
import { resetTracingProbe, sdkOrigin, tracingActive, unsampledParentsStayUnsampled } from './tracing/probe.js';
import { hasWords, parseStored, storedSampling } from './tracing/storedParent.js';
import { FastSpan, K, LOCAL_CHILD, REMOTE_CHILD, attrKey, constantsFor, type FastBatch } from './tracing/fastParts.js';
import type { ItemOutcome } from './outcome.js';
import type { OutboxEvent } from './types.js';

export { resetTracingProbe, tracingActive };

/** Epoch milliseconds from the monotonic clock, for spans that are ended after the fact. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** What the settle step decided for one event. */
export interface Settled {
  outcome: 'done' | 'retry' | 'dead' | 'lost';
  /** Rows the guarded UPDATE changed for this event: 1, or 0 when the lease was lost. */
  ackRows: 0 | 1;
  delayMs?: number;
}




/** Inputs of each batch's trace, for a test that traces the same batch on both paths. */
export interface BatchTraceObserver {
  created(t: BatchTrace, args: ConstructorParameters<typeof BatchTrace>): void;
  renewed(t: BatchTrace, atMs: number, leaseMs: number, kept: ReadonlySet<string>): void;
  finished(t: BatchTrace, outcomes: readonly ItemOutcome[], settled: readonly Settled[], times: FinishTimes): void;
}
let observer: BatchTraceObserver | undefined;
/** Test seam (test/event-spans.test.ts): see every BatchTrace's inputs. */
export function observeBatchTraces(o: BatchTraceObserver | undefined): void {
  observer = o;
}

export interface FinishTimes {
  writeStart: number;
  writeEnd: number;
  ackStart: number;
  ackEnd: number;
  statusCode?: number;
}

/**
 * The spans of one claimed batch. Batch-wide work (one claim, one bulk write, one ack
 * statement) is one `batch <projection>` trace; each event's own trace gets a
 * `process <projection>` CONSUMER span whose parent is the context stored in its row, with
 * `claim`, `write` and `ack` children carrying the real durations of the batch operations
 * and this event's part in them, plus a `queue wait` span from commit to claim.
 */
export class BatchTrace {
  /** False with tracing off, and for a quiet batch (no event of it is traced: see the constructor). */
  readonly enabled: boolean;
  readonly batchContext: Context;
  private readonly batchSpan: Span | undefined;
  private readonly processSpans: (Span | FastSpan | undefined)[];
  /**
   * The fast path's batch state (the per-event spans bypass the SDK: an OTLP/HTTP exporter is
   * registered and the sampler is parent-based), built at the first sampled event.
   */
  private fast: FastBatch | undefined;

  constructor(
    private readonly projection: string,
    private readonly workerId: string,
    private readonly leaseToken: string,
    private readonly events: readonly OutboxEvent[],
    private readonly claimStart: number,
    private readonly claimEnd: number,
    private readonly system: string,
    /** The fast path's encoder and exporter (the worker's `eventSpans` option); undefined: the SDK path only. */
    exporter?: EventSpanSink,
  ) {
    observer?.created(this, [projection, workerId, leaseToken, events, claimStart, claimEnd, system]);
    const active = tracingActive();
    this.processSpans = [];
    const skipUnsampled = active && unsampledParentsStayUnsampled();
    // Each stored context's sampled flag, read without parsing it (decision 0018): an event its
    // producer sampled out costs this check and nothing else.
    let sampling: Int8Array | undefined;
    let quiet = false;
    if (skipUnsampled) {
      sampling = new Int8Array(events.length);
      quiet = true;
      for (let i = 0; i < events.length; i++) if ((sampling[i] = storedSampling(events[i]!.traceparent)) !== 0) quiet = false;
    }
    // A quiet batch: every event's producer sampled it out and the sampler follows the parent,
    // so none of its events gets a span. Nothing of it is traced: no batch trace either (it
    // would be linked from no event), and its write and settle statements run with tracing
    // suppressed (the pg instrumentation and the sink's own make no span).
    this.enabled = active && !quiet;
    if (!this.enabled) {
      this.batchContext = quiet ? suppressedContext(context.active()) : context.active();
      this.batchSpan = undefined;
      this.fast = undefined;
      return;
    }
    const t = tracer();
    const batchSpan = t.startSpan(
      sc.SpanNames.batch(projection),
      {
        kind: SpanKind.CONSUMER,
        root: true,
        startTime: claimStart,
        attributes: {
          [sc.ATTR_MESSAGING_SYSTEM]: sc.MESSAGING_SYSTEM,
          [sc.ATTR_MESSAGING_OPERATION_TYPE]: sc.MessagingOperationType.PROCESS,
          [sc.ATTR_MESSAGING_OPERATION_NAME]: 'batch',
          [sc.ATTR_MESSAGING_DESTINATION_NAME]: projection,
          [sc.ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: events.length,
          [sc.ATTR_MESSAGING_CLIENT_ID]: workerId,
          [sc.ATTR_PROJECTION]: projection,
          [sc.ATTR_LEASE_TOKEN]: leaseToken,
          [sc.ATTR_LEASE_OWNER]: workerId,
        },
      },
      context.active(),
    );
    this.batchSpan = batchSpan;
    this.batchContext = trace.setSpan(context.active(), batchSpan);
    const claimSpan = t.startSpan(
      sc.SpanNames.claim(projection),
      {
        kind: SpanKind.CLIENT,
        startTime: claimStart,
        attributes: {
          [sc.ATTR_MESSAGING_OPERATION_TYPE]: sc.MessagingOperationType.RECEIVE,
          [sc.ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: events.length,
          [sc.ATTR_DB_SYSTEM_NAME]: 'postgresql',
        },
      },
      this.batchContext,
    );
    claimSpan.end(claimEnd);
    const batchLink: Link = { context: batchSpan.spanContext(), attributes: { 'loomtrace.link': 'batch' } };
    const processName = sc.SpanNames.process(projection);
    const queueWaitName = sc.SpanNames.queueWait(projection);
    const from = exporter && skipUnsampled ? sdkOrigin() : undefined;
    const fastOn = exporter !== undefined && from !== undefined;
    /** Events whose queue wait the fast path encodes. */
    let queueWaits: number[] | undefined;
    for (let i = 0; i < events.length; i++) {
      // The cheapest path: the producer sampled this change out and the sampler follows it.
      if (sampling !== undefined && sampling[i] === 0) {
        this.processSpans.push(undefined);
        continue;
      }
      const e = events[i]!;
      const parentSc: SpanContext | undefined = parseStored(e.traceparent);
      // A sampled producer and a parent-based sampler: the spans are sampled, encode them
      // directly. An event without a stored context needs the sampler's root decision: SDK path.
      if (fastOn && parentSc !== undefined && hasWords(parentSc)) {
        this.fast ??= this.fastBatch(exporter, from, batchSpan.spanContext());
        this.processSpans.push(new FastSpan(parentSc, e.tracestate ? createTraceState(e.tracestate).serialize() : undefined, e.lastAttemptSpan ? parseStored(e.lastAttemptSpan) : undefined));
        (queueWaits ??= []).push(i);
        continue;
      }
      const parent = parentSc ? trace.setSpanContext(ROOT_CONTEXT, e.tracestate ? { ...parentSc, traceState: createTraceState(e.tracestate) } : parentSc) : ROOT_CONTEXT;
      const links: Link[] = [batchLink];
      const prev = parseTraceparent(e.lastAttemptSpan);
      if (prev) links.push({ context: prev, attributes: { 'loomtrace.link': 'previous_attempt' } });
      // The producer did not sample this change, and the sampler may still record it (it is not
      // parent-based): do not build attributes for a span that is most likely not recorded;
      // one that is gets them right after the start.
      const unsampledParent = parentSc !== undefined && (parentSc.traceFlags & TraceFlags.SAMPLED) === 0;
      const span = t.startSpan(
        processName,
        unsampledParent
          ? { kind: SpanKind.CONSUMER, startTime: claimStart, links }
          : { kind: SpanKind.CONSUMER, startTime: claimStart, links, attributes: this.processAttributes(e) },
        parent,
      );
      if (!span.isRecording()) {
        this.processSpans.push(undefined);
        continue;
      }
      if (unsampledParent) span.setAttributes(this.processAttributes(e));
      this.processSpans.push(span);
      // The queue wait: its own span, from commit (or the scheduled retry) to the claim, on the database clock.
      t.startSpan(
        queueWaitName,
        {
          kind: SpanKind.INTERNAL,
          startTime: e.readyAtMs,
          attributes: {
            [sc.ATTR_QUEUE_WAIT_MS]: Math.max(0, e.claimedAtMs - e.readyAtMs),
            [sc.ATTR_QUEUE_WAIT_SOURCE]: e.readySource,
            [sc.ATTR_ATTEMPT]: e.attempt,
            [sc.ATTR_MESSAGING_MESSAGE_ID]: e.id,
          },
        },
        parent,
      ).end(Math.max(e.readyAtMs, e.claimedAtMs));
    }
    // The queue waits are complete: export them now, as the SDK path does, but encoded on the
    // next turn of the event loop, while the batch's write (or ack) is in flight (decision 0018).
    const f = this.fast;
    if (f && queueWaits) {
      const waits = queueWaits;
      setImmediate(() => {
        try {
          for (const i of waits) this.fastQueueWait(f, this.processSpans[i] as FastSpan, events[i]!);
        } catch (err) {
          diag.error(`loomtrace: could not encode a batch's spans: ${err instanceof Error ? err.message : String(err)}`);
        }
        f.exporter.submit(f.origin);
      });
    }
  }

  private fastBatch(exporter: EventSpanSink, from: SpanOrigin, batchLink: SpanContext): FastBatch {
    const w = exporter.writer;
    const n = this.events.length;
    return {
      exporter,
      w,
      origin: from,
      procA: w.fragment(
        {
          [sc.ATTR_MESSAGING_SYSTEM]: sc.MESSAGING_SYSTEM,
          [sc.ATTR_MESSAGING_OPERATION_TYPE]: sc.MessagingOperationType.PROCESS,
          [sc.ATTR_MESSAGING_OPERATION_NAME]: 'process',
          [sc.ATTR_MESSAGING_DESTINATION_NAME]: this.projection,
        },
        'span',
      ),
      procB: w.fragment({ [sc.ATTR_MESSAGING_CLIENT_ID]: this.workerId, [sc.ATTR_PROJECTION]: this.projection }, 'span'),
      procC: w.fragment({ [sc.ATTR_LEASE_OWNER]: this.workerId, [sc.ATTR_LEASE_TOKEN]: this.leaseToken }, 'span'),
      batchSize: w.fragment({ [sc.ATTR_BATCH_SIZE]: n }, 'span'),
      write: w.fragment({ [sc.ATTR_DB_SYSTEM_NAME]: this.system, [sc.ATTR_DB_OPERATION_NAME]: 'bulk', [sc.ATTR_DB_OPERATION_BATCH_SIZE]: n }, 'span'),
      staleEvent: w.fragment({ [sc.ATTR_LEASE_TOKEN]: this.leaseToken }, 'event'),
      batchLink,
    };
  }

  /** The fast path's queue wait span of one sampled event (its ids: the event's FastSpan). */
  private fastQueueWait(f: FastBatch, span: FastSpan, e: OutboxEvent): void {
    const w = f.w;
    w.beginEventSpan((f.queueWait ??= w.spanPrefix(this.queueWaitName, Kind.INTERNAL, undefined, undefined, [])), span, Role.QUEUE_WAIT, REMOTE_CHILD);
    w.times(e.readyAtMs, clampEnd(e.readyAtMs, Math.max(e.readyAtMs, e.claimedAtMs)));
    w.attr(K.queueWait, Math.max(0, e.claimedAtMs - e.readyAtMs));
    w.attr(K.queueWaitSource, e.readySource);
    w.attr(K.attempt, e.attempt);
    w.attr(K.messageId, e.id);
    w.endSpan(SpanStatusCode.UNSET, undefined);
  }

  private get queueWaitName(): string {
    return sc.SpanNames.queueWait(this.projection);
  }

  /** The batch's span prefixes: name, kind, times and the attributes every event shares. */
  private fastPrefixes(f: FastBatch, t: FinishTimes): NonNullable<FastBatch['prefixes']> {
    const w = f.w;
    const c = constantsFor(w);
    const writeName = sc.SpanNames.write(this.projection);
    const ackName = sc.SpanNames.ack(this.projection);
    const writeEnd = clampEnd(t.writeStart, t.writeEnd);
    const ackEnd = clampEnd(t.ackStart, t.ackEnd);
    return {
      claim: w.spanPrefix(sc.SpanNames.claim(this.projection), Kind.INTERNAL, this.claimStart, clampEnd(this.claimStart, this.claimEnd), [f.batchSize]),
      writeWritten: w.spanPrefix(writeName, Kind.CLIENT, t.writeStart, writeEnd, [f.write, c.written]),
      write: w.spanPrefix(writeName, Kind.CLIENT, t.writeStart, writeEnd, [f.write]),
      ackDone: w.spanPrefix(ackName, Kind.CLIENT, t.ackStart, ackEnd, [c.ackOp, c.ackDone, c.ackDb]),
      ack: w.spanPrefix(ackName, Kind.CLIENT, t.ackStart, ackEnd, [c.ackOp]),
      process: w.spanPrefix(sc.SpanNames.process(this.projection), Kind.CONSUMER, this.claimStart, clampEnd(this.claimStart, t.ackEnd), [f.procA]),
    };
  }

  /** Encodes one event's process span and its claim, write and ack children: the same spans the SDK path makes. */
  private fastFinish(f: FastBatch, span: FastSpan, e: OutboxEvent, o: ItemOutcome, s: Settled, t: FinishTimes): void {
    const w = f.w;
    const c = constantsFor(w);
    const p = (f.prefixes ??= this.fastPrefixes(f, t));
    w.beginEventSpan(p.claim, span, Role.CHILD, LOCAL_CHILD);
    w.endSpan(SpanStatusCode.UNSET, undefined);

    const status = 'statusCode' in o ? o.statusCode : undefined;
    const failed = o.kind === 'retry' || o.kind === 'fail';
    const dead = s.outcome === 'dead';
    if (o.kind === 'written' && status === undefined) {
      w.beginEventSpan(p.writeWritten, span, Role.CHILD, LOCAL_CHILD);
      w.endSpan(SpanStatusCode.UNSET, undefined);
    } else {
      w.beginEventSpan(p.write, span, Role.CHILD, LOCAL_CHILD);
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
      w.beginEventSpan(p.ackDone, span, Role.CHILD, LOCAL_CHILD);
    } else {
      w.beginEventSpan(p.ack, span, Role.CHILD, LOCAL_CHILD);
      w.attr(K.ackRows, s.ackRows);
      w.attr(K.outcome, s.outcome);
      w.attrs(c.ackDb);
      if (s.ackRows === 0) {
        w.beginEvent('stale ack: lease lost', t.ackEnd);
        w.attrs(f.staleEvent);
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
    w.beginLink(bl.traceId, bl.spanId, bl.traceState?.serialize(), spanFlags(bl.traceFlags, bl.isRemote));
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

  private processAttributes(e: OutboxEvent) {
    const a: Record<string, string | number | boolean> = {
      [sc.ATTR_MESSAGING_SYSTEM]: sc.MESSAGING_SYSTEM,
      [sc.ATTR_MESSAGING_OPERATION_TYPE]: sc.MessagingOperationType.PROCESS,
      [sc.ATTR_MESSAGING_OPERATION_NAME]: 'process',
      [sc.ATTR_MESSAGING_DESTINATION_NAME]: this.projection,
      [sc.ATTR_MESSAGING_MESSAGE_ID]: e.id,
      [sc.ATTR_MESSAGING_CLIENT_ID]: this.workerId,
      [sc.ATTR_PROJECTION]: this.projection,
      [sc.ATTR_EVENT_TYPE]: e.eventType,
      [sc.ATTR_AGGREGATE_ID]: e.aggregateId,
      [sc.ATTR_AGGREGATE_VERSION]: e.aggregateVersion,
      [sc.ATTR_ATTEMPT]: e.attempt,
      [sc.ATTR_LEASE_OWNER]: this.workerId,
      [sc.ATTR_LEASE_TOKEN]: this.leaseToken,
      [sc.ATTR_RECLAIMED]: e.reclaimed,
      [sc.ATTR_QUEUE_WAIT_MS]: Math.max(0, e.claimedAtMs - e.readyAtMs),
      [sc.ATTR_BATCH_SIZE]: this.events.length,
    };
    if (e.attributes) for (const k in e.attributes) a[k] = e.attributes[k]!;
    if (e.requestId) a[sc.ATTR_REQUEST_ID] = e.requestId;
    if (e.attempt > 1 && e.lastReason) a[sc.ATTR_RETRY_REASON] = e.lastReason;
    if (e.attempt > 1 && e.lastDelayMs !== null) a[sc.ATTR_RETRY_DELAY_MS] = e.lastDelayMs;
    if (e.previousOwner) a[sc.ATTR_PREVIOUS_OWNER] = e.previousOwner;
    if (e.previousToken) a[sc.ATTR_PREVIOUS_TOKEN] = e.previousToken;
    if (e.reclaimed && e.previousLeaseMs !== null) a[sc.ATTR_LEASE_AGE_MS] = e.previousLeaseMs;
    // Failure semantics (issue 3): an operator replayed this event out of the dead letter.
    if (e.lastReason === 'replayed') a[sc.ATTR_REPLAYED] = true;
    return a;
  }

  /**
   * The heartbeat renewed the batch's lease: a `lease renewed` event on each event's process
   * span, so the trace shows a long attempt kept its lease (and until when).
   */
  renewed(atMs: number, leaseMs: number, kept: ReadonlySet<string>): void {
    observer?.renewed(this, atMs, leaseMs, kept);
    if (!this.enabled) return;
    for (let i = 0; i < this.events.length; i++) {
      const span = this.processSpans[i];
      if (span instanceof FastSpan) {
        if (!span.ended && kept.has(this.events[i]!.id)) (span.renewals ??= []).push([atMs, new Date(atMs + leaseMs).toISOString()]);
        continue;
      }
      if (!span || !span.isRecording() || !kept.has(this.events[i]!.id)) continue;
      span.addEvent('lease renewed', { [sc.ATTR_LEASE_EXPIRES_AT]: new Date(atMs + leaseMs).toISOString() }, atMs);
    }
  }

  /** traceparent of event i's process span, stored on failure so the next attempt links to it. */
  spanRef(i: number): string | null {
    const span = this.processSpans[i];
    if (span instanceof FastSpan) return `00-${span.traceId}-${span.spanId}-01`;
    return span ? formatTraceparent(span.spanContext()) : null;
  }

  /** Ends every span with the facts of the write and the settle. */
  finish(
    outcomes: readonly ItemOutcome[],
    settled: readonly Settled[],
    t: FinishTimes,
  ): void {
    observer?.finished(this, outcomes, settled, t);
    if (!this.enabled) return;
    const tr = tracer();
    const claimName = sc.SpanNames.claim(this.projection);
    const writeName = sc.SpanNames.write(this.projection);
    const ackName = sc.SpanNames.ack(this.projection);
    /** Events whose spans the fast path encodes, after the worker has gone on (see below). */
    let encode: number[] | undefined;
    for (let i = 0; i < this.events.length; i++) {
      const span = this.processSpans[i];
      if (!span) continue;
      const o = outcomes[i]!;
      const s = settled[i]!;
      if (span instanceof FastSpan) {
        if (!span.ended && this.fast) {
          span.ended = true;
          (encode ??= []).push(i);
        }
        continue;
      }
      const ctx = trace.setSpan(context.active(), span);
      tr.startSpan(claimName, { startTime: this.claimStart, attributes: { [sc.ATTR_BATCH_SIZE]: this.events.length } }, ctx).end(this.claimEnd);
      const write = tr.startSpan(
        writeName,
        {
          kind: SpanKind.CLIENT,
          startTime: t.writeStart,
          attributes: {
            [sc.ATTR_DB_SYSTEM_NAME]: this.system,
            [sc.ATTR_DB_OPERATION_NAME]: 'bulk',
            [sc.ATTR_DB_OPERATION_BATCH_SIZE]: this.events.length,
            [sc.ATTR_WRITE_RESULT]: o.kind === 'written' ? 'written' : o.kind === 'stale' ? 'stale' : 'failed',
          },
        },
        ctx,
      );
      const status = 'statusCode' in o ? o.statusCode : undefined;
      if (status !== undefined) write.setAttribute(sc.ATTR_WRITE_STATUS_CODE, status);
      if (o.kind === 'retry' || o.kind === 'fail') {
        write.setAttribute(sc.ATTR_RETRY_REASON, o.reason);
        write.addEvent(o.kind === 'retry' ? 'retry scheduled' : 'failed permanently', {
          [sc.ATTR_RETRY_REASON]: o.reason,
          ...(s.delayMs !== undefined ? { [sc.ATTR_RETRY_DELAY_MS]: s.delayMs } : {}),
          'exception.message': o.message,
        }, t.writeEnd);
        // Only a final failure marks the trace failed; a retry that later succeeds does not.
        if (s.outcome === 'dead') write.setStatus({ code: SpanStatusCode.ERROR, message: o.message });
      }
      write.end(t.writeEnd);
      const ack = tr.startSpan(
        ackName,
        {
          kind: SpanKind.CLIENT,
          startTime: t.ackStart,
          attributes: {
            [sc.ATTR_MESSAGING_OPERATION_TYPE]: sc.MessagingOperationType.SETTLE,
            [sc.ATTR_ACK_ROWS_AFFECTED]: s.ackRows,
            [sc.ATTR_OUTCOME]: s.outcome,
            [sc.ATTR_DB_SYSTEM_NAME]: 'postgresql',
          },
        },
        ctx,
      );
      if (s.ackRows === 0) ack.addEvent('stale ack: lease lost', { [sc.ATTR_LEASE_TOKEN]: this.leaseToken }, t.ackEnd);
      ack.end(t.ackEnd);
      span.setAttribute(sc.ATTR_OUTCOME, s.outcome);
      span.setAttribute(sc.ATTR_ACK_ROWS_AFFECTED, s.ackRows);
      if (s.delayMs !== undefined) span.setAttribute('loomtrace.next.delay_ms', s.delayMs);
      if (o.kind === 'retry' || o.kind === 'fail') span.setAttribute(sc.ATTR_ERROR_TYPE, o.reason);
      if (s.outcome === 'dead') span.setStatus({ code: SpanStatusCode.ERROR, message: o.kind === 'fail' || o.kind === 'retry' ? o.message : 'dead-lettered' });
      span.end(t.ackEnd);
    }
    // The fast path's spans are encoded on the next turn of the event loop: everything they
    // carry is known now, and the worker's lane sends its next claim first (the encoding of a
    // full batch takes milliseconds, and would otherwise sit between one batch and the next).
    const f = this.fast;
    if (f && encode) {
      const events = encode;
      setImmediate(() => {
        try {
          for (const i of events) this.fastFinish(f, this.processSpans[i] as FastSpan, this.events[i]!, outcomes[i]!, settled[i]!, t);
        } catch (err) {
          diag.error(`loomtrace: could not encode a batch's spans: ${err instanceof Error ? err.message : String(err)}`);
        }
        f.exporter.submit(f.origin);
      });
    }
    this.batchSpan?.end(t.ackEnd);
  }
}
