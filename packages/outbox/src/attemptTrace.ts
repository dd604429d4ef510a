import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, context, createTraceState, diag, trace, type Context, type Link, type Span, type SpanContext } from '@opentelemetry/api';
import { formatTraceparent, parseTraceparent } from './tracing/carrier.js';
import type { EventSpanSink } from './tracing/spanEncoder.js';
import * as sc from './tracing/semconv.js';
import { suppressedContext, tracer } from './tracing/spans.js';
import { resetTracingProbe, sdkOrigin, tracingActive, unsampledParentsStayUnsampled } from './tracing/probe.js';
import { hasWords, parseStored, storedSampling } from './tracing/storedParent.js';
import { FastSpan, type FastBatch } from './tracing/fastParts.js';
import { encodeFinish, encodeQueueWait, fastBatch, type FinishTimes, type Settled } from './tracing/fastEncode.js';
import type { ItemOutcome } from './outcome.js';
import type { OutboxEvent } from './types.js';

export { resetTracingProbe, tracingActive };
export type { FinishTimes, Settled };

/** Epoch milliseconds from the monotonic clock, for spans that are ended after the fact. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

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
  /** The context the batch was claimed in. */
  private readonly outer: Context;

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
    this.outer = context.active();
    const active = tracingActive();
    // Sized once; an event without a span keeps its hole (read back as undefined).
    this.processSpans = new Array<Span | FastSpan | undefined>(events.length);
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
    // The sampler declined the batch's own trace (at a ratio, most batches): with a parent-based
    // sampler nothing under it is recorded either, so the claim span is not made and the write and
    // settle statements run with tracing suppressed, as a quiet batch's do (the pg
    // instrumentation then skips them at its first check instead of building spans that are not
    // recorded; decision 0023).
    const batchRecorded = batchSpan.isRecording() || !skipUnsampled;
    this.batchContext = batchRecorded ? trace.setSpan(context.active(), batchSpan) : suppressedContext(context.active());
    if (batchRecorded) {
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
    }
    const batchLink: Link = { context: batchSpan.spanContext(), attributes: { 'loomtrace.link': 'batch' } };
    const processName = sc.SpanNames.process(projection);
    const queueWaitName = sc.SpanNames.queueWait(projection);
    const from = exporter && skipUnsampled ? sdkOrigin() : undefined;
    const fastOn = exporter !== undefined && from !== undefined;
    /** Events whose queue wait the fast path encodes. */
    let queueWaits: number[] | undefined;
    for (let i = 0; i < events.length; i++) {
      // The cheapest path: the producer sampled this change out and the sampler follows it.
      if (sampling !== undefined && sampling[i] === 0) continue;
      const e = events[i]!;
      const parentSc: SpanContext | undefined = parseStored(e.traceparent);
      // A sampled producer and a parent-based sampler: the spans are sampled, encode them
      // directly. An event without a stored context needs the sampler's root decision: SDK path.
      if (fastOn && parentSc !== undefined && hasWords(parentSc)) {
        this.fast ??= fastBatch(exporter, from, batchSpan.spanContext(), { projection, workerId, leaseToken, system, n: events.length, claimStart, claimEnd });
        this.processSpans[i] = new FastSpan(parentSc, e.tracestate ? createTraceState(e.tracestate).serialize() : undefined, e.lastAttemptSpan ? parseStored(e.lastAttemptSpan) : undefined);
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
      if (!span.isRecording()) continue;
      if (unsampledParent) span.setAttributes(this.processAttributes(e));
      this.processSpans[i] = span;
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
          for (const i of waits) encodeQueueWait(f, this.processSpans[i] as FastSpan, events[i]!);
        } catch (err) {
          diag.error(`loomtrace: could not encode a batch's spans: ${err instanceof Error ? err.message : String(err)}`);
        }
        f.exporter.submit(f.origin);
      });
    }
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
      // The context the batch started in (the batch's own may have tracing suppressed, see the constructor).
      const ctx = trace.setSpan(this.outer, span);
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
          for (const i of events) encodeFinish(f, this.processSpans[i] as FastSpan, this.events[i]!, outcomes[i]!, settled[i]!, t);
        } catch (err) {
          diag.error(`loomtrace: could not encode a batch's spans: ${err instanceof Error ? err.message : String(err)}`);
        }
        f.exporter.submit(f.origin);
      });
    }
    this.batchSpan?.end(t.ackEnd);
  }
}
