/**
 * The spans one change to a block must produce, in order, with the attributes each must
 * carry: what `loomtrace check` and the probe hold a captured trace to.
 */
import type { SpanExpectation } from '@loomtrace/outbox';
import * as sc from './semconv.js';
import { SEARCH_PROJECTION as P } from './service/model.js';

export const BLOCK_TRACE_SHAPE: readonly SpanExpectation[] = Object.freeze([
  { name: 'PATCH /api/v1/blocks/:id', kind: 'SERVER', service: 'wordloom-api', attributes: [sc.ATTR_BLOCK_ID, sc.ATTR_LIBRARY_ID, sc.ATTR_REQUEST_ID] },
  // The change and its event are one statement, its own transaction (decision record 0012): no
  // separate COMMIT to time, so no loomtrace.db.commit_ms; the span's duration includes the commit.
  { name: sc.SpanNames.TRANSACTION, kind: 'INTERNAL', service: 'wordloom-api', under: 'PATCH /api/v1/blocks/:id', attributes: [sc.ATTR_BLOCK_ID] },
  { name: sc.SpanNames.send(P), kind: 'PRODUCER', service: 'wordloom-api', under: sc.SpanNames.TRANSACTION, attributes: [sc.ATTR_MESSAGING_DESTINATION_NAME, sc.ATTR_MESSAGING_MESSAGE_ID] },
  { name: sc.SpanNames.queueWait(P), service: 'wordloom-worker', under: sc.SpanNames.send(P), after: sc.SpanNames.send(P), attributes: [sc.ATTR_QUEUE_WAIT_SOURCE] },
  { name: sc.SpanNames.process(P), kind: 'CONSUMER', service: 'wordloom-worker', under: sc.SpanNames.send(P), after: sc.SpanNames.send(P), attributes: [sc.ATTR_MESSAGING_MESSAGE_ID, sc.ATTR_ATTEMPT, sc.ATTR_LEASE_OWNER, sc.ATTR_QUEUE_WAIT_MS] },
  { name: sc.SpanNames.claim(P), service: 'wordloom-worker', under: sc.SpanNames.process(P) },
  { name: sc.SpanNames.write(P), kind: 'CLIENT', service: 'wordloom-worker', under: sc.SpanNames.process(P), after: sc.SpanNames.claim(P), attributes: [sc.ATTR_WRITE_RESULT] },
  { name: sc.SpanNames.ack(P), kind: 'CLIENT', service: 'wordloom-worker', under: sc.SpanNames.process(P), after: sc.SpanNames.write(P), attributes: [sc.ATTR_ACK_ROWS_AFFECTED] },
]);
