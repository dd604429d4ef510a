import { SpanKind, context, trace } from '@opentelemetry/api';
import { injectContext } from './tracing/carrier.js';
import * as sc from './tracing/semconv.js';
import { withSpan } from './tracing/spans.js';
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
        [sc.ATTR_MESSAGING_SYSTEM]: sc.MESSAGING_SYSTEM,
        [sc.ATTR_MESSAGING_OPERATION_TYPE]: sc.MessagingOperationType.SEND,
        [sc.ATTR_MESSAGING_OPERATION_NAME]: 'send',
        [sc.ATTR_MESSAGING_DESTINATION_NAME]: event.projection,
        [sc.ATTR_PROJECTION]: event.projection,
        [sc.ATTR_EVENT_TYPE]: event.eventType,
        [sc.ATTR_AGGREGATE_ID]: event.aggregateId,
        [sc.ATTR_AGGREGATE_VERSION]: event.aggregateVersion,
        ...checkedAttributes(event.attributes),
        ...(event.requestId ? { [sc.ATTR_REQUEST_ID]: event.requestId } : {}),
      },
    },
    async (span) => {
      const id = await insertEvent(db, event, injectContext(trace.setSpan(context.active(), span)));
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
