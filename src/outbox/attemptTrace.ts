import { randomBytes } from 'node:crypto';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags, context, createTraceState, trace, type Context, type Link, type Span } from '@opentelemetry/api';
import { formatTraceparent, parseTraceparent } from '../tracing/carrier.js';
import * as sc from '../tracing/semconv.js';
import { tracer } from '../tracing/spans.js';
import type { ItemOutcome } from './outcome.js';
import type { OutboxEvent } from './types.js';

/** Epoch milliseconds from the monotonic clock, for spans that are ended after the fact. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** What the settle step decided for one event. */
export interface Settled {
  outcome: 'done' | 'retry' | 'dead' | 'lost';
  /** Rows the guarded UPDATE changed for this event: 1, or 0 when the lease was lost. */
  ackRows: 0 | 1;
  delayMs?: number;
}

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
function unsampledParentsStayUnsampled(): boolean {
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

/** For tests that install an SDK after a worker ran without one. */
export function resetTracingProbe(): void {
  sdkActive = undefined;
  unsampledStays = undefined;
}

/**
 * The spans of one claimed batch. Batch-wide work (one claim, one bulk write, one ack
 * statement) is one `batch <projection>` trace; each event's own trace gets a
 * `process <projection>` CONSUMER span whose parent is the context stored in its row, with
 * `claim`, `write` and `ack` children carrying the real durations of the batch operations
 * and this event's part in them, plus a `queue wait` span from commit to claim.
 */
export class BatchTrace {
  readonly enabled: boolean;
  readonly batchContext: Context;
  private readonly batchSpan: Span | undefined;
  private readonly processSpans: (Span | undefined)[];

  constructor(
    private readonly projection: string,
    private readonly workerId: string,
    private readonly leaseToken: string,
    private readonly events: readonly OutboxEvent[],
    private readonly claimStart: number,
    private readonly claimEnd: number,
    private readonly system: string,
  ) {
    this.enabled = tracingActive();
    this.processSpans = [];
    if (!this.enabled) {
      this.batchContext = context.active();
      this.batchSpan = undefined;
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
    const skipUnsampled = unsampledParentsStayUnsampled();
    for (const e of events) {
      const parentSc = parseTraceparent(e.traceparent);
      // The cheapest path: the producer sampled this change out and the sampler follows it.
      if (skipUnsampled && parentSc !== undefined && (parentSc.traceFlags & TraceFlags.SAMPLED) === 0) {
        this.processSpans.push(undefined);
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
    if (e.aggregateType === 'block') a[sc.ATTR_BLOCK_ID] = e.aggregateId;
    if (e.libraryId) a[sc.ATTR_LIBRARY_ID] = e.libraryId;
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
    if (!this.enabled) return;
    for (let i = 0; i < this.events.length; i++) {
      const span = this.processSpans[i];
      if (!span || !span.isRecording() || !kept.has(this.events[i]!.id)) continue;
      span.addEvent('lease renewed', { [sc.ATTR_LEASE_EXPIRES_AT]: new Date(atMs + leaseMs).toISOString() }, atMs);
    }
  }

  /** traceparent of event i's process span, stored on failure so the next attempt links to it. */
  spanRef(i: number): string | null {
    const span = this.processSpans[i];
    return span ? formatTraceparent(span.spanContext()) : null;
  }

  /** Ends every span with the facts of the write and the settle. */
  finish(
    outcomes: readonly ItemOutcome[],
    settled: readonly Settled[],
    t: { writeStart: number; writeEnd: number; ackStart: number; ackEnd: number; statusCode?: number },
  ): void {
    if (!this.enabled) return;
    const tr = tracer();
    const claimName = sc.SpanNames.claim(this.projection);
    const writeName = sc.SpanNames.write(this.projection);
    const ackName = sc.SpanNames.ack(this.projection);
    for (let i = 0; i < this.events.length; i++) {
      const span = this.processSpans[i];
      if (!span) continue;
      const o = outcomes[i]!;
      const s = settled[i]!;
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
    this.batchSpan?.end(t.ackEnd);
  }
}
