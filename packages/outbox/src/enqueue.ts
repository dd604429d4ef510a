import { SpanKind, type Attributes } from '@opentelemetry/api';
import { injectContext, storedContextOf, type StoredContext } from './tracing/carrier.js';
import * as sc from './tracing/semconv.js';
import { recordFailure, tracer, withSpan } from './tracing/spans.js';
import { insertEvent } from './sql/insertEvent.js';
import { insertEvents } from './sql/insertEvents.js';
import type { EnqueueClient, EnqueueInput } from './types.js';
import { checkedAttributes, checkedProjection } from './attributes.js';

/**
 * Adds an event to the outbox inside the caller's transaction (`db` must be the client that
 * holds it: a node-postgres client after `begin`, or an adapter's, e.g. `fromKysely(trx)`).
 * A PRODUCER span `send <projection>` wraps the insert, and its context is stored in the row:
 * the worker's process span will be its child, in the same trace.
 *
 * Rolling the transaction back removes the event with the change: that is the point.
 */
export async function enqueue(db: EnqueueClient, event: EnqueueInput): Promise<string> {
  checkedProjection(event.projection);
  return withSpan(
    sc.SpanNames.send(event.projection),
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        ...sendAttributes(event),
        [sc.ATTR_AGGREGATE_ID]: event.aggregateId,
        [sc.ATTR_AGGREGATE_VERSION]: event.aggregateVersion,
        ...checkedAttributes(event.attributes),
      },
    },
    async (span) => {
      const id = await insertEvent(db, event, storedContextOf(span.spanContext()));
      span.setAttribute(sc.ATTR_MESSAGING_MESSAGE_ID, id);
      return id;
    },
  );
}

/**
 * Adds many events with one statement. Each row carries the active context (no span per
 * event): for bulk producers and benchmarks, where one span for the batch is enough.
 */
export async function enqueueMany(db: EnqueueClient, events: readonly EnqueueInput[]): Promise<string[]> {
  for (const e of events) {
    checkedProjection(e.projection);
    checkedAttributes(e.attributes);
  }
  const ctx = injectContext();
  return insertEvents(db, events, events.map(() => ctx));
}

function sendAttributes(event: { projection: string; eventType: string; requestId?: string | null | undefined }): Attributes {
  const a: Attributes = {
    [sc.ATTR_MESSAGING_SYSTEM]: sc.MESSAGING_SYSTEM,
    [sc.ATTR_MESSAGING_OPERATION_TYPE]: sc.MessagingOperationType.SEND,
    [sc.ATTR_MESSAGING_OPERATION_NAME]: 'send',
    [sc.ATTR_MESSAGING_DESTINATION_NAME]: event.projection,
    [sc.ATTR_PROJECTION]: event.projection,
    [sc.ATTR_EVENT_TYPE]: event.eventType,
  };
  if (event.requestId) a[sc.ATTR_REQUEST_ID] = event.requestId;
  return a;
}

/** What the producer knows of an event before its statement runs. */
export interface StatementEventInput {
  projection: string;
  eventType: string;
  requestId?: string | null;
}

/** What the statement inserted: the event's id, its aggregate and version, and its attributes. */
export interface SentEvent {
  id: string;
  aggregateId: string;
  aggregateVersion: number;
  /** The attributes stored with the event, as stored (`loomtrace.enqueue` checks them as `enqueue` does). */
  attributes?: Readonly<Record<string, string | number | boolean>> | null;
}

/**
 * For an event inserted by the caller's own statement, with the change it records: one
 * statement, one round trip, its own transaction (for example a data-modifying CTE that updates
 * the row and selects `loomtrace.enqueue(...)` from what it returned; decision record 0012).
 *
 * Opens the PRODUCER span `send <projection>` that `enqueue` opens, hands `run` its W3C context
 * to store in the row, and once `run` has answered, `sent` says which event it inserted: the span
 * then gets the event's id, aggregate, version and attributes, and ends. The statement runs in
 * the caller's context, so its database span is the producer span's sibling, not its child.
 *
 * When `sent` gives undefined (the change did not apply: nothing was inserted) the span is left
 * unended, and so never exported: no send span for an event that does not exist (OpenTelemetry
 * exports ended spans only; nothing holds a started span). A failed statement ends the span with
 * the error, as `enqueue` does.
 */
export async function sendInStatement<T>(
  event: StatementEventInput,
  run: (stored: StoredContext) => Promise<T>,
  sent: (result: T) => SentEvent | undefined,
): Promise<T> {
  checkedProjection(event.projection);
  const span = tracer().startSpan(sc.SpanNames.send(event.projection), { kind: SpanKind.PRODUCER, attributes: sendAttributes(event) });
  let result: T;
  try {
    // The span's own context, as injectContext would read it back from a context holding the span.
    result = await run(storedContextOf(span.spanContext()));
  } catch (err) {
    recordFailure(span, err);
    span.end();
    throw err;
  }
  const ev = sent(result);
  if (ev && span.isRecording()) {
    span.setAttribute(sc.ATTR_MESSAGING_MESSAGE_ID, ev.id);
    span.setAttribute(sc.ATTR_AGGREGATE_ID, ev.aggregateId);
    span.setAttribute(sc.ATTR_AGGREGATE_VERSION, ev.aggregateVersion);
    if (ev.attributes) span.setAttributes(ev.attributes);
  }
  if (ev) span.end();
  return result;
}
