/** The fast path's pieces: one event's ids-only process span, and the attribute keys and lists encoded once per writer. */
import { TraceFlags, type SpanContext } from '@opentelemetry/api';
import { AttrKey, EventIds, spanFlags, type EventSpanEncoder, type EventSpanSink, type Fragment, type SpanOrigin, type SpanPrefix } from './spanEncoder.js';
import * as sc from './semconv.js';
import type { StoredParent } from './storedParent.js';

/**
 * One event's process span on the fast path: ids only until `finish`, when it and its children
 * are encoded straight to OTLP (no SDK Span objects).
 */
export class FastSpan extends EventIds {
  /** `lease renewed` events, buffered until the span is encoded: [at ms, expires at ISO]. */
  renewals: [number, string][] | undefined;
  ended = false;
  constructor(
    parent: StoredParent,
    traceState: string | undefined,
    readonly prev: SpanContext | undefined,
  ) {
    super(parent.traceId, parent.w0, parent.w1, parent.w2, parent.w3, parent.spanId, parent.w4, parent.w5, traceState);
  }
}

/** Keys of the attributes the fast path writes per event, encoded once per writer. */
export const K = {
  queueWait: new AttrKey(sc.ATTR_QUEUE_WAIT_MS),
  queueWaitSource: new AttrKey(sc.ATTR_QUEUE_WAIT_SOURCE),
  attempt: new AttrKey(sc.ATTR_ATTEMPT),
  messageId: new AttrKey(sc.ATTR_MESSAGING_MESSAGE_ID),
  writeResult: new AttrKey(sc.ATTR_WRITE_RESULT),
  writeStatus: new AttrKey(sc.ATTR_WRITE_STATUS_CODE),
  retryReason: new AttrKey(sc.ATTR_RETRY_REASON),
  retryDelay: new AttrKey(sc.ATTR_RETRY_DELAY_MS),
  ackRows: new AttrKey(sc.ATTR_ACK_ROWS_AFFECTED),
  outcome: new AttrKey(sc.ATTR_OUTCOME),
  eventType: new AttrKey(sc.ATTR_EVENT_TYPE),
  aggregateId: new AttrKey(sc.ATTR_AGGREGATE_ID),
  aggregateVersion: new AttrKey(sc.ATTR_AGGREGATE_VERSION),
  reclaimed: new AttrKey(sc.ATTR_RECLAIMED),
  requestId: new AttrKey(sc.ATTR_REQUEST_ID),
  previousOwner: new AttrKey(sc.ATTR_PREVIOUS_OWNER),
  previousToken: new AttrKey(sc.ATTR_PREVIOUS_TOKEN),
  leaseAge: new AttrKey(sc.ATTR_LEASE_AGE_MS),
  replayed: new AttrKey(sc.ATTR_REPLAYED),
  errorType: new AttrKey(sc.ATTR_ERROR_TYPE),
  leaseExpires: new AttrKey(sc.ATTR_LEASE_EXPIRES_AT),
  exceptionMessage: new AttrKey('exception.message'),
  nextDelay: new AttrKey('loomtrace.next.delay_ms'),
};

/** Producers' attribute keys, each encoded once per writer; bounded, as the keys are few by contract. */
const producerKeys = new Map<string, AttrKey>();
export function attrKey(name: string): AttrKey | string {
  let k = producerKeys.get(name);
  if (!k) {
    if (producerKeys.size >= 1024) return name;
    k = new AttrKey(name);
    producerKeys.set(name, k);
  }
  return k;
}

/** OTLP flags of a sampled span whose parent is remote (process, queue wait) or local (claim, write, ack). */
export const REMOTE_CHILD = spanFlags(TraceFlags.SAMPLED, true);
export const LOCAL_CHILD = spanFlags(TraceFlags.SAMPLED, false);

/** Attribute lists that never change, encoded once per writer. */
export interface Constants {
  linkBatch: Fragment;
  linkPrev: Fragment;
  ackOp: Fragment;
  ackDone: Fragment;
  ackDb: Fragment;
  written: Fragment;
}
const constants = new WeakMap<EventSpanEncoder, Constants>();
export function constantsFor(w: EventSpanEncoder): Constants {
  let c = constants.get(w);
  if (!c) {
    c = {
      linkBatch: w.fragment({ 'loomtrace.link': 'batch' }, 'link'),
      linkPrev: w.fragment({ 'loomtrace.link': 'previous_attempt' }, 'link'),
      ackOp: w.fragment({ [sc.ATTR_MESSAGING_OPERATION_TYPE]: sc.MessagingOperationType.SETTLE }, 'span'),
      ackDone: w.fragment({ [sc.ATTR_ACK_ROWS_AFFECTED]: 1, [sc.ATTR_OUTCOME]: 'done' }, 'span'),
      ackDb: w.fragment({ [sc.ATTR_DB_SYSTEM_NAME]: 'postgresql' }, 'span'),
      written: w.fragment({ [sc.ATTR_WRITE_RESULT]: 'written' }, 'span'),
    };
    constants.set(w, c);
  }
  return c;
}

/** The span prefixes of one batch's children and process spans (their times are the batch's). */
export interface FastPrefixes {
  claim: SpanPrefix;
  process: SpanPrefix;
  writeWritten?: SpanPrefix;
  write?: SpanPrefix;
  ackDone?: SpanPrefix;
  ack?: SpanPrefix;
}

/** The fast path of one batch: the exporter, and the attribute lists shared by the batch's spans, encoded once. */
export interface FastBatch {
  exporter: EventSpanSink;
  w: EventSpanEncoder;
  origin: SpanOrigin;
  projection: string;
  claimStart: number;
  claimEnd: number;
  leaseToken: string;
  /** process: system, operation type and name, destination. */
  procA: Fragment;
  /** process: client id, projection. */
  procB: Fragment;
  /** process: lease owner and token. */
  procC: Fragment;
  /** process and claim: batch size. */
  batchSize: Fragment;
  write: Fragment;
  /** The stale ack event's lease token, built when an ack finds its lease gone. */
  staleEvent?: Fragment;
  batchLink: SpanContext;
  /** The batch span's serialized trace state, read once. */
  batchLinkState: string | undefined;
  /** The queue wait spans' name and kind. */
  queueWait?: SpanPrefix;
  /** Built at finish, when the times are known. */
  prefixes?: FastPrefixes;
}
